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

/// One customer's log-likelihood, with the two terms of the sum added in log space.
fn log_likelihood(r: f64, alpha: f64, a: f64, b: f64, s: &Summary) -> f64 {
    let (x, tx, t) = (s.x, s.t_x, s.t);
    let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
    let a3 = -(r + x) * (alpha + t).ln();
    if x > 0.0 {
        let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + tx).ln();
        let m = a3.max(a4);
        a1 + a2 + m + ((a3 - m).exp() + (a4 - m).exp()).ln()
    } else {
        a1 + a2 + a3
    }
}

/// Fits the model to `customers`. Customers with the same (x, t_x, T) are one term with a
/// weight: the likelihood is evaluated once per distinct history, and in parallel when
/// there are many, so hundreds of thousands of customers fit in seconds.
pub fn fit(customers: &[Summary], penalizer: f64) -> Result<BgNbd, FitError> {
    use rayon::prelude::*;
    if customers.is_empty() {
        return Err(FitError::NoCustomers);
    }
    if customers.iter().all(|s| s.x == 0.0) {
        return Err(FitError::NoRepeaters);
    }
    let groups = super::weighted(customers.iter().map(|s| [s.x, s.t_x, s.t]));
    let n = customers.len() as f64;
    let total = |p: &[f64]| -> f64 {
        groups
            .par_iter()
            .with_min_len(4096)
            .map(|(k, w)| {
                let s = Summary {
                    x: k[0],
                    t_x: k[1],
                    t: k[2],
                    spend: 0.0,
                };
                w * log_likelihood(p[0], p[1], p[2], p[3], &s)
            })
            .sum()
    };
    let cost = |logs: &[f64]| {
        let p: Vec<f64> = logs.iter().map(|v| v.exp()).collect();
        let penalty = penalizer * p.iter().map(|v| v * v).sum::<f64>();
        let v = -total(&p) / n + penalty;
        if v.is_finite() { v } else { f64::MAX }
    };
    let best = minimise(&cost, &[0.0; 4]).ok_or(FitError::NoConvergence("BG/NBD"))?;
    let p: Vec<f64> = best.iter().map(|v| v.exp()).collect();
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
