//! Settings, layered with the `config` crate: built-in defaults < `config/default.toml`
//! (in the working directory, if present) < `--config FILE` < `RFM_AGENT__SECTION__KEY`
//! environment variables < command-line flags (applied by the CLI).

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

mod environment;
mod run_options;

pub use environment::EngineEnvironment;

pub use rfm_core::options::KChoice;
pub use rfm_core::settings::{CleanSettings, ClusterSettings, InputSettings, RfmSettings};
pub use run_options::RunOptions;

pub use rfm_campaigns::agent::AgentSettings;
pub use rfm_core::predict::PredictSettings;
pub use rfm_core::secret::ApiKey;
pub use rfm_engines::EngineSettings;
pub use rfm_llm::settings::{Backend, LlmSettings};
pub use rfm_report::output::{OutputFormat, OutputSettings};

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
    pub limits: rfm_core::ingest::InputLimits,
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
    pub engine: rfm_engines::EngineKind,
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
                rfm_core::bounded::value(name, 64),
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ));
        };
        self.engine.kind = src.engine.resolve(&src.url);
        if self.engine.kind == rfm_engines::EngineKind::Spark {
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

/// Errors while loading settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {0} not found; check --config")]
    Missing(String),
    #[error("invalid settings: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error(transparent)]
    Agent(#[from] rfm_campaigns::agent::AgentSettingsError),
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
        settings.agent.check()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_defaults_match_built_in_defaults() {
        let text = include_str!("../../../../config/default.toml");
        let parsed: Settings = Config::builder()
            .add_source(File::from_str(text, FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(parsed, Settings::default());
    }
}
