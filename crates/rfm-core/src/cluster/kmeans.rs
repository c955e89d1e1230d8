//! k-means for many points in few dimensions: seeded greedy k-means++ and Lloyd iterations
//! pruned with Hamerly's bounds, run in parallel over fixed-size chunks and reduced in chunk
//! order, so a seed gives the same result on any number of threads. Exposed through linfa's
//! `ParamGuard`/`Fit`/`Predict` traits; linfa-clustering's `KMeans` is the reference in tests.

use linfa::prelude::*;
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, Array2, ArrayBase, Data, Ix2};
use rand::{Rng, RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Points per parallel work item; fixed so that results do not depend on the thread count.
const CHUNK: usize = 4096;
/// Chunks per rayon task: small inputs stay on one thread within a restart (restarts
/// themselves run in parallel), large ones split into many tasks.
const MIN_CHUNKS_PER_TASK: usize = 4;

/// Errors from k-means parameters or fitting.
#[derive(Debug, thiserror::Error)]
pub enum KMeansError {
    #[error("k must be at least 1 (got {0})")]
    TooFewClusters(usize),
    #[error("k = {k} is more than the {n} customers; choose k between 1 and {n}")]
    TooManyClusters { k: usize, n: usize },
    #[error("n_init (restarts) must be at least 1")]
    NoRuns,
    #[error("max_iter must be at least 1")]
    NoIterations,
    #[error("tolerance must be a finite number >= 0 (got {0})")]
    Tolerance(f64),
    #[error("k-means here supports at most 32 features (got {0})")]
    TooManyFeatures(usize),
    #[error("the data contain NaN or infinite values")]
    NotFinite,
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

/// Validated k-means settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansValidParams {
    n_clusters: usize,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
}

impl KMeansValidParams {
    pub fn n_clusters(&self) -> usize {
        self.n_clusters
    }
    /// The same checked settings with another number of clusters (k >= 1 keeps them valid).
    pub fn with_k(&self, k: usize) -> KMeansValidParams {
        KMeansValidParams {
            n_clusters: k.max(1),
            ..self.clone()
        }
    }
    pub fn n_init(&self) -> usize {
        self.n_init
    }
    pub fn max_iter(&self) -> usize {
        self.max_iter
    }
    pub fn tolerance(&self) -> f64 {
        self.tol
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// k-means settings, checked by [`ParamGuard`] before fitting.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams(KMeansValidParams);

impl KMeansParams {
    /// `k` clusters; 10 restarts, at most 300 iterations, tolerance 1e-4, seed 42.
    pub fn new(n_clusters: usize) -> Self {
        KMeansParams(KMeansValidParams {
            n_clusters,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
            seed: 42,
        })
    }
    /// The same settings with another number of clusters.
    pub fn n_clusters(mut self, k: usize) -> Self {
        self.0.n_clusters = k;
        self
    }
    pub fn n_init(mut self, n: usize) -> Self {
        self.0.n_init = n;
        self
    }
    pub fn max_iter(mut self, n: usize) -> Self {
        self.0.max_iter = n;
        self
    }
    /// Relative tolerance: the run stops when the squared centroid shift falls below
    /// `tol` × the mean per-feature variance (scikit-learn's rule).
    pub fn tolerance(mut self, tol: f64) -> Self {
        self.0.tol = tol;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
}

impl ParamGuard for KMeansParams {
    type Checked = KMeansValidParams;
    type Error = KMeansError;

    fn check_ref(&self) -> Result<&Self::Checked, Self::Error> {
        let p = &self.0;
        if p.n_clusters < 1 {
            Err(KMeansError::TooFewClusters(p.n_clusters))
        } else if p.n_init < 1 {
            Err(KMeansError::NoRuns)
        } else if p.max_iter < 1 {
            Err(KMeansError::NoIterations)
        } else if !(p.tol.is_finite() && p.tol >= 0.0) {
            Err(KMeansError::Tolerance(p.tol))
        } else {
            Ok(p)
        }
    }

    fn check(self) -> Result<Self::Checked, Self::Error> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// A fitted model: centroids plus the training labels and fit statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansModel {
    centroids: Array2<f64>,
    labels: Array1<usize>,
    inertia: f64,
    n_iter: usize,
}

impl KMeansModel {
    pub fn centroids(&self) -> &Array2<f64> {
        &self.centroids
    }
    /// Cluster of each training point.
    pub fn labels(&self) -> &Array1<usize> {
        &self.labels
    }
    /// Sum of squared distances to the closest centroid (scikit-learn's `inertia_`).
    pub fn inertia(&self) -> f64 {
        self.inertia
    }
    /// Iterations of the best restart.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
    /// Training points per cluster, counted from the labels.
    pub fn cluster_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.centroids.nrows()];
        for &l in &self.labels {
            sizes[l] += 1;
        }
        sizes
    }
}

impl<D: Data<Elem = f64>, T> Fit<ArrayBase<D, Ix2>, T, KMeansError> for KMeansValidParams {
    type Object = KMeansModel;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<KMeansModel, KMeansError> {
        let records = dataset.records();
        let (n, d) = records.dim();
        let k = self.n_clusters;
        if k > n {
            return Err(KMeansError::TooManyClusters { k, n });
        }
        let x: Vec<f64> = records.as_standard_layout().iter().copied().collect();
        if x.iter().any(|v| !v.is_finite()) {
            return Err(KMeansError::NotFinite);
        }
        let tol = self.tol * mean_variance(&x, n, d);
        let mut master = Xoshiro256PlusPlus::seed_from_u64(self.seed);
        let seeds: Vec<u64> = (0..self.n_init).map(|_| master.next_u64()).collect();
        // Points as fixed-size arrays (zero-padded, which leaves distances unchanged) so the
        // distance loops unroll.
        let best = match d {
            1 => fit_fixed::<1>(&x, d, k, self.max_iter, tol, &seeds),
            2 => fit_fixed::<2>(&x, d, k, self.max_iter, tol, &seeds),
            3 => fit_fixed::<3>(&x, d, k, self.max_iter, tol, &seeds),
            4 => fit_fixed::<4>(&x, d, k, self.max_iter, tol, &seeds),
            5..=8 => fit_fixed::<8>(&x, d, k, self.max_iter, tol, &seeds),
            9..=16 => fit_fixed::<16>(&x, d, k, self.max_iter, tol, &seeds),
            17..=32 => fit_fixed::<32>(&x, d, k, self.max_iter, tol, &seeds),
            _ => return Err(KMeansError::TooManyFeatures(d)),
        };
        Ok(KMeansModel {
            centroids: Array2::from_shape_vec((k, d), best.centers).expect("k x d"),
            labels: best.labels.into_iter().map(|l| l as usize).collect(),
            inertia: best.inertia,
            n_iter: best.n_iter,
        })
    }
}

/// Runs every restart on `D`-dimensional points and keeps the lowest inertia.
fn fit_fixed<const D: usize>(
    x: &[f64],
    d: usize,
    k: usize,
    max_iter: usize,
    tol: f64,
    seeds: &[u64],
) -> Run {
    let points: Vec<[f64; D]> = x
        .chunks_exact(d)
        .map(|row| std::array::from_fn(|j| if j < d { row[j] } else { 0.0 }))
        .collect();
    let runs: Vec<Run> = seeds
        .par_iter()
        .map(|&s| run_once::<D>(&points, k, max_iter, tol, s))
        .collect();
    let mut best = runs
        .into_iter()
        .reduce(|a, b| if b.inertia < a.inertia { b } else { a })
        .expect("n_init >= 1");
    // Drop the padding.
    best.centers = best
        .centers
        .chunks_exact(D)
        .flat_map(|c| c[..d].to_vec())
        .collect();
    best
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>> for KMeansModel {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        let centers: Vec<f64> = self.centroids.iter().copied().collect();
        let d = self.centroids.ncols();
        let rows: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
        let labels: Vec<usize> = rows
            .par_iter()
            .map(|p| {
                (0..centers.len() / d)
                    .min_by(|&a, &b| {
                        let da: f64 = p
                            .iter()
                            .zip(&centers[a * d..])
                            .map(|(x, c)| (x - c) * (x - c))
                            .sum();
                        let db: f64 = p
                            .iter()
                            .zip(&centers[b * d..])
                            .map(|(x, c)| (x - c) * (x - c))
                            .sum();
                        da.total_cmp(&db)
                    })
                    .unwrap_or(0)
            })
            .collect();
        for (slot, l) in y.iter_mut().zip(labels) {
            *slot = l;
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

fn mean_variance(x: &[f64], n: usize, d: usize) -> f64 {
    let mut total = 0.0;
    for j in 0..d {
        let mean = (0..n).map(|i| x[i * d + j]).sum::<f64>() / n as f64;
        total += (0..n).map(|i| (x[i * d + j] - mean).powi(2)).sum::<f64>() / n as f64;
    }
    total / d as f64
}

#[inline(always)]
fn dist2<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    let mut s = 0.0;
    for j in 0..D {
        let t = a[j] - b[j];
        s += t * t;
    }
    s
}

/// (index of nearest centre, squared distance to it, squared distance to the second nearest).
#[inline(always)]
fn nearest_two<const D: usize>(p: &[f64; D], centers: &[[f64; D]]) -> (usize, f64, f64) {
    let (mut best, mut d1, mut d2) = (0, f64::INFINITY, f64::INFINITY);
    for (c, center) in centers.iter().enumerate() {
        let dd = dist2(p, center);
        if dd < d1 {
            d2 = d1;
            d1 = dd;
            best = c;
        } else if dd < d2 {
            d2 = dd;
        }
    }
    (best, d1, d2)
}

struct Run {
    /// k × D (padded) until `fit_fixed` trims it to k × d.
    centers: Vec<f64>,
    labels: Vec<u32>,
    inertia: f64,
    n_iter: usize,
}

/// Greedy k-means++ (2 + ln k candidates per step, as scikit-learn). The squared distance
/// of each point to its closest centre is kept with per-chunk totals, so a candidate is
/// sampled by finding its chunk from the chunk totals and then its point within the chunk.
fn init_plus_plus<const D: usize>(x: &[[f64; D]], k: usize, rng: &mut impl Rng) -> Vec<[f64; D]> {
    let n = x.len();
    let mut centers = Vec::with_capacity(k);
    centers.push(x[rng.gen_range(0..n)]);
    let mut closest = vec![f64::INFINITY; n];
    let mut chunk_totals = tighten(x, &mut closest, &centers[0]);
    let trials = 2 + (k as f64).ln() as usize;
    for _ in 1..k {
        let mut prefix = Vec::with_capacity(chunk_totals.len());
        let mut acc = 0.0;
        for t in &chunk_totals {
            acc += t;
            prefix.push(acc);
        }
        let candidates: Vec<[f64; D]> = (0..trials)
            .map(|_| x[sample(rng.r#gen::<f64>() * acc, &prefix, &closest)])
            .collect();
        // Potential after adding each candidate, summed chunk by chunk in order.
        let partials: Vec<Vec<f64>> = x
            .par_chunks(CHUNK)
            .zip(closest.par_chunks(CHUNK))
            .with_min_len(MIN_CHUNKS_PER_TASK)
            .map(|(xs, cl)| {
                let mut sums = vec![0.0; trials];
                for (p, &c0) in xs.iter().zip(cl) {
                    for (t, cand) in candidates.iter().enumerate() {
                        sums[t] += c0.min(dist2(p, cand));
                    }
                }
                sums
            })
            .collect();
        let mut totals = vec![0.0; trials];
        for part in &partials {
            for (t, v) in part.iter().enumerate() {
                totals[t] += v;
            }
        }
        let best = (0..trials)
            .min_by(|&a, &b| totals[a].total_cmp(&totals[b]))
            .unwrap_or(0);
        chunk_totals = tighten(x, &mut closest, &candidates[best]);
        centers.push(candidates[best]);
    }
    centers
}

/// Lowers each point's closest squared distance with a new centre; returns chunk totals.
fn tighten<const D: usize>(x: &[[f64; D]], closest: &mut [f64], center: &[f64; D]) -> Vec<f64> {
    x.par_chunks(CHUNK)
        .zip(closest.par_chunks_mut(CHUNK))
        .with_min_len(MIN_CHUNKS_PER_TASK)
        .map(|(xs, cl)| {
            let mut total = 0.0;
            for (p, c) in xs.iter().zip(cl.iter_mut()) {
                *c = c.min(dist2(p, center));
                total += *c;
            }
            total
        })
        .collect()
}

/// The point where the running sum of `closest` first exceeds `r`.
fn sample(r: f64, prefix: &[f64], closest: &[f64]) -> usize {
    let chunk = prefix.partition_point(|&c| c <= r).min(prefix.len() - 1);
    let mut acc = if chunk == 0 { 0.0 } else { prefix[chunk - 1] };
    let start = chunk * CHUNK;
    let end = (start + CHUNK).min(closest.len());
    for (i, v) in closest[start..end].iter().enumerate() {
        acc += v;
        if acc > r {
            return start + i;
        }
    }
    end - 1
}

/// Per-chunk statistics, reduced in chunk order.
struct Partial<const D: usize> {
    sums: Vec<[f64; D]>,
    counts: Vec<u64>,
    changed: usize,
}

fn reduce<const D: usize>(parts: Vec<Partial<D>>, k: usize) -> Partial<D> {
    let mut total = Partial {
        sums: vec![[0.0; D]; k],
        counts: vec![0; k],
        changed: 0,
    };
    for p in parts {
        for (a, b) in total.sums.iter_mut().zip(&p.sums) {
            for j in 0..D {
                a[j] += b[j];
            }
        }
        for (a, b) in total.counts.iter_mut().zip(&p.counts) {
            *a += b;
        }
        total.changed += p.changed;
    }
    total
}

/// What the assignment step needs to skip points: each centre's last shift, the two
/// largest shifts, and half the distance from each centre to its nearest other centre.
struct Bounds {
    shift: Vec<f64>,
    max_shift: f64,
    max_shift_at: usize,
    second_shift: f64,
    half_gap: Vec<f64>,
}

impl Bounds {
    fn new(k: usize) -> Bounds {
        Bounds {
            shift: vec![0.0; k],
            max_shift: 0.0,
            max_shift_at: usize::MAX,
            second_shift: 0.0,
            half_gap: vec![0.0; k],
        }
    }

    /// Recomputes the shift maxima and centre gaps after the centres moved by `shift`.
    fn update<const D: usize>(&mut self, centers: &[[f64; D]]) {
        (self.max_shift, self.max_shift_at, self.second_shift) = (0.0, usize::MAX, 0.0);
        for (c, &s) in self.shift.iter().enumerate() {
            if s > self.max_shift {
                self.second_shift = self.max_shift;
                self.max_shift = s;
                self.max_shift_at = c;
            } else if s > self.second_shift {
                self.second_shift = s;
            }
        }
        for (c, center) in centers.iter().enumerate() {
            let nearest = centers
                .iter()
                .enumerate()
                .filter(|&(o, _)| o != c)
                .map(|(_, other)| dist2(center, other))
                .fold(f64::INFINITY, f64::min);
            self.half_gap[c] = 0.5 * nearest.sqrt();
        }
    }
}

/// One assignment step (Hamerly): moves the bounds by the centre shifts, recomputes
/// distances only where the bounds cannot prove the label unchanged, and sums the points
/// per cluster for the next update step.
fn assign<const D: usize>(
    x: &[[f64; D]],
    centers: &[[f64; D]],
    labels: &mut [u32],
    upper: &mut [f64],
    lower: &mut [f64],
    b: &Bounds,
) -> Partial<D> {
    let k = centers.len();
    let parts: Vec<Partial<D>> = x
        .par_chunks(CHUNK)
        .zip(labels.par_chunks_mut(CHUNK))
        .zip(upper.par_chunks_mut(CHUNK))
        .zip(lower.par_chunks_mut(CHUNK))
        .with_min_len(MIN_CHUNKS_PER_TASK)
        .map(|(((xs, ls), us), lo)| {
            let mut part = Partial {
                sums: vec![[0.0; D]; k],
                counts: vec![0; k],
                changed: 0,
            };
            for (i, p) in xs.iter().enumerate() {
                let mut a = ls[i] as usize;
                us[i] += b.shift[a];
                lo[i] -= if a == b.max_shift_at {
                    b.second_shift
                } else {
                    b.max_shift
                };
                let bound = b.half_gap[a].max(lo[i]);
                if us[i] > bound {
                    us[i] = dist2(p, &centers[a]).sqrt();
                    if us[i] > bound {
                        let (best, d1, d2) = nearest_two(p, centers);
                        if best != a {
                            part.changed += 1;
                            a = best;
                            ls[i] = best as u32;
                        }
                        us[i] = d1.sqrt();
                        lo[i] = d2.sqrt();
                    }
                }
                part.counts[a] += 1;
                let sum = &mut part.sums[a];
                for j in 0..D {
                    sum[j] += p[j];
                }
            }
            part
        })
        .collect();
    reduce(parts, k)
}

fn run_once<const D: usize>(x: &[[f64; D]], k: usize, max_iter: usize, tol: f64, seed: u64) -> Run {
    let n = x.len();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let started = std::time::Instant::now();
    let mut centers = init_plus_plus(x, k, &mut rng);
    tracing::trace!(elapsed = ?started.elapsed(), "k-means++ initialised");
    // Infinite bounds: the first assignment computes every distance.
    let mut labels = vec![0u32; n];
    let mut upper = vec![f64::INFINITY; n];
    let mut lower = vec![f64::NEG_INFINITY; n];
    let mut bounds = Bounds::new(k);
    let mut stats = assign(x, &centers, &mut labels, &mut upper, &mut lower, &bounds);
    let mut n_iter = 0;
    while n_iter < max_iter {
        n_iter += 1;
        // Update step: move centres to the mean of their points (empty clusters stay put).
        let mut shift_total = 0.0;
        for (c, center) in centers.iter_mut().enumerate() {
            bounds.shift[c] = 0.0;
            if stats.counts[c] == 0 {
                continue;
            }
            let count = stats.counts[c] as f64;
            let new: [f64; D] = std::array::from_fn(|j| stats.sums[c][j] / count);
            let s2 = dist2(&new, center);
            *center = new;
            bounds.shift[c] = s2.sqrt();
            shift_total += s2;
        }
        bounds.update(&centers);
        stats = assign(x, &centers, &mut labels, &mut upper, &mut lower, &bounds);
        if stats.changed == 0 || shift_total <= tol {
            break;
        }
    }
    tracing::trace!(elapsed = ?started.elapsed(), n_iter, "k-means run converged");
    let inertia_parts: Vec<f64> = x
        .par_chunks(CHUNK)
        .zip(labels.par_chunks(CHUNK))
        .with_min_len(MIN_CHUNKS_PER_TASK)
        .map(|(xs, ls)| {
            xs.iter()
                .zip(ls)
                .map(|(p, &l)| dist2(p, &centers[l as usize]))
                .sum::<f64>()
        })
        .collect();
    Run {
        centers: centers.iter().flatten().copied().collect(),
        labels,
        inertia: inertia_parts.iter().sum(),
        n_iter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::DatasetBase;
    use ndarray::Array2;

    /// Three well-separated blobs, deterministic.
    fn blobs(n_per: usize) -> Array2<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let centres = [[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 6.0]];
        let mut data = Vec::new();
        for c in centres {
            for _ in 0..n_per {
                for v in c {
                    data.push(v + rng.r#gen::<f64>() - 0.5);
                }
            }
        }
        Array2::from_shape_vec((3 * n_per, 3), data).unwrap()
    }

    #[test]
    fn params_are_validated() {
        assert!(matches!(
            KMeansParams::new(0).check(),
            Err(KMeansError::TooFewClusters(0))
        ));
        assert!(matches!(
            KMeansParams::new(2).n_init(0).check(),
            Err(KMeansError::NoRuns)
        ));
        assert!(KMeansParams::new(2).tolerance(f64::NAN).check().is_err());
        let data = DatasetBase::from(blobs(2));
        let err = KMeansParams::new(7).fit(&data).unwrap_err();
        assert!(
            err.to_string()
                .contains("k = 7 is more than the 6 customers"),
            "{err}"
        );
    }

    #[test]
    fn agrees_with_linfa_clustering() {
        let x = blobs(400);
        let ours = KMeansParams::new(3)
            .seed(1)
            .fit(&DatasetBase::from(x.clone()))
            .unwrap();
        let theirs =
            linfa_clustering::KMeans::params_with_rng(3, Xoshiro256PlusPlus::seed_from_u64(1))
                .n_runs(10)
                .tolerance(1e-8)
                .fit(&DatasetBase::from(x.clone()))
                .unwrap();
        let their_labels: Array1<usize> = theirs.predict(&x);
        // Same partition up to renaming of clusters.
        let mut mapping = std::collections::HashMap::new();
        for (a, b) in ours.labels().iter().zip(their_labels.iter()) {
            assert_eq!(*mapping.entry(*a).or_insert(*b), *b);
        }
        // linfa's inertia() is the mean squared distance.
        let their_sum = theirs.inertia() * x.nrows() as f64;
        assert!((ours.inertia() - their_sum).abs() / their_sum < 1e-9);
        let predicted: Array1<usize> = ours.predict(&x);
        assert_eq!(&predicted, ours.labels());
    }

    #[test]
    fn same_result_on_any_thread_count() {
        // 42,000 points: past CHUNK × MIN_CHUNKS_PER_TASK (16,384), so the work is split
        // across tasks and the order in which partial sums meet is really exercised.
        let x = blobs(14_000);
        assert!(x.nrows() > 2 * CHUNK * MIN_CHUNKS_PER_TASK);
        let fit = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    KMeansParams::new(4)
                        .fit(&DatasetBase::from(x.clone()))
                        .unwrap()
                })
        };
        let one = fit(1);
        assert_eq!(one, fit(2));
        assert_eq!(one, fit(8));
    }
}
