//! Clustering: log1p + standard scaling of R, F and M, seeded k-means, clusters relabelled
//! by revenue (cluster 0 brings the most), and per-cluster summaries.

pub mod elbow;
pub mod kmeans;
mod summary;

use linfa::prelude::*;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

pub use kmeans::{KMeansError, KMeansModel, KMeansParams, KMeansValidParams};
pub use summary::{Centroid, ClusterSummary, Stat, summarize};

use crate::rfm::RfmTable;

/// Feature scaling applied before k-means (per feature: log1p, then z-score with the
/// population standard deviation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scaling {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Scaling {
    /// Back to original units: expm1(z · std + mean).
    pub fn invert(&self, z: &[f64]) -> [f64; 3] {
        std::array::from_fn(|j| (z[j] * self.std[j] + self.mean[j]).exp_m1())
    }
}

/// log1p + standardised feature matrix (customers × [R, F, M]).
pub fn features(rfm: &RfmTable) -> (Array2<f64>, Scaling) {
    let n = rfm.len();
    let cols = [&rfm.recency, &rfm.frequency, &rfm.monetary];
    let mut x = Array2::zeros((n, 3));
    let mut mean = [0.0; 3];
    let mut std = [1.0; 3];
    for (j, col) in cols.iter().enumerate() {
        let logged: Vec<f64> = col.iter().map(|v| v.max(0.0).ln_1p()).collect();
        let m = logged.iter().sum::<f64>() / n as f64;
        let var = logged.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64;
        let s = if var > 0.0 { var.sqrt() } else { 1.0 };
        for (i, v) in logged.iter().enumerate() {
            x[[i, j]] = (v - m) / s;
        }
        mean[j] = m;
        std[j] = s;
    }
    (x, Scaling { mean, std })
}

/// The result of clustering customers.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Cluster of each customer, in the order of the RFM table.
    pub labels: Vec<usize>,
    pub clusters: Vec<ClusterSummary>,
    pub scaling: Scaling,
    pub inertia: f64,
    pub n_iter: usize,
}

/// Clusters `rfm` with `params`.
pub fn segment(rfm: &RfmTable, params: KMeansParams) -> Result<Segmentation, KMeansError> {
    let params = params.check()?;
    let k = params.n_clusters();
    if k > rfm.len() {
        return Err(KMeansError::TooManyClusters { k, n: rfm.len() });
    }
    let (x, scaling) = features(rfm);
    let model = params.fit(&DatasetBase::from(x))?;
    // Relabel: cluster 0 brings the most revenue.
    let mut revenue = vec![0.0; k];
    for (l, m) in model.labels().iter().zip(&rfm.monetary) {
        revenue[*l] += m;
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| revenue[b].total_cmp(&revenue[a]).then(a.cmp(&b)));
    let mut new_id = vec![0; k];
    for (new, &old) in order.iter().enumerate() {
        new_id[old] = new;
    }
    let labels: Vec<usize> = model.labels().iter().map(|&l| new_id[l]).collect();
    let centroids: Vec<[f64; 3]> = order
        .iter()
        .map(|&old| {
            let row = model.centroids().row(old);
            scaling.invert(row.as_slice().expect("contiguous"))
        })
        .collect();
    let clusters = summarize(rfm, &labels, &centroids);
    Ok(Segmentation {
        labels,
        clusters,
        scaling,
        inertia: model.inertia(),
        n_iter: model.n_iter(),
    })
}
