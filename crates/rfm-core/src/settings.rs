//! The core's sections of the settings: `[input]`, `[clean]`, `[rfm]` and `[cluster]` (the
//! models' `[predict]` is [`crate::predict::PredictSettings`], the readers' `[limits]`
//! [`crate::ingest::InputLimits`]). The settings file composes them with the other crates'.

use serde::{Deserialize, Serialize};

use crate::clean::Returns;
use crate::ingest::{ColumnMap, Encoding};
use crate::options::{DateChoice, Delimiter, InputFormat, KChoice, KRange, TimeZoneChoice};
use crate::rfm::Frequency;

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
    pub timezone: TimeZoneChoice,
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
