//! The `clusters.json` document: run manifest, cleaning ledger and cluster summaries.
//! Later stages and users rely on its shape; `schema` changes when it does.

use serde::Serialize;

use crate::clean::Ledger;
use crate::cluster::elbow::ElbowResult;
use crate::cluster::{ClusterSummary, Scaling};
use crate::ingest::SourceInfo;
use crate::pipeline::{RunParams, SegmentRun};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct ClustersDocument<'a> {
    /// rfm-agent version that wrote the file.
    pub version: &'static str,
    pub schema: u32,
    pub input: InputRecord<'a>,
    pub params: &'a RunParams,
    pub ledger: &'a Ledger,
    pub kmeans: KMeansRecord<'a>,
    pub clusters: &'a [ClusterSummary],
    /// With `k = auto`: the sweep, the rule and the k it chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k_choice: Option<&'a ElbowResult>,
}

#[derive(Debug, Serialize)]
pub struct InputRecord<'a> {
    #[serde(flatten)]
    pub source: &'a SourceInfo,
    pub rows: usize,
}

#[derive(Debug, Serialize)]
pub struct KMeansRecord<'a> {
    pub inertia: f64,
    pub n_iter: usize,
    pub features: [&'static str; 3],
    pub scaling: &'a Scaling,
}

impl<'a> ClustersDocument<'a> {
    pub fn new(run: &'a SegmentRun) -> Self {
        ClustersDocument {
            version: env!("CARGO_PKG_VERSION"),
            schema: SCHEMA_VERSION,
            input: InputRecord {
                source: &run.source,
                rows: run.rows,
            },
            params: &run.params,
            ledger: &run.ledger,
            kmeans: KMeansRecord {
                inertia: run.segmentation.inertia,
                n_iter: run.segmentation.n_iter,
                features: ["log1p_recency", "log1p_frequency", "log1p_monetary"],
                scaling: &run.segmentation.scaling,
            },
            clusters: &run.segmentation.clusters,
            k_choice: run.k_choice.as_ref(),
        }
    }
}
