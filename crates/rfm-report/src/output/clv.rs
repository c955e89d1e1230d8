//! `rfm-agent clv`'s outputs: the models' report for people and `predictions.csv`.

use rfm_core::fmt::thousands;
use rfm_core::predict::outcome::ClvReport;
use rfm_core::run::SegmentRun;

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
    let holdout = r.holdout.is_some();
    let _ = write!(
        s,
        "  {:>2} {:>9} {:>9} {:>12} {:>14}",
        "id", "customers", "P(alive)", "purchases", "CLV"
    );
    if holdout {
        let _ = write!(s, " {:>16} {:>16}", "hold-out actual", "hold-out predicted");
    }
    s.push('\n');
    for seg in &r.segments {
        let _ = write!(
            s,
            "  {:>2} {:>9} {:>8.0}% {:>12} {:>14}",
            seg.cluster,
            seg.customers,
            seg.mean_p_alive * 100.0,
            thousands(seg.expected_purchases, 1),
            thousands(seg.clv, 2)
        );
        if let (Some(a), Some(p)) = (seg.holdout_actual, seg.holdout_predicted) {
            let _ = write!(s, " {:>16} {:>18}", thousands(a as f64, 0), thousands(p, 1));
        }
        s.push('\n');
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
