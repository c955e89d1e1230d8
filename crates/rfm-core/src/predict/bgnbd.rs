//! The BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005): while alive a customer
//! buys at a Poisson rate λ ~ Gamma(r, α), and after each purchase drops out with
//! probability p ~ Beta(a, b). Fitted by maximum likelihood on log-parameters; the formulas
//! and the L2 penalty follow the `lifetimes` package, so that its results can be compared.

use serde::{Deserialize, Serialize};

use super::special::{hyp2f1, ln_gamma};
use super::{FitError, Summary, minimise};

/// Fitted BG/NBD parameters and the log-likelihood at them (summed over customers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    pub log_likelihood: f64,
}

/// The distinct histories, each as indices into the distinct values of x, t_x and T, with
/// its weight: a likelihood evaluation computes the costly terms (`ln_gamma`, `ln`) once per
/// distinct value, then combines them per history.
struct Tables {
    xs: Vec<f64>,
    txs: Vec<f64>,
    ts: Vec<f64>,
    /// (index of x, of t_x, of T, weight).
    groups: Vec<(u32, u32, u32, f64)>,
}

/// The distinct values of `values`, and each value's index among them.
pub(crate) fn distinct(values: impl Iterator<Item = f64>) -> (Vec<f64>, Vec<u32>) {
    let mut index: rustc_hash::FxHashMap<u64, u32> = rustc_hash::FxHashMap::default();
    let mut out = Vec::new();
    let ids = values
        .map(|v| {
            *index.entry(v.to_bits()).or_insert_with(|| {
                out.push(v);
                (out.len() - 1) as u32
            })
        })
        .collect();
    (out, ids)
}

impl Tables {
    fn new(customers: &[Summary]) -> Tables {
        let groups = super::weighted(customers.iter().map(|s| [s.x, s.t_x, s.t]));
        let (xs, ix) = distinct(groups.iter().map(|(k, _)| k[0]));
        let (txs, itx) = distinct(groups.iter().map(|(k, _)| k[1]));
        let (ts, it) = distinct(groups.iter().map(|(k, _)| k[2]));
        let groups = (0..groups.len())
            .map(|g| (ix[g], itx[g], it[g], groups[g].1))
            .collect();
        Tables {
            xs,
            txs,
            ts,
            groups,
        }
    }

    /// The summed log-likelihood at (r, α, a, b); per history the two terms of the sum are
    /// added in log space.
    fn log_likelihood(&self, r: f64, alpha: f64, a: f64, b: f64) -> f64 {
        use rayon::prelude::*;
        let fixed = r * alpha.ln() - ln_gamma(r) + ln_gamma(a + b) - ln_gamma(b);
        // Per x: the gamma terms, ln(b + x − 1) and r + x.
        let by_x: Vec<(f64, f64, f64)> = self
            .xs
            .iter()
            .map(|&x| {
                let g = ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x);
                let lb = if x > 0.0 { (b + x - 1.0).ln() } else { 0.0 };
                (g, lb, r + x)
            })
            .collect();
        let ln_t: Vec<f64> = self.ts.iter().map(|t| (alpha + t).ln()).collect();
        let ln_tx: Vec<f64> = self.txs.iter().map(|t| (alpha + t).ln()).collect();
        let ln_a = a.ln();
        let one = |&(ix, itx, it, w): &(u32, u32, u32, f64)| {
            let (g, lb, rx) = by_x[ix as usize];
            let a3 = -rx * ln_t[it as usize];
            let tail = if self.xs[ix as usize] > 0.0 {
                let a4 = ln_a - lb - rx * ln_tx[itx as usize];
                let (hi, lo) = if a3 > a4 { (a3, a4) } else { (a4, a3) };
                hi + (lo - hi).exp().ln_1p()
            } else {
                a3
            };
            w * (g + tail)
        };
        let weight: f64 = self.groups.iter().map(|g| g.3).sum();
        let sum: f64 = self.groups.par_iter().with_min_len(8192).map(one).sum();
        sum + weight * fixed
    }
}

/// Fits the model to `customers`. Customers with the same (x, t_x, T) are one term with a
/// weight, and the costly terms are computed once per distinct value of x, t_x and T, so
/// hundreds of thousands of customers fit in seconds.
pub fn fit(customers: &[Summary], penalizer: f64) -> Result<BgNbd, FitError> {
    if customers.is_empty() {
        return Err(FitError::NoCustomers);
    }
    if customers.iter().all(|s| s.x == 0.0) {
        return Err(FitError::NoRepeaters);
    }
    let tables = Tables::new(customers);
    let n = customers.len() as f64;
    let total = |p: &[f64]| tables.log_likelihood(p[0], p[1], p[2], p[3]);
    let cost = |logs: &[f64]| {
        let p: Vec<f64> = logs.iter().map(|v| super::bounded_exp(*v)).collect();
        let penalty = penalizer * p.iter().map(|v| v * v).sum::<f64>();
        let v = -total(&p) / n + penalty;
        if v.is_finite() { v } else { f64::MAX }
    };
    let best = minimise(&cost, &[0.0; 4]).ok_or(FitError::NoConvergence("BG/NBD"))?;
    let p: Vec<f64> = best.iter().map(|v| super::bounded_exp(*v)).collect();
    let ll = total(&p);
    if !ll.is_finite() || p.iter().any(|v| !v.is_finite()) {
        return Err(FitError::NoConvergence("BG/NBD"));
    }
    Ok(BgNbd {
        r: p[0],
        alpha: p[1],
        a: p[2],
        b: p[3],
        log_likelihood: ll,
    })
}

impl BgNbd {
    /// The probability that a customer with this history is still alive at T.
    pub fn p_alive(&self, s: &Summary) -> f64 {
        if s.x == 0.0 {
            return 1.0;
        }
        let odds = (self.a / (self.b + s.x - 1.0))
            * ((self.alpha + s.t) / (self.alpha + s.t_x)).powf(self.r + s.x);
        1.0 / (1.0 + odds)
    }

    /// Expected purchases in the next `t` periods, given the history (Fader, Hardie & Lee
    /// 2005, eq. 10, as `lifetimes` computes it).
    pub fn expected_purchases(&self, s: &Summary, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let (x, tx, big_t) = (s.x, s.t_x, s.t);
        let z = t / (alpha + big_t + t);
        let Some(hyp) = hyp2f1(r + x, b + x, a + b + x - 1.0, z) else {
            return f64::NAN;
        };
        let first = (a + b + x - 1.0) / (a - 1.0);
        let second = 1.0 - hyp * ((alpha + big_t) / (alpha + t + big_t)).powf(r + x);
        let odds = if x > 0.0 {
            (a / (b + x - 1.0)) * ((alpha + big_t) / (alpha + tx)).powf(r + x)
        } else {
            0.0
        };
        first * second / (1.0 + odds)
    }

    /// Expected purchases of a new customer in `t` periods (the unconditional E[X(t)]).
    pub fn expected_purchases_new(&self, t: f64) -> f64 {
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let z = t / (alpha + t);
        let hyp = hyp2f1(r, b, a + b - 1.0, z).unwrap_or(f64::NAN);
        (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)).powf(r) * hyp)
    }
}
