//! What a segmentation run produced, in memory: the input, the ledger, the RFM table, the
//! clusters and the predictions, and the `clusters.json` it is recorded as.

use crate::clean::Ledger;
use crate::cluster::{Segmentation, elbow};
use crate::ingest::SourceInfo;
use crate::predict::outcome::{Customers, Outcome};
use crate::rfm::RfmTable;
use crate::run_folder::{self, ClustersFile, RunParams};

/// Everything the `segment` command produced.
#[derive(Debug, Clone)]
pub struct SegmentRun {
    pub source: SourceInfo,
    pub rows: usize,
    pub ledger: Ledger,
    pub snapshot: i64,
    pub params: RunParams,
    pub rfm: RfmTable,
    pub segmentation: Segmentation,
    /// The sweep behind `k = auto`.
    pub k_choice: Option<elbow::ElbowResult>,
    /// The sweep the report's elbow chart shows: the one behind `k = auto`, else one run for
    /// the report when the run writes one (`output.dir` set); `None` otherwise.
    pub elbow: Option<elbow::ElbowResult>,
    /// Each customer's email (in RFM order), when the input maps an email column.
    pub emails: Option<Vec<String>>,
    /// Each customer's purchase history (in RFM order), when the models are on.
    pub histories: Option<crate::rfm::histories::Summaries>,
    /// What the predictive models gave; `None` when they are off.
    pub predictions: Option<Outcome>,
}

impl SegmentRun {
    /// The run's customers, as the predictive models take them.
    pub fn customers(&self) -> Customers<'_> {
        Customers {
            histories: self.histories.as_ref(),
            labels: &self.segmentation.labels,
            clusters: self.segmentation.clusters.len(),
            snapshot: self.snapshot,
        }
    }

    /// The run as `clusters.json` records it.
    pub fn manifest(&self) -> ClustersFile {
        ClustersFile::new(run_folder::Clusters {
            input: run_folder::InputRecord {
                source: self.source.clone(),
                rows: self.rows,
            },
            params: self.params.clone(),
            ledger: self.ledger.clone(),
            kmeans: run_folder::KMeansRecord {
                inertia: self.segmentation.inertia,
                n_iter: self.segmentation.n_iter,
                features: run_folder::FEATURES.map(String::from).to_vec(),
                scaling: self.segmentation.scaling.clone(),
            },
            clusters: self.segmentation.clusters.clone(),
            k_choice: self.k_choice.clone(),
            predict: self.predictions.as_ref().map(Outcome::recorded),
        })
    }
}
