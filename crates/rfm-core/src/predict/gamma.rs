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

/// Fits on (x, mean spend) pairs with x > 0 and spend > 0. A repeater's log-likelihood is
/// ln Γ(px + q) − ln Γ(px) − ln Γ(q) + q ln v + (px − 1) ln m + px ln x − (px + q) ln(xm + v);
/// the gamma terms depend on x alone and are computed once per distinct x.
pub fn fit(repeaters: &[(f64, f64)], penalizer: f64) -> Result<GammaGamma, FitError> {
    use rayon::prelude::*;
    if repeaters.is_empty() {
        return Err(FitError::NoRepeaters);
    }
    let groups = super::weighted(repeaters.iter().map(|&(x, m)| [x, m]));
    let (xs, ix) = super::bgnbd::distinct(groups.iter().map(|(k, _)| k[0]));
    // Per group: index of x, x, ln m, x ln x, x m, weight.
    let rows: Vec<(u32, f64, f64, f64, f64, f64)> = groups
        .iter()
        .zip(&ix)
        .map(|(([x, m], w), &i)| (i, *x, m.ln(), x * x.ln(), x * m, *w))
        .collect();
    let n = repeaters.len() as f64;
    let cost = |logs: &[f64]| {
        let [p, q, v] = [0, 1, 2].map(|i| super::bounded_exp(logs[i]));
        let gammas: Vec<f64> = xs
            .iter()
            .map(|x| ln_gamma(p * x + q) - ln_gamma(p * x))
            .collect();
        let (ln_v, fixed) = (v.ln(), -ln_gamma(q));
        let ll: f64 = rows
            .par_iter()
            .with_min_len(8192)
            .map(|&(i, x, ln_m, x_ln_x, xm, w)| {
                let px = p * x;
                w * (gammas[i as usize] + fixed + q * ln_v + (px - 1.0) * ln_m + p * x_ln_x
                    - (px + q) * (xm + v).ln())
            })
            .sum();
        let value = -ll / n + penalizer * (p * p + q * q + v * v);
        if value.is_finite() { value } else { f64::MAX }
    };
    let best = minimise(&cost, &[0.0; 3]).ok_or(FitError::NoConvergence("Gamma-Gamma"))?;
    let [p, q, v] = [0, 1, 2].map(|i| super::bounded_exp(best[i]));
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
