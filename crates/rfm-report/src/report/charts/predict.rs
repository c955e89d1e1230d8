//! The predictive models' charts: expected revenue per segment beside what the segment
//! bought in the same length of time, and the model check (cumulative repeat purchases,
//! actual against predicted).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    Chart, ChartData, DrawResult, FONT, PALETTE, category, label, legend, legend_at, money, render,
};
use rfm_core::predict::outcome::{ClvReport, TrackingSeries};

/// Per segment: the revenue of the last horizon and the revenue expected over the next,
/// with the segment's mean P(alive) above the bars.
pub(super) fn predicted_value<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    d: &ChartData,
    p: &ClvReport,
) -> DrawResult<DB> {
    let k = p.segments.len();
    let days = p.model.horizon_days;
    let top = p
        .segments
        .iter()
        .flat_map(|s| [s.recent_revenue, s.expected_revenue])
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Predicted value by segment: the next {days} days"),
            (FONT, 30),
        )
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(100)
        .build_cartesian_2d(-0.5..k as f64 - 0.5, 0.0..top * 1.2)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(k)
        .x_label_formatter(&|x| category(*x, k).map(|c| label(d, c)).unwrap_or_default())
        .y_desc(format!("revenue ({})", d.currency))
        .y_label_formatter(&|v| money(d.currency, *v))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 20))
        .draw()?;
    let (past, future) = (RGBColor(86, 180, 233), PALETTE[0]);
    let series = [
        (past, -0.36, format!("revenue, last {days} days")),
        (future, 0.02, format!("expected revenue, next {days} days")),
    ];
    for (i, (col, offset, name)) in series.into_iter().enumerate() {
        let value = |s: &rfm_core::predict::outcome::SegmentPrediction| match i {
            0 => s.recent_revenue,
            _ => s.expected_revenue,
        };
        chart
            .draw_series(p.segments.iter().map(|s| {
                let x = s.cluster as f64 + offset;
                Rectangle::new([(x, 0.0), (x + 0.34, value(s))], col.filled())
            }))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 16, y + 8)], col.filled()));
    }
    chart.draw_series(p.segments.iter().map(|s| {
        let y = s.recent_revenue.max(s.expected_revenue) + top * 0.04;
        let text = format!("P(alive) {:.0} %", s.mean_p_alive * 100.0);
        Text::new(text, (s.cluster as f64 - 0.3, y), (FONT, 18))
    }))?;
    legend(&mut chart)
}

/// The model check alone (for the `clv` command).
pub fn tracking_chart(t: &TrackingSeries) -> Result<Chart> {
    chart!(
        "clv_tracking",
        "Model check: cumulative repeat purchases, actual and predicted".into(),
        |a| tracking(a, t)
    )
}

fn tracking<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    t: &TrackingSeries,
) -> DrawResult<DB> {
    let n = t.actual.len();
    let top = t
        .actual
        .iter()
        .chain(&t.predicted)
        .copied()
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Model check: cumulative repeat purchases, actual and predicted",
            (FONT, 30),
        )
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(100)
        .build_cartesian_2d(0.0..n.max(2) as f64 - 1.0, 0.0..top * 1.1)?;
    let period_ms = match t.period {
        rfm_core::rfm::histories::Period::Day => 86_400_000,
        rfm_core::rfm::histories::Period::Week => 7 * 86_400_000,
    };
    let date = |x: f64| {
        let ms = t.first_start + (x.round() as i64) * period_ms;
        rfm_core::dates::format_millis(ms)
            .chars()
            .take(10)
            .collect::<String>()
    };
    chart
        .configure_mesh()
        .x_desc(match t.period {
            rfm_core::rfm::histories::Period::Day => "day".to_string(),
            rfm_core::rfm::histories::Period::Week => "week starting (Monday)".to_string(),
        })
        .x_label_formatter(&|x| date(*x))
        .y_desc("cumulative repeat purchases")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 20))
        .draw()?;
    let (actual, predicted) = (PALETTE[0], PALETTE[1]);
    for (values, col, name) in [
        (&t.actual, actual, "actual"),
        (&t.predicted, predicted, "predicted (BG/NBD)"),
    ] {
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, v)| (i as f64, *v)),
                col.stroke_width(3),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
    }
    let end = t.calibration_end as f64;
    chart.draw_series([PathElement::new(
        vec![(end, 0.0), (end, top * 1.1)],
        BLACK.mix(0.6).stroke_width(2),
    )])?;
    chart.draw_series([Text::new(
        format!("calibration end {} →", date(end)),
        (end - n as f64 * 0.2, top * 0.3),
        (FONT, 20),
    )])?;
    legend_at(&mut chart, SeriesLabelPosition::UpperLeft)
}
