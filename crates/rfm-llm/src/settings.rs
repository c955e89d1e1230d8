//! The LLM's settings: the `[llm]` section.

use serde::{Deserialize, Serialize};

use rfm_core::secret::ApiKey;

/// Which LLM writes the campaigns.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Gemini if GEMINI_API_KEY is set, else OpenAI if OPENAI_API_KEY is set, else off.
    #[default]
    Auto,
    /// Rule-based agent only (offline).
    Off,
    Gemini,
    Openai,
    /// Recorded responses from --fixtures DIR; no network.
    Replay,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    pub backend: Backend,
    /// Model name; empty = the provider's default (gemini-2.5-flash, gpt-4o-mini).
    pub model: String,
    /// API base URL; empty = the provider's public endpoint.
    pub base_url: String,
    /// Keys; prefer the environment variables GEMINI_API_KEY and OPENAI_API_KEY.
    pub gemini_api_key: ApiKey,
    pub openai_api_key: ApiKey,
    pub temperature: f32,
    /// Output-token limit per request: at most this, and no more than the answer's schema
    /// needs at its longest.
    pub max_tokens: u32,
    /// Which schema keywords the server is sent (auto, full, openai, gemini).
    pub schema: super::schema::Dialect,
    /// Seconds before a request is abandoned (and retried).
    pub timeout_secs: f64,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Backoff before retry n: min(max, base * 2^n), with jitter.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Longest Retry-After honoured; a longer one fails the request.
    pub max_retry_after_secs: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Serve identical requests from the on-disk cache.
    pub cache: bool,
    /// Cache folder; empty = $XDG_CACHE_HOME/rfm-agent/llm or ~/.cache/rfm-agent/llm.
    pub cache_dir: String,
    /// Prices for the cost estimate, per million tokens.
    pub input_cost_per_mtok: f64,
    pub output_cost_per_mtok: f64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            backend: Backend::Auto,
            model: String::new(),
            base_url: String::new(),
            gemini_api_key: ApiKey::default(),
            openai_api_key: ApiKey::default(),
            temperature: 0.4,
            max_tokens: 1024,
            schema: Default::default(),
            timeout_secs: 60.0,
            max_attempts: 4,
            backoff_base_ms: 500,
            backoff_max_ms: 20_000,
            max_retry_after_secs: 60.0,
            concurrency: 4,
            cache: true,
            cache_dir: String::new(),
            input_cost_per_mtok: 0.0,
            output_cost_per_mtok: 0.0,
        }
    }
}
