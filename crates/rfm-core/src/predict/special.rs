//! The special functions the models need: ln Γ (from `libm`) and Gauss's hypergeometric
//! ₂F₁ on 0 ≤ z < 1, by its series. No maintained crate has ₂F₁ for real arguments (the
//! `special` and `statrs` crates stop at Γ, B and the incomplete functions), so it is
//! written here: the series with each term from the last, in floating point, until a term
//! no longer moves the sum, with Euler's transformation where the series converges slowly.

pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ₂F₁(a, b; c; z) for 0 ≤ z < 1 and c > 0; `None` when the series does not settle.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) || c <= 0.0 {
        return None;
    }
    // Near z = 1 the series needs many terms; Euler's transformation
    // ₂F₁(a,b;c;z) = (1-z)^(c-a-b) ₂F₁(c-a, c-b; c; z) helps when c-a-b is not small.
    series(a, b, c, z).or_else(|| series(c - a, c - b, c, z).map(|f| f * (1.0 - z).powf(c - a - b)))
}

fn series(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for k in 0..200_000 {
        let k = k as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if !sum.is_finite() {
            return None;
        }
        if term.abs() <= 1e-15 * sum.abs() {
            return Some(sum);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // ₂F₁(1,1;2;z) = -ln(1-z)/z; ₂F₁(a,b;b;z) = (1-z)^-a.
        let z = 0.7;
        assert!((hyp2f1(1.0, 1.0, 2.0, z).unwrap() + (1.0f64 - z).ln() / z).abs() < 1e-12);
        assert!((hyp2f1(2.5, 3.0, 3.0, 0.95).unwrap() - 0.05f64.powf(-2.5)).abs() < 1e-8);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 1.0), None);
    }
}
