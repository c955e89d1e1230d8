//! Choosing k: WCSS and the silhouette score for each k of a range, computed with the same
//! k-means and features as the final clustering, and a recommended k by a documented rule.

use linfa::prelude::*;
use ndarray::{Array2, ArrayView1};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::{KMeansError, KMeansValidParams};

/// Silhouettes are computed on at most this many customers (a seeded sample).
pub const SILHOUETTE_SAMPLE: usize = 4000;

/// Each k of the sweep is fitted on at most this many customers (a seeded sample), so that
/// the sweep costs the same at a million customers as at two hundred thousand; the WCSS of
/// a sample is scaled up to all customers.
pub const SWEEP_SAMPLE: usize = 200_000;

/// How the recommended k is chosen, as written into clusters.json.
pub const RULE: &str = "elbow: the k whose point lies farthest from the straight line joining \
the first and last points of the WCSS curve (both axes scaled to 0..1); ties go to the smaller k";

/// One k of the sweep.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ElbowPoint {
    pub k: usize,
    /// Within-cluster sum of squares in the scaled feature space.
    pub wcss: f64,
    /// Mean silhouette on the sample (-1..1; higher is better separated).
    pub silhouette: f64,
}

/// The sweep and the k it recommends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ElbowResult {
    pub points: Vec<ElbowPoint>,
    pub recommended: usize,
    pub rule: String,
    pub silhouette_sample: usize,
    /// Customers each k was fitted on (all of them up to [`SWEEP_SAMPLE`]).
    pub fit_sample: usize,
}

/// `n` distinct row indices out of `rows`, sorted, drawn with `seed` (all rows if fewer).
fn seeded_sample(rows: usize, n: usize, seed: u64) -> Vec<usize> {
    if rows <= n {
        return (0..rows).collect();
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut idx = sample(&mut rng, rows, n).into_vec();
    idx.sort_unstable();
    idx
}

/// Fits k-means for every k in `ks` (with `params`' seed, restarts and tolerance) on `x`.
pub fn sweep(
    x: &Array2<f64>,
    params: &KMeansValidParams,
    ks: std::ops::RangeInclusive<usize>,
    mut on_k: impl FnMut(usize),
) -> Result<ElbowResult, KMeansError> {
    let n = x.nrows();
    let fit_rows = seeded_sample(n, SWEEP_SAMPLE, params.seed());
    let fit = if fit_rows.len() < n {
        x.select(ndarray::Axis(0), &fit_rows)
    } else {
        x.clone()
    };
    let scale = n as f64 / fit.nrows() as f64;
    let picked = seeded_sample(fit.nrows(), SILHOUETTE_SAMPLE, params.seed());
    let mut points = Vec::new();
    for k in ks {
        if k > n {
            break;
        }
        on_k(k);
        let p = params.with_k(k);
        let model = p.fit(&DatasetBase::from(fit.clone()))?;
        let labels: Vec<usize> = picked.iter().map(|&i| model.labels()[i]).collect();
        let rows: Vec<ArrayView1<f64>> = picked.iter().map(|&i| fit.row(i)).collect();
        points.push(ElbowPoint {
            k,
            wcss: model.inertia() * scale,
            silhouette: silhouette(&rows, &labels, k),
        });
    }
    let recommended = recommend(&points);
    Ok(ElbowResult {
        points,
        recommended,
        rule: RULE.to_string(),
        silhouette_sample: picked.len(),
        fit_sample: fit.nrows(),
    })
}

/// Mean silhouette of the points (Euclidean distance).
pub fn silhouette(rows: &[ArrayView1<f64>], labels: &[usize], k: usize) -> f64 {
    use rayon::prelude::*;
    let n = rows.len();
    if k < 2 || n < 2 {
        return 0.0;
    }
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    // Per-point values in index order, summed in that order: a parallel sum would add in an
    // order that depends on thread scheduling and differ in the last digits between runs.
    let per_point: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut sums = vec![0.0; k];
            for j in 0..n {
                if i != j {
                    let d: f64 = rows[i]
                        .iter()
                        .zip(rows[j].iter())
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    sums[labels[j]] += d.sqrt();
                }
            }
            let own = labels[i];
            if sizes[own] <= 1 {
                return 0.0; // a singleton's silhouette is 0 by convention
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() {
                return 0.0;
            }
            (b - a) / a.max(b)
        })
        .collect();
    per_point.iter().sum::<f64>() / n as f64
}

/// The elbow of the WCSS curve (see [`RULE`]).
pub fn recommend(points: &[ElbowPoint]) -> usize {
    match points {
        [] => 0,
        [only] => only.k,
        [first, .., last] => {
            let (k0, k1) = (first.k as f64, last.k as f64);
            let (w0, w1) = (first.wcss, last.wcss);
            let span = (w0 - w1).abs().max(f64::MIN_POSITIVE);
            let mut best = (f64::NEG_INFINITY, first.k);
            for p in points {
                let x = (p.k as f64 - k0) / (k1 - k0);
                let y = (p.wcss - w1) / span; // 1 at the first point, 0 at the last
                // Distance from the chord y = 1 - x, up to a constant factor.
                let d = (1.0 - x) - y;
                if d > best.0 + 1e-12 {
                    best = (d, p.k);
                }
            }
            best.1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn the_elbow_is_where_the_curve_bends() {
        let pts: Vec<ElbowPoint> = [100.0, 40.0, 20.0, 17.0, 15.0, 14.0]
            .iter()
            .enumerate()
            .map(|(i, &w)| ElbowPoint {
                k: i + 2,
                wcss: w,
                silhouette: 0.0,
            })
            .collect();
        assert_eq!(recommend(&pts), 4);
    }

    #[test]
    fn silhouette_of_two_tight_far_groups_is_near_one() {
        let x = array![[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]];
        let rows: Vec<_> = x.rows().into_iter().collect();
        let s = silhouette(&rows, &[0, 0, 1, 1], 2);
        assert!(s > 0.98, "{s}");
        let mixed = silhouette(&rows, &[0, 1, 0, 1], 2);
        assert!(mixed < 0.0, "{mixed}");
    }
}
