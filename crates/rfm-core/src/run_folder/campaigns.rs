//! `campaigns.json`: the agent's campaign for every cluster and what the run cost.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Campaigns {
    pub summary: RunSummary,
    pub campaigns: Vec<Campaign>,
}

/// A draft email. The sender and the unsubscribe footer come from the settings, added by
/// code ([`add_sender_and_footer`]), never written by the LLM.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Email {
    pub from: String,
    pub subject: String,
    pub preheader: String,
    pub body: String,
    pub footer: String,
}

/// Who wrote a piece of copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopySource {
    /// The deterministic rules (offline, or no LLM configured).
    Rules,
    /// The LLM, and it passed every check.
    Llm,
    /// The rules, because the LLM's answer failed its checks or the call failed.
    Fallback,
}

impl CopySource {
    pub fn as_str(self) -> &'static str {
        match self {
            CopySource::Rules => "rules",
            CopySource::Llm => "llm",
            CopySource::Fallback => "fallback",
        }
    }
}

impl fmt::Display for CopySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The campaign for one cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Campaign {
    pub cluster: usize,
    pub name: String,
    pub rationale: String,
    pub strategy: String,
    pub channels: Vec<String>,
    pub email: Email,
    pub source: CopySource,
    /// Why the rules wrote it, when the LLM was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// What a run of the agent did and cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunSummary {
    pub backend: String,
    pub model: Option<String>,
    /// HTTP requests sent (retries included; cache hits not).
    pub requests: u64,
    pub retries: u64,
    pub cache_hits: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub tokens: u64,
    /// From llm.input_cost_per_mtok and llm.output_cost_per_mtok.
    pub estimated_cost: f64,
    /// Campaigns by source.
    pub from_llm: usize,
    pub fallbacks: usize,
}

/// Why the rules wrote a piece of copy instead of the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// The prompt templates did not render.
    Prompt,
    /// The model reached the output-token limit (or stopped early for another reason).
    TokenLimit,
    Timeout,
    /// The server could not be reached.
    Unreachable,
    /// The server answered with an HTTP error.
    HttpError,
    /// The model refused, or the provider blocked the answer.
    Refused,
    /// The response was not a readable chat answer.
    Unreadable,
    /// The answer broke the content gate, grounding or the schema, twice.
    Invalid,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Prompt => "prompt",
            FallbackReason::TokenLimit => "token_limit",
            FallbackReason::Timeout => "timeout",
            FallbackReason::Unreachable => "unreachable",
            FallbackReason::HttpError => "http_error",
            FallbackReason::Refused => "refused",
            FallbackReason::Unreadable => "unreadable",
            FallbackReason::Invalid => "invalid",
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fall-back: its reason, the sentence for people, and for [`FallbackReason::Invalid`]
/// the names of the last answer's problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    pub reason: FallbackReason,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
}

impl Fallback {
    pub fn new(reason: FallbackReason, message: impl Into<String>) -> Fallback {
        Fallback {
            reason,
            message: message.into(),
            violations: Vec::new(),
        }
    }
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
