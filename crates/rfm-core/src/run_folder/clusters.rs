//! `clusters.json`: the run manifest (input, settings), the cleaning ledger, the k-means
//! model and the cluster summaries; with `k = auto`, the sweep that chose k.

use serde::{Deserialize, Serialize};

use crate::clean::{Ledger, Returns};
use crate::cluster::elbow::ElbowResult;
use crate::cluster::{ClusterSummary, Scaling};
use crate::ingest::{ColumnMap, SourceInfo};
use crate::rfm::Frequency;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Clusters {
    pub input: InputRecord,
    pub params: RunParams,
    pub ledger: Ledger,
    pub kmeans: KMeansRecord,
    pub clusters: Vec<ClusterSummary>,
    /// With `k = auto`: the sweep, the rule and the k it chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_choice: Option<ElbowResult>,
    /// The predictive models: fitted (parameters, per-segment sums) or why not; absent
    /// when they were off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predict: Option<crate::predict::outcome::Outcome>,
}

/// What was read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputRecord {
    #[serde(flatten)]
    pub source: SourceInfo,
    pub rows: usize,
}

/// The fitted model: what it converged to and how features were scaled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KMeansRecord {
    pub inertia: f64,
    pub n_iter: usize,
    pub features: Vec<String>,
    pub scaling: Scaling,
}

/// The features k-means sees, in column order.
pub const FEATURES: [&str; 3] = ["log1p_recency", "log1p_frequency", "log1p_monetary"];

/// Every setting a run used.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunParams {
    pub frequency: Frequency,
    pub returns: Returns,
    pub drop_zero_price: bool,
    pub snapshot: String,
    pub snapshot_source: SnapshotSource,
    pub k: usize,
    pub seed: u64,
    pub n_init: usize,
    pub max_iter: usize,
    pub tolerance: f64,
    pub date_format: String,
    /// The columns read: the preset's names with the run's overrides.
    pub columns: ColumnMap,
    /// `--timezone`, when times with an offset were put on a zone's clock (else UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// Where the snapshot date came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SnapshotSource {
    /// `--snapshot` or the settings.
    #[serde(rename = "given")]
    Given,
    /// The last date in the data plus one day.
    #[serde(rename = "last date + 1 day")]
    LastDatePlusOne,
}

impl SnapshotSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotSource::Given => "given",
            SnapshotSource::LastDatePlusOne => "last date + 1 day",
        }
    }
}
