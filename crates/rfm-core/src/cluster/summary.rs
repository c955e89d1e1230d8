//! Per-cluster summaries: size, shares, revenue, mean and median of R, F and M, centroid.

use serde::{Deserialize, Serialize};

use crate::rfm::RfmTable;

/// Mean and median of one measure within a cluster.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Stat {
    pub mean: f64,
    pub median: f64,
}

impl Stat {
    fn of(mut values: Vec<f64>) -> Stat {
        if values.is_empty() {
            return Stat::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Stat {
            mean: values.iter().sum::<f64>() / n as f64,
            median,
        }
    }
}

/// A cluster centroid in original units (days, purchases, money).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Centroid {
    pub recency: f64,
    pub frequency: f64,
    pub monetary: f64,
}

/// What later stages (agent, reports) know about a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterSummary {
    pub id: usize,
    pub size: usize,
    pub share: f64,
    pub revenue: f64,
    pub revenue_share: f64,
    pub recency: Stat,
    pub frequency: Stat,
    pub monetary: Stat,
    pub centroid: Centroid,
}

/// Summaries for clusters `0..centroids.len()`.
pub fn summarize(rfm: &RfmTable, labels: &[usize], centroids: &[[f64; 3]]) -> Vec<ClusterSummary> {
    let k = centroids.len();
    let n = rfm.len().max(1) as f64;
    let total_revenue: f64 = rfm.monetary.iter().sum();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &l) in labels.iter().enumerate() {
        members[l].push(i);
    }
    members
        .iter()
        .enumerate()
        .map(|(id, idx)| {
            let take = |col: &[f64]| idx.iter().map(|&i| col[i]).collect::<Vec<_>>();
            let revenue: f64 = idx.iter().map(|&i| rfm.monetary[i]).sum();
            ClusterSummary {
                id,
                size: idx.len(),
                share: idx.len() as f64 / n,
                revenue,
                revenue_share: if total_revenue != 0.0 {
                    revenue / total_revenue
                } else {
                    0.0
                },
                recency: Stat::of(take(&rfm.recency)),
                frequency: Stat::of(take(&rfm.frequency)),
                monetary: Stat::of(take(&rfm.monetary)),
                centroid: Centroid {
                    recency: centroids[id][0],
                    frequency: centroids[id][1],
                    monetary: centroids[id][2],
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_add_up() {
        let rfm = RfmTable {
            customer_ids: vec!["a".into(), "b".into(), "c".into()],
            recency: vec![1.0, 3.0, 10.0],
            frequency: vec![2.0, 4.0, 1.0],
            monetary: vec![10.0, 30.0, 60.0],
        };
        let s = summarize(&rfm, &[0, 0, 1], &[[2.0, 3.0, 20.0], [10.0, 1.0, 60.0]]);
        assert_eq!(s[0].size, 2);
        assert!((s[0].share - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s[0].revenue, 40.0);
        assert!((s[1].revenue_share - 0.6).abs() < 1e-12);
        assert_eq!(
            s[0].recency,
            Stat {
                mean: 2.0,
                median: 2.0
            }
        );
        assert_eq!(s[1].monetary.median, 60.0);
    }
}
