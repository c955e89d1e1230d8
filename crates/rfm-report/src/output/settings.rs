//! The outputs' settings: the `[output]` section.

use serde::{Deserialize, Serialize};

/// How results are printed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
