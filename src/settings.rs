//! Settings, layered with the `config` crate: built-in defaults < `config/default.toml`
//! (in the working directory, if present) < `--config FILE` < `RFM_AGENT__SECTION__KEY`
//! environment variables < command-line flags (applied by the CLI).

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use crate::clean::Returns;
use crate::ingest::{ColumnMap, Encoding};
pub use crate::options::KChoice;
use crate::options::{DateChoice, Delimiter, InputFormat, KRange};
use crate::rfm::Frequency;

/// The project's settings file, looked up relative to the working directory.
pub const DEFAULT_FILE: &str = "config/default.toml";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub input: InputSettings,
    pub clean: CleanSettings,
    pub rfm: RfmSettings,
    pub cluster: ClusterSettings,
    pub output: OutputSettings,
    pub agent: AgentSettings,
    pub llm: LlmSettings,
    pub server: ServerSettings,
    pub limits: crate::ingest::InputLimits,
    pub engine: EngineSettings,
    pub predict: PredictSettings,
    /// Named data sources the service may read (`source=NAME` in the API); defined by the
    /// operator only: a client never sends a connection string.
    pub sources: std::collections::BTreeMap<String, SourceSettings>,
}

/// One named source: a database and the table or query to read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSettings {
    /// `auto` (PostgreSQL for a postgres:// URL), `postgres` or `spark`.
    pub engine: crate::engine::EngineKind,
    /// `postgres://USER@HOST:PORT/DB` (no password), or Spark Connect's `sc://HOST:PORT`.
    pub url: String,
    pub table: String,
    pub query: String,
    /// Spark: a Parquet or CSV file the cluster reads (instead of a table or query).
    pub path: String,
    /// The database password; else the service's PGPASSWORD or password file.
    pub password: ApiKey,
}

impl Settings {
    /// Reads from the named source: its database, table or query, and password.
    pub fn use_source(&mut self, name: &str) -> Result<(), String> {
        let Some(src) = self.sources.get(name) else {
            let names: Vec<&str> = self.sources.keys().map(String::as_str).collect();
            return Err(format!(
                "no source named `{}`; this service has: {}",
                crate::bounded::value(name, 64),
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ));
        };
        self.engine.kind = src.engine.resolve(&src.url);
        if self.engine.kind == crate::engine::EngineKind::Spark {
            self.engine.url = src.url.clone();
            self.input.path = src.path.clone();
        } else {
            self.input.path = src.url.clone();
        }
        self.engine.table = src.table.clone();
        self.engine.query = src.query.clone();
        self.engine.password = src.password.clone();
        Ok(())
    }
}

/// Where the data lives: this machine, a database (`input.path` = `postgres://USER@HOST:PORT/DB`)
/// or a Spark cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// `auto` (PostgreSQL for a postgres:// input, else local), `local`, `postgres` or `spark`.
    pub kind: crate::engine::EngineKind,
    /// Spark Connect's address, `sc://HOST:PORT` (else SPARK_REMOTE).
    pub url: String,
    /// The table to read (`schema.table` allowed).
    pub table: String,
    /// Or a query of the caller's choosing.
    pub query: String,
    /// Longest wait for the connection and for each statement.
    pub timeout_secs: u64,
    /// The database password; prefer the environment variable PGPASSWORD.
    pub password: ApiKey,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            kind: crate::engine::EngineKind::Auto,
            url: String::new(),
            table: String::new(),
            query: String::new(),
            timeout_secs: 60,
            password: ApiKey::default(),
        }
    }
}

/// Limits of `rfm-agent serve`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Largest upload accepted, in megabytes (413 beyond it).
    pub max_upload_mb: u64,
    /// Runs that compute at the same time; later ones wait in a queue.
    pub max_running: usize,
    /// Runs that may wait in the queue; beyond it a new run gets 429.
    pub max_queued: usize,
    /// Longest a run may compute; then it is failed and its slot freed.
    pub run_timeout_secs: u64,
    /// May API clients send their own templates?
    pub allow_custom_templates: bool,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send a request's headers, and longest idle time between requests.
    pub header_timeout_secs: u64,
    /// Longest stall while a body is received or an answer sent.
    pub body_timeout_secs: u64,
    /// Failed sign-ins per client address per minute before 429.
    pub sign_in_attempts_per_minute: u32,
    /// Memory for all runs together, in MiB: each run holds its `[limits] max_memory_mb`
    /// while it lives, and waits when that is spent.
    pub max_memory_mb: u64,
    /// Finished runs kept; those that finished first go first.
    pub keep_runs: usize,
    /// What the stored runs may take on disk, in GB; the runs that finished first go first
    /// (never the last to finish).
    pub max_store_gb: f64,
    /// Addresses of reverse proxies (IPs or CIDR blocks) whose `X-Forwarded-For` names the
    /// client, for throttling each client on its own; none by default.
    pub trusted_proxies: Vec<String>,
    /// The address users reach the service at (e.g. https://rfm.example.com): requests that
    /// change something must come from it or from the service's own host; an https address
    /// makes the sign-in cookie `Secure`.
    pub public_url: String,
    /// Mark the sign-in cookie `Secure` (only sent over HTTPS) even without an https
    /// `public_url`.
    pub secure_cookies: bool,
    /// How long a sign-in lasts, in hours.
    pub session_hours: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_upload_mb: 200,
            max_running: 2,
            max_queued: 16,
            run_timeout_secs: 900,
            allow_custom_templates: false,
            max_connections: 256,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            sign_in_attempts_per_minute: 10,
            max_memory_mb: 4 << 10,
            keep_runs: 500,
            max_store_gb: 10.0,
            trusted_proxies: Vec::new(),
            public_url: String::new(),
            secure_cookies: false,
            session_hours: 12,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Offers campaign copy may make, e.g. "free shipping", "10 % off".
    pub offers: Vec<String>,
    /// Sender of every email, added by code (never written by the LLM).
    pub sender: String,
    /// Footer added by code to every email; `{{unsubscribe_url}}` is left for the email tool.
    pub footer: String,
    /// The channels a campaign may name; an LLM answer naming another is refused.
    pub channels: Vec<String>,
    /// Links copy may carry (prefixes, e.g. "https://shop.example.com"); none by default.
    pub urls: Vec<String>,
    /// The language of the campaigns the agent writes: en, de, fr, es or it.
    pub locale: String,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            offers: Vec::new(),
            sender: "Your Shop <hello@example.com>".into(),
            footer: "You receive this email because you bought from us. Unsubscribe: {{unsubscribe_url}}".into(),
            channels: [
                "email",
                "SMS",
                "push",
                "direct mail",
                "phone",
                "retargeting",
                "loyalty programme",
                "social media",
            ]
            .map(String::from)
            .to_vec(),
            urls: Vec::new(),
            locale: "en".into(),
        }
    }
}

/// Which LLM writes the campaigns.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, clap::ValueEnum)]
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

/// An API key: read from settings, never printed or serialised.
#[derive(Clone, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct ApiKey(pub String);

impl ApiKey {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

impl Serialize for ApiKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Only the empty default is ever serialised (as the settings' bottom layer).
        s.serialize_str("")
    }
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
    pub schema: crate::llm::schema::Dialect,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InputSettings {
    /// Transactions file; empty = the built-in sample.
    pub path: String,
    /// auto | csv | xlsx | parquet
    pub format: InputFormat,
    /// auto | , | ; | tab | "|" | whitespace
    pub delimiter: Delimiter,
    /// auto | utf-8 | latin1 | windows-1252
    pub encoding: Encoding,
    /// XLSX sheet; empty = the first.
    pub sheet: String,
    /// auto | excel | epoch-s | epoch-ms | rfc3339 | a strftime pattern
    pub date_format: DateChoice,
    /// auto (recognised from the header) | none | uci | shopify | woocommerce | stripe
    pub preset: crate::ingest::PresetChoice,
    /// Which currency's rows to keep when an export holds several: a code, or `converted`.
    pub currency: crate::ingest::CurrencyChoice,
    /// The clock times with a UTC offset are put on: UTC, or an IANA zone name.
    pub timezone: crate::options::TimeZoneChoice,
    pub columns: ColumnMap,
}

impl Default for InputSettings {
    fn default() -> Self {
        InputSettings {
            path: String::new(),
            format: InputFormat::Auto,
            delimiter: Delimiter::Auto,
            encoding: Encoding::Auto,
            sheet: String::new(),
            date_format: DateChoice::Auto,
            preset: Default::default(),
            currency: Default::default(),
            timezone: Default::default(),
            columns: ColumnMap::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CleanSettings {
    pub returns: Returns,
    pub drop_zero_price: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RfmSettings {
    pub frequency: Frequency,
    /// Empty = last date in the data + 1 day.
    pub snapshot: String,
}

/// The predictive models: fitted by `segment`, `agent` and the service when the data
/// allow, and by `rfm-agent clv`, which needs them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PredictSettings {
    /// Fit the models in segment runs (`--no-predict` turns it off).
    pub enabled: bool,
    /// The run fails when the models cannot be fitted (`clv`); otherwise it goes on and
    /// says why the predictions are missing.
    #[serde(skip)]
    pub required: bool,
    /// day | week
    pub period: crate::rfm::histories::Period,
    /// Empty = no hold-out: the models are fitted up to the snapshot.
    pub calibration_end: String,
    /// Days ahead that expected purchases and CLV cover.
    pub horizon_days: u32,
    /// Monthly discount rate of the CLV.
    pub discount_rate: f64,
    /// L2 penalty on the parameters, as `lifetimes`' `penalizer_coef`.
    pub penalizer: f64,
}

impl Default for PredictSettings {
    fn default() -> Self {
        PredictSettings {
            enabled: true,
            required: false,
            period: Default::default(),
            calibration_end: String::new(),
            horizon_days: 90,
            discount_rate: 0.01,
            penalizer: 0.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    pub k: KChoice,
    /// The range `k = "auto"` and the elbow chart consider.
    pub k_min: usize,
    pub k_max: usize,
    pub seed: u64,
    pub n_init: usize,
    pub max_iter: usize,
    pub tolerance: f64,
}

impl ClusterSettings {
    /// The k range, checked against the k rule.
    pub fn k_range(&self) -> Result<KRange, String> {
        KRange::new(self.k_min, self.k_max)
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            k: KChoice::Fixed(4),
            k_min: 2,
            k_max: 10,
            seed: 42,
            n_init: 10,
            max_iter: 300,
            tolerance: 1e-4,
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutputSettings {
    pub format: OutputFormat,
    /// Directory for customers.csv, clusters.json and the report; empty = print only.
    pub dir: String,
    /// Currency symbol in reports and campaign texts.
    pub currency: String,
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            format: OutputFormat::default(),
            dir: String::new(),
            currency: "£".into(),
        }
    }
}

/// Errors while loading settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {0} not found; check --config")]
    Missing(String),
    #[error("invalid settings: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("agent.locale `{0}` is not a language the agent writes in; use en, de, fr, es or it")]
    Locale(String),
}

impl Settings {
    /// Loads the layered settings (everything but command-line flags).
    pub fn load(config_file: Option<&Path>) -> Result<Settings, SettingsError> {
        let mut builder = Config::builder().add_source(Config::try_from(&Settings::default())?);
        if Path::new(DEFAULT_FILE).is_file() {
            builder = builder.add_source(File::new(DEFAULT_FILE, FileFormat::Toml));
        }
        if let Some(path) = config_file {
            if !path.is_file() {
                return Err(SettingsError::Missing(path.display().to_string()));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        builder = builder.add_source(
            Environment::with_prefix("RFM_AGENT")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                // RFM_AGENT__SERVER__TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies"),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        if crate::agent::gate::language(&settings.agent.locale).is_none() {
            return Err(SettingsError::Locale(settings.agent.locale));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_defaults_match_built_in_defaults() {
        let text = include_str!("../config/default.toml");
        let parsed: Settings = Config::builder()
            .add_source(File::from_str(text, FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(parsed, Settings::default());
    }
}
