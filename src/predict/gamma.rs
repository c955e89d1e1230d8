//! The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV"):
//! a customer's purchase values are Gamma(p, ν) with ν ~ Gamma(q, v). Fitted on repeaters'
//! mean spend, with `lifetimes`' conventions.

use serde::{Deserialize, Serialize};

use super::special::ln_gamma;
use super::{FitError, minimise};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// One repeater's log-likelihood: `x` repeat periods with mean spend `m`.
fn log_likelihood(p: f64, q: f64, v: f64, x: f64, m: f64) -> f64 {
    ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
        + q * v.ln()
        + (p * x - 1.0) * m.ln()
        + (p * x) * x.ln()
        - (p * x + q) * (x * m + v).ln()
}

/// Fits on (x, mean spend) pairs with x > 0 and spend > 0.
pub fn fit(repeaters: &[(f64, f64)], penalizer: f64) -> Result<GammaGamma, FitError> {
    if repeaters.is_empty() {
        return Err(FitError::NoRepeaters);
    }
    let groups = super::weighted(repeaters.iter().map(|&(x, m)| [x, m]));
    let n = repeaters.len() as f64;
    let cost = |logs: &[f64]| {
        let (p, q, v) = (logs[0].exp(), logs[1].exp(), logs[2].exp());
        let ll: f64 = groups
            .iter()
            .map(|(k, w)| w * log_likelihood(p, q, v, k[0], k[1]))
            .sum();
        let value = -ll / n + penalizer * (p * p + q * q + v * v);
        if value.is_finite() { value } else { f64::MAX }
    };
    let best = minimise(&cost, &[0.0; 3]).ok_or(FitError::NoConvergence("Gamma-Gamma"))?;
    let (p, q, v) = (best[0].exp(), best[1].exp(), best[2].exp());
    if ![p, q, v].iter().all(|x| x.is_finite()) {
        return Err(FitError::NoConvergence("Gamma-Gamma"));
    }
    Ok(GammaGamma { p, q, v })
}

impl GammaGamma {
    /// Expected spend per purchase given `x` repeat periods with mean spend `m` (for a
    /// customer without repeats, the population mean p·v/(q−1)).
    pub fn expected_spend(&self, x: f64, m: f64) -> f64 {
        (self.p * (self.v + x * m)) / (self.p * x + self.q - 1.0)
    }
}
