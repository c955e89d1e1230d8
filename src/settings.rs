//! Settings, layered with the `config` crate: built-in defaults < `config/default.toml`
//! (in the working directory, if present) < `--config FILE` < `RFM_AGENT__SECTION__KEY`
//! environment variables < command-line flags (applied by the CLI).

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use crate::clean::Returns;
use crate::ingest::ColumnMap;
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Offers campaign copy may make, e.g. "free shipping", "10 % off".
    pub offers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InputSettings {
    /// Transactions file; empty = the built-in sample.
    pub path: String,
    /// auto | csv | xlsx | parquet
    pub format: String,
    /// auto | , | ; | tab | "|" | whitespace
    pub delimiter: String,
    /// auto | utf-8 | latin1
    pub encoding: String,
    /// XLSX sheet; empty = the first.
    pub sheet: String,
    /// auto | excel | epoch-s | epoch-ms | rfc3339 | a strftime pattern
    pub date_format: String,
    pub columns: ColumnMap,
}

impl Default for InputSettings {
    fn default() -> Self {
        InputSettings {
            path: String::new(),
            format: "auto".into(),
            delimiter: "auto".into(),
            encoding: "auto".into(),
            sheet: String::new(),
            date_format: "auto".into(),
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    pub k: usize,
    pub seed: u64,
    pub n_init: usize,
    pub max_iter: usize,
    pub tolerance: f64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            k: 4,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OutputSettings {
    pub format: OutputFormat,
    /// Directory for customers.csv and clusters.json; empty = print only.
    pub dir: String,
}

/// Errors while loading settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {0} not found; check --config")]
    Missing(String),
    #[error("invalid settings: {0}")]
    Invalid(#[from] config::ConfigError),
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
                .try_parsing(true),
        );
        Ok(builder.build()?.try_deserialize()?)
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
