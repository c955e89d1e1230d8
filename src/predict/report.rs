//! `rfm-agent clv`: the models fitted on a segmented run's purchase histories, per-customer
//! predictions, and per-segment sums, with the hold-out check when there is a calibration
//! end. The JSON document is a typed contract with a schema version.

use serde::{Deserialize, Serialize};

use super::{FitError, Horizon, Prediction, Summary};
use crate::dates;
use crate::pipeline::SegmentRun;
use crate::rfm::histories::Period;
use crate::settings::PredictSettings;

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

/// One segment's predictions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmentPrediction {
    pub cluster: usize,
    pub customers: usize,
    pub mean_p_alive: f64,
    pub expected_purchases: f64,
    pub clv: f64,
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
}

/// Fits the models on `run`'s histories and predicts.
pub fn clv(run: &SegmentRun, p: &PredictSettings) -> Result<ClvReport, FitError> {
    let (period, rows) = run.histories.as_ref().ok_or(FitError::NoCustomers)?;
    let summaries: Vec<Summary> = rows.iter().flatten().map(|(s, _)| *s).collect();
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
    let end_ms = match p.calibration_end.trim() {
        "" => run.snapshot,
        v => dates::parse_snapshot(v).unwrap_or(run.snapshot),
    };
    let holdout_periods = (period.of(run.snapshot) - period.of(end_ms)) as f64;
    let with_holdout = !p.calibration_end.trim().is_empty();
    let customers: Vec<Option<(Summary, Prediction)>> = rows
        .iter()
        .map(|r| {
            r.map(|(s, _)| {
                let mut pred = models.predict(&s, &horizon);
                pred.expected_purchases = models.bgnbd.expected_purchases(&s, horizon_periods);
                (s, pred)
            })
        })
        .collect();
    let holdout_of = |i: usize| rows[i].map_or(0, |(_, h)| u64::from(h));
    let predicted_holdout = |s: &Summary| models.bgnbd.expected_purchases(s, holdout_periods);
    let segments = by_segment(
        run,
        &customers,
        with_holdout,
        &holdout_of,
        &predicted_holdout,
    );
    let holdout = with_holdout.then(|| Holdout {
        start: dates::format_millis(end_ms),
        end: dates::format_millis(run.snapshot),
        periods: holdout_periods,
        actual_repeat_purchases: (0..rows.len()).map(holdout_of).sum(),
        predicted_repeat_purchases: summaries.iter().map(predicted_holdout).sum(),
    });
    Ok(ClvReport {
        schema: SCHEMA.into(),
        model: ModelInfo {
            period: *period,
            bgnbd: models.bgnbd,
            gamma_gamma: models.gamma_gamma,
            penalizer: p.penalizer,
            horizon_days: p.horizon_days,
            horizon_periods,
            horizon_months: horizon.months,
            discount_rate: p.discount_rate,
        },
        calibration: Calibration {
            end: dates::format_millis(end_ms),
            customers: summaries.len(),
            repeaters: summaries.iter().filter(|s| s.x > 0.0).count(),
            spend_customers: summaries
                .iter()
                .filter(|s| s.x > 0.0 && s.spend > 0.0)
                .count(),
        },
        holdout,
        segments,
        customers,
    })
}

/// Sums per segment: customers, mean P(alive), expected purchases, CLV, and the hold-out's
/// actual and predicted repeat purchases.
fn by_segment(
    run: &SegmentRun,
    customers: &[Option<(Summary, Prediction)>],
    with_holdout: bool,
    holdout_of: &dyn Fn(usize) -> u64,
    predicted_holdout: &dyn Fn(&Summary) -> f64,
) -> Vec<SegmentPrediction> {
    let mut segments: Vec<SegmentPrediction> = (0..run.segmentation.clusters.len())
        .map(|cluster| SegmentPrediction {
            cluster,
            customers: 0,
            mean_p_alive: 0.0,
            expected_purchases: 0.0,
            clv: 0.0,
            holdout_actual: with_holdout.then_some(0),
            holdout_predicted: with_holdout.then_some(0.0),
        })
        .collect();
    for (i, row) in customers.iter().enumerate() {
        let (Some((s, pred)), Some(seg)) = (row, segments.get_mut(run.segmentation.labels[i]))
        else {
            continue;
        };
        seg.customers += 1;
        seg.mean_p_alive += pred.p_alive;
        seg.expected_purchases += pred.expected_purchases;
        seg.clv += pred.clv;
        if let (Some(actual), Some(predicted)) =
            (&mut seg.holdout_actual, &mut seg.holdout_predicted)
        {
            *actual += holdout_of(i);
            *predicted += predicted_holdout(s);
        }
    }
    for seg in &mut segments {
        seg.mean_p_alive /= seg.customers.max(1) as f64;
    }
    segments
}

/// The report for people: parameters, fit and per-segment predictions.
pub fn table(r: &ClvReport) -> String {
    use std::fmt::Write;
    let (b, g) = (&r.model.bgnbd, &r.model.gamma_gamma);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Periods   {}s; calibration to {}: {} customers, {} repeaters",
        r.model.period.name(),
        r.calibration.end,
        r.calibration.customers,
        r.calibration.repeaters
    );
    let _ = writeln!(
        s,
        "BG/NBD    r = {:.4}, alpha = {:.4}, a = {:.4}, b = {:.4}; log-likelihood {:.2}",
        b.r, b.alpha, b.a, b.b, b.log_likelihood
    );
    let _ = writeln!(
        s,
        "Gamma-Gamma p = {:.4}, q = {:.4}, v = {:.4} ({} customers)",
        g.p, g.q, g.v, r.calibration.spend_customers
    );
    if let Some(h) = &r.holdout {
        let _ = writeln!(
            s,
            "Hold-out  {} to {} ({} periods): {} repeat purchases, {:.1} predicted",
            h.start, h.end, h.periods, h.actual_repeat_purchases, h.predicted_repeat_purchases
        );
    }
    let _ = writeln!(
        s,
        "\nNext {} days, by segment (0 = most revenue)",
        r.model.horizon_days
    );
    let _ = writeln!(
        s,
        "  {:>2} {:>9} {:>9} {:>12} {:>14}",
        "id", "customers", "P(alive)", "purchases", "CLV"
    );
    for seg in &r.segments {
        let _ = writeln!(
            s,
            "  {:>2} {:>9} {:>8.0}% {:>12} {:>14}",
            seg.cluster,
            seg.customers,
            seg.mean_p_alive * 100.0,
            crate::output::table::thousands(seg.expected_purchases, 1),
            crate::output::table::thousands(seg.clv, 2)
        );
    }
    s
}

/// `predictions.csv`: per customer the summary, the cluster and the predictions (empty for
/// a customer without a purchase before the calibration end).
pub fn predictions_csv(run: &SegmentRun, r: &ClvReport) -> anyhow::Result<Vec<u8>> {
    let mut w = crate::output::csv_cell::CsvWriter::new();
    w.write([
        "customer_id",
        "cluster",
        "x",
        "t_x",
        "T",
        "spend",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "clv",
    ])?;
    for (i, row) in r.customers.iter().enumerate() {
        let mut cells = vec![
            run.rfm.customer_ids[i].clone(),
            run.segmentation.labels[i].to_string(),
        ];
        match row {
            Some((s, p)) => cells.extend(
                [
                    s.x,
                    s.t_x,
                    s.t,
                    s.spend,
                    p.p_alive,
                    p.expected_purchases,
                    p.expected_spend,
                    p.clv,
                ]
                .map(|v| v.to_string()),
            ),
            None => cells.extend(std::iter::repeat_n(String::new(), 8)),
        }
        w.write(&cells)?;
    }
    w.finish()
}
