//! Predicted value: per-customer purchase histories (x, t_x, T and mean repeat spend, in
//! `lifetimes`' conventions) → the BG/NBD and Gamma-Gamma fits → per customer P(alive),
//! expected purchases and spend over a horizon, and CLV.

pub mod bgnbd;
pub mod gamma;
pub mod outcome;
mod settings;
pub mod special;

use serde::{Deserialize, Serialize};

pub use bgnbd::BgNbd;
pub use gamma::GammaGamma;
pub use settings::PredictSettings;

pub use crate::rfm::histories::Summary;

/// Why a model could not be fitted; the RFM run goes on without predictions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no customer has a purchase before the end of the calibration period")]
    NoCustomers,
    #[error(
        "no customer bought in more than one period, so there is nothing to learn repeat buying from"
    )]
    NoRepeaters,
    #[error("the {0} fit did not converge")]
    NoConvergence(&'static str),
    #[error(
        "the fitted models give predictions that are not finite numbers: the data are far from what the BG/NBD model describes"
    )]
    NotFinite,
}

/// Both fits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Models {
    pub bgnbd: BgNbd,
    pub gamma_gamma: GammaGamma,
}

/// One customer's predictions over the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub p_alive: f64,
    pub expected_purchases: f64,
    pub expected_spend: f64,
    pub clv: f64,
}

/// Fits both models. Gamma-Gamma uses the repeaters with a positive mean spend.
pub fn fit(customers: &[Summary], penalizer: f64) -> Result<Models, FitError> {
    let bgnbd = bgnbd::fit(customers, penalizer)?;
    let repeaters: Vec<(f64, f64)> = customers
        .iter()
        .filter(|s| s.x > 0.0 && s.spend > 0.0)
        .map(|s| (s.x, s.spend))
        .collect();
    let gamma_gamma = gamma::fit(&repeaters, penalizer)?;
    Ok(Models { bgnbd, gamma_gamma })
}

/// How the horizon is measured: periods per month (30 days, or 4.345 weeks, as
/// `lifetimes`), months in the horizon, and the monthly discount rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizon {
    pub periods_per_month: f64,
    pub months: u32,
    pub discount_rate: f64,
}

impl Models {
    /// A customer's predictions: expected purchases over the horizon, and CLV as
    /// `lifetimes`' `customer_lifetime_value` sums it: month by month, the month's expected
    /// purchases times the expected spend, discounted.
    pub fn predict(&self, s: &Summary, h: &Horizon) -> Prediction {
        let spend = self.gamma_gamma.expected_spend(s.x, s.spend);
        let step = h.periods_per_month;
        let mut clv = 0.0;
        let mut before = 0.0;
        for month in 1..=h.months {
            let upto = self.bgnbd.expected_purchases(s, f64::from(month) * step);
            clv += spend * (upto - before) / (1.0 + h.discount_rate).powi(month as i32);
            before = upto;
        }
        Prediction {
            p_alive: self.bgnbd.p_alive(s),
            expected_purchases: before,
            expected_spend: spend,
            clv,
        }
    }
}

/// Distinct keys with their counts, in first-seen order (a likelihood term per distinct
/// history, weighted).
pub(crate) fn weighted<const N: usize>(
    keys: impl Iterator<Item = [f64; N]>,
) -> Vec<([f64; N], f64)> {
    let mut index: rustc_hash::FxHashMap<[u64; N], usize> = rustc_hash::FxHashMap::default();
    let mut out: Vec<([f64; N], f64)> = Vec::new();
    for k in keys {
        let bits = k.map(f64::to_bits);
        match index.get(&bits) {
            Some(&i) => out[i].1 += 1.0,
            None => {
                index.insert(bits, out.len());
                out.push((k, 1.0));
            }
        }
    }
    out
}

/// Largest |log| of a parameter the fits consider. On data the models do not describe (no
/// drop-out at all, identical customers) the likelihood keeps rising towards a boundary;
/// beyond this it is flat, so the optimiser stops there instead of walking on.
const MAX_LOG_PARAM: f64 = 20.0;

/// A parameter from its log, kept within ±[`MAX_LOG_PARAM`].
pub(crate) fn bounded_exp(log: f64) -> f64 {
    log.clamp(-MAX_LOG_PARAM, MAX_LOG_PARAM).exp()
}

/// Cost evaluations one fit may use: enough for an interior optimum many times over; a fit
/// that walks along a flat ridge towards a boundary stops here with its best point.
const MAX_EVALUATIONS: u64 = 12_000;

/// Minimises `cost` from `start` with Nelder–Mead (argmin), restarted from the best point
/// until a restart no longer improves it: a simplex can shrink before it reaches the
/// minimum of a likelihood with long curved valleys. Stops after [`MAX_EVALUATIONS`];
/// `None` when no finite point was found.
pub(crate) fn minimise(cost: &dyn Fn(&[f64]) -> f64, start: &[f64]) -> Option<Vec<f64>> {
    use argmin::core::{CostFunction, Error, Executor, State};
    use argmin::solver::neldermead::NelderMead;
    struct Problem<'a>(&'a dyn Fn(&[f64]) -> f64, &'a std::cell::Cell<u64>);
    impl CostFunction for Problem<'_> {
        type Param = Vec<f64>;
        type Output = f64;
        fn cost(&self, p: &Vec<f64>) -> Result<f64, Error> {
            self.1.set(self.1.get() + 1);
            Ok((self.0)(p))
        }
    }
    let evals = std::cell::Cell::new(0u64);
    let mut best = start.to_vec();
    let mut best_cost = cost(&best);
    loop {
        let mut simplex = vec![best.clone()];
        for i in 0..best.len() {
            let mut v = best.clone();
            v[i] += 0.5;
            simplex.push(v);
        }
        let solver = NelderMead::new(simplex).with_sd_tolerance(1e-12).ok()?;
        let result = Executor::new(Problem(cost, &evals), solver)
            .configure(|s| s.max_iters(1000))
            .run()
            .ok()?;
        let state = result.state();
        let (found, value) = (state.get_best_param()?.clone(), state.get_best_cost());
        let settled = best_cost - value < 1e-10;
        if value < best_cost {
            (best, best_cost) = (found, value);
        }
        tracing::debug!(
            evals = evals.get(),
            cost = best_cost,
            ?best,
            "minimise: a restart ended"
        );
        if settled || evals.get() >= MAX_EVALUATIONS {
            return (best_cost.is_finite() && best_cost < f64::MAX).then_some(best);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Gamma};

    fn cdnow() -> Vec<Summary> {
        include_str!("../../../../tests/fixtures/cdnow/summary.csv")
            .lines()
            .skip(1)
            .map(|l| {
                let v: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
                Summary {
                    x: v[1],
                    t_x: v[2],
                    t: v[3],
                    spend: v[4],
                }
            })
            .collect()
    }

    /// Equal to 3 significant digits.
    fn three_digits(got: f64, want: f64) -> bool {
        format!("{got:.2e}") == format!("{want:.2e}")
    }

    /// The published values on the CDNOW sample, to 3 significant digits.
    #[test]
    fn cdnow_gives_the_published_parameters() {
        let customers = cdnow();
        assert_eq!(customers.len(), 2357);
        let m = fit(&customers, 0.0).unwrap();
        eprintln!("CDNOW fit: {m:?}");
        let b = m.bgnbd;
        for (got, want) in [(b.r, 0.243), (b.alpha, 4.414), (b.a, 0.793), (b.b, 2.426)] {
            assert!(three_digits(got, want), "{b:?}");
        }
        assert!((b.log_likelihood - -9582.4).abs() < 0.5, "{b:?}");
        let g = m.gamma_gamma;
        for (got, want) in [(g.p, 6.25), (g.q, 3.74), (g.v, 15.44)] {
            assert!(three_digits(got, want), "{g:?}");
        }
        let h = Horizon {
            periods_per_month: 4.345,
            months: 9,
            discount_rate: 0.01,
        };
        let p = m.predict(&customers[0], &h);
        assert!(p.clv > 0.0 && p.expected_spend > 0.0 && p.p_alive > 0.0 && p.p_alive <= 1.0);
    }

    /// Customers simulated from the two processes with known parameters: the fits recover
    /// them within sampling error.
    #[test]
    fn simulated_parameters_are_recovered() {
        let (r, alpha, a, b) = (0.5, 6.0, 0.8, 2.5);
        let (p, q, v) = (6.0, 4.0, 15.0);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let (rate, drop) = (
            Gamma::new(r, 1.0 / alpha).unwrap(),
            Beta::new(a, b).unwrap(),
        );
        let scale = Gamma::new(q, 1.0 / v).unwrap();
        let t_end = 52.0;
        let customers: Vec<Summary> = (0..8000)
            .map(|_| {
                let (lambda, dropout) = (rate.sample(&mut rng), drop.sample(&mut rng));
                let nu = scale.sample(&mut rng);
                let spend = Gamma::new(p, 1.0 / nu).unwrap();
                let (mut t, mut x, mut tx, mut total) = (0.0, 0.0, 0.0, 0.0);
                loop {
                    t += -rng.r#gen::<f64>().ln() / lambda;
                    if t > t_end {
                        break;
                    }
                    x += 1.0;
                    tx = t;
                    total += spend.sample(&mut rng);
                    if rng.r#gen::<f64>() < dropout {
                        break;
                    }
                }
                Summary {
                    x,
                    t_x: tx,
                    t: t_end,
                    spend: if x > 0.0 { total / x } else { 0.0 },
                }
            })
            .collect();
        let m = fit(&customers, 0.0).unwrap();
        let got = m.bgnbd;
        for (g, w) in [(got.r, r), (got.alpha, alpha), (got.a, a), (got.b, b)] {
            assert!((g - w).abs() / w < 0.2, "{got:?}");
        }
        let gg = m.gamma_gamma;
        for (g, w) in [(gg.p, p), (gg.q, q), (gg.v, v)] {
            assert!((g - w).abs() / w < 0.25, "{gg:?}");
        }
    }

    #[test]
    fn no_repeaters_is_said() {
        let once = [Summary {
            x: 0.0,
            t_x: 0.0,
            t: 10.0,
            spend: 0.0,
        }; 5];
        assert_eq!(fit(&once, 0.0).unwrap_err(), FitError::NoRepeaters);
        assert_eq!(fit(&[], 0.0).unwrap_err(), FitError::NoCustomers);
    }
}
