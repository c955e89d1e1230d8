//! `rfm-agent clv`: the models fitted on a segmented run's purchase histories, per-customer
//! predictions, and per-segment sums, with the hold-out check when there is a calibration
//! end. The JSON document is a typed contract with a schema version.

use serde::{Deserialize, Serialize};

use super::PredictSettings;
use super::{FitError, Horizon, Models, Prediction, Summary};
use crate::dates;
use crate::rfm::histories::{CustomerHistory, Period, Summaries, Tracking};

pub const SCHEMA: &str = "rfm-agent/clv/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelInfo {
    pub period: Period,
    pub bgnbd: super::BgNbd,
    pub gamma_gamma: super::GammaGamma,
    pub penalizer: f64,
    pub horizon_days: u32,
    /// The horizon in periods, and in whole months for the CLV.
    pub horizon_periods: f64,
    pub horizon_months: u32,
    pub discount_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub end: String,
    /// Customers with a purchase before the end, and those with a repeat purchase period.
    pub customers: usize,
    pub repeaters: usize,
    /// Repeaters with a positive mean spend: the Gamma-Gamma fit's customers.
    pub spend_customers: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holdout {
    pub start: String,
    pub end: String,
    pub periods: f64,
    pub actual_repeat_purchases: u64,
    pub predicted_repeat_purchases: f64,
}

/// One segment's predictions over the horizon, summed over its customers (P(alive) is the
/// mean), beside the value its customers bought in the same length of time up to the end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmentPrediction {
    pub cluster: usize,
    pub customers: usize,
    pub mean_p_alive: f64,
    pub expected_purchases: f64,
    /// Expected purchases times expected spend per purchase, undiscounted.
    pub expected_revenue: f64,
    pub clv: f64,
    /// Value bought in the horizon's length of periods up to the end.
    pub recent_revenue: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_actual: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_predicted: Option<f64>,
}

/// The `clv` document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClvReport {
    pub schema: String,
    pub model: ModelInfo,
    pub calibration: Calibration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Holdout>,
    pub segments: Vec<SegmentPrediction>,
    /// Per customer, in the RFM table's order (not in the JSON: `predictions.csv` holds them).
    #[serde(skip)]
    pub customers: Vec<Option<(Summary, Prediction)>>,
    /// Cumulative repeat purchases per period, actual and predicted (the model-check chart).
    #[serde(skip)]
    pub tracking: Option<TrackingSeries>,
}

/// The model check: from the first purchase period on, cumulative repeat purchases as
/// they happened and as the BG/NBD expects them from each period's new customers.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingSeries {
    pub period: Period,
    /// The first period's start (milliseconds).
    pub first_start: i64,
    /// Index of the calibration end's period.
    pub calibration_end: usize,
    pub actual: Vec<f64>,
    pub predicted: Vec<f64>,
}

/// What the models gave a segmented run: `clusters.json`'s `predict`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    Fitted(Box<ClvReport>),
    /// The run went on without predictions, for this reason.
    Skipped {
        reason: String,
    },
}

impl Outcome {
    /// The outcome as `clusters.json` records it: without the per-customer values and the
    /// per-period series, which it does not hold.
    pub fn recorded(&self) -> Outcome {
        match self {
            Outcome::Fitted(r) => Outcome::Fitted(Box::new(ClvReport {
                schema: r.schema.clone(),
                model: r.model.clone(),
                calibration: r.calibration.clone(),
                holdout: r.holdout.clone(),
                segments: r.segments.clone(),
                customers: Vec::new(),
                tracking: None,
            })),
            skipped => skipped.clone(),
        }
    }

    pub fn fitted(&self) -> Option<&ClvReport> {
        match self {
            Outcome::Fitted(r) => Some(r),
            Outcome::Skipped { .. } => None,
        }
    }
}

/// A segmented run's customers, as the models see them.
pub struct Customers<'a> {
    /// Each customer's purchase history (in RFM order), when it was kept.
    pub histories: Option<&'a Summaries>,
    /// Each customer's cluster, and the number of clusters.
    pub labels: &'a [usize],
    pub clusters: usize,
    /// The run's snapshot (milliseconds).
    pub snapshot: i64,
}

/// Fits the models on a run's histories and predicts.
pub fn clv(run: &Customers, p: &PredictSettings) -> Result<ClvReport, FitError> {
    let h = run.histories.ok_or(FitError::NoCustomers)?;
    let period = h.period;
    let summaries: Vec<Summary> = h.customers.iter().flatten().map(|c| c.summary).collect();
    let models = super::fit(&summaries, p.penalizer)?;
    let horizon = Horizon {
        periods_per_month: period.per_month(),
        months: (f64::from(p.horizon_days) / 30.0).round().max(1.0) as u32,
        discount_rate: p.discount_rate,
    };
    let horizon_periods = match period {
        Period::Day => f64::from(p.horizon_days),
        Period::Week => f64::from(p.horizon_days) / 7.0,
    };
    let with_holdout = !p.calibration_end.trim().is_empty();
    let end_ms = match p.calibration_end.trim() {
        "" => run.snapshot,
        v => dates::parse_snapshot(v).unwrap_or(run.snapshot),
    };
    let holdout_periods = (period.of(run.snapshot) - h.end_period) as f64;
    let customers = per_customer(&models, &h.customers, &horizon, horizon_periods)?;
    let predicted_holdout = |s: &Summary| models.bgnbd.expected_purchases(s, holdout_periods);
    let segments = by_segment(
        run,
        &customers,
        &h.customers,
        with_holdout,
        &predicted_holdout,
    );
    let holdout = with_holdout.then(|| Holdout {
        start: dates::format_millis(end_ms),
        end: dates::format_millis(run.snapshot),
        periods: holdout_periods,
        actual_repeat_purchases: h
            .customers
            .iter()
            .flatten()
            .map(|c| u64::from(c.holdout))
            .sum(),
        predicted_repeat_purchases: summaries.iter().map(predicted_holdout).sum(),
    });
    if holdout
        .as_ref()
        .is_some_and(|h| !h.predicted_repeat_purchases.is_finite())
    {
        return Err(FitError::NotFinite);
    }
    let tracking = h
        .tracking
        .as_ref()
        .and_then(|t| tracking(&models, t, period, h.end_period));
    Ok(ClvReport {
        schema: SCHEMA.into(),
        model: ModelInfo {
            period,
            bgnbd: models.bgnbd,
            gamma_gamma: models.gamma_gamma,
            penalizer: p.penalizer,
            horizon_days: p.horizon_days,
            horizon_periods,
            horizon_months: horizon.months,
            discount_rate: p.discount_rate,
        },
        calibration: calibration(&summaries, end_ms),
        holdout,
        segments,
        customers,
        tracking,
    })
}

/// Every customer's predictions: CLV month by month, expected purchases over the horizon
/// in periods. Refused when one is not a finite number.
fn per_customer(
    models: &Models,
    customers: &[Option<CustomerHistory>],
    horizon: &Horizon,
    horizon_periods: f64,
) -> Result<Vec<Option<(Summary, Prediction)>>, FitError> {
    let finite = |p: &Prediction| {
        [p.p_alive, p.expected_purchases, p.expected_spend, p.clv]
            .iter()
            .all(|v| v.is_finite())
    };
    customers
        .iter()
        .map(|r| {
            let Some(c) = r else { return Ok(None) };
            let mut pred = models.predict(&c.summary, horizon);
            pred.expected_purchases = models.bgnbd.expected_purchases(&c.summary, horizon_periods);
            match finite(&pred) {
                true => Ok(Some((c.summary, pred))),
                false => Err(FitError::NotFinite),
            }
        })
        .collect()
}

fn calibration(summaries: &[Summary], end_ms: i64) -> Calibration {
    Calibration {
        end: dates::format_millis(end_ms),
        customers: summaries.len(),
        repeaters: summaries.iter().filter(|s| s.x > 0.0).count(),
        spend_customers: summaries
            .iter()
            .filter(|s| s.x > 0.0 && s.spend > 0.0)
            .count(),
    }
}

/// Cumulative repeat purchases per period, actual and expected: a customer who first
/// bought in period c is expected to have made E[X(i − c)] repeat purchases by period i.
/// `None` if the model's expectation is not finite.
fn tracking(m: &Models, t: &Tracking, period: Period, end: i64) -> Option<TrackingSeries> {
    let n = t.births.len();
    let expected: Vec<f64> = (0..n)
        .map(|d| m.bgnbd.expected_purchases_new(d as f64))
        .collect();
    if expected.iter().any(|e| !e.is_finite()) {
        return None;
    }
    let (mut actual, mut predicted) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut so_far = 0.0;
    for i in 0..n {
        so_far += t.repeats[i] as f64;
        actual.push(so_far);
        predicted.push((0..=i).map(|c| t.births[c] as f64 * expected[i - c]).sum());
    }
    let day = 86_400_000;
    let first_start = match period {
        Period::Day => t.first * day,
        Period::Week => (t.first * 7 - 3) * day,
    };
    Some(TrackingSeries {
        period,
        first_start,
        calibration_end: (end - t.first).clamp(0, n as i64 - 1) as usize,
        actual,
        predicted,
    })
}

/// Sums per segment: customers, mean P(alive), expected purchases and revenue, CLV, the
/// value of the last horizon, and the hold-out's actual and predicted repeat purchases.
fn by_segment(
    run: &Customers,
    customers: &[Option<(Summary, Prediction)>],
    histories: &[Option<CustomerHistory>],
    with_holdout: bool,
    predicted_holdout: &dyn Fn(&Summary) -> f64,
) -> Vec<SegmentPrediction> {
    let mut segments: Vec<SegmentPrediction> = (0..run.clusters)
        .map(|cluster| SegmentPrediction {
            cluster,
            customers: 0,
            mean_p_alive: 0.0,
            expected_purchases: 0.0,
            expected_revenue: 0.0,
            clv: 0.0,
            recent_revenue: 0.0,
            holdout_actual: with_holdout.then_some(0),
            holdout_predicted: with_holdout.then_some(0.0),
        })
        .collect();
    for (i, row) in customers.iter().enumerate() {
        let (Some((s, pred)), Some(seg), Some(h)) =
            (row, segments.get_mut(run.labels[i]), histories[i])
        else {
            continue;
        };
        seg.customers += 1;
        seg.mean_p_alive += pred.p_alive;
        seg.expected_purchases += pred.expected_purchases;
        seg.expected_revenue += pred.expected_purchases * pred.expected_spend;
        seg.clv += pred.clv;
        seg.recent_revenue += h.recent;
        if let (Some(actual), Some(predicted)) =
            (&mut seg.holdout_actual, &mut seg.holdout_predicted)
        {
            *actual += u64::from(h.holdout);
            *predicted += predicted_holdout(s);
        }
    }
    for seg in &mut segments {
        seg.mean_p_alive /= seg.customers.max(1) as f64;
    }
    segments
}
