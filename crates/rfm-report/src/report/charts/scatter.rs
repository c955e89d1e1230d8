//! The scatter of recency against monetary value, one colour per cluster.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::DrawResult;
use super::*;

pub(super) fn scatter<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    d: &ChartData,
) -> DrawResult<DB> {
    let r = &d.run.rfm;
    let labels = &d.run.segmentation.labels;
    let shown = subsample(r.len(), MAX_POINTS, 7);
    let max_recency = r.recency.iter().copied().fold(1.0, f64::max);
    let max_money = r.monetary.iter().copied().fold(10.0, f64::max);
    let caption = if shown.len() < r.len() {
        format!(
            "Customer segments (a sample of {} of {} customers)",
            shown.len(),
            r.len()
        )
    } else {
        format!("Customer segments ({} customers)", r.len())
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FONT, 30))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..max_recency * 1.02, (1.0..max_money * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("Recency (days since last purchase)")
        .y_desc(format!("Monetary value ({}, log scale)", d.currency))
        .y_label_formatter(&|v| money(d.currency, *v))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 20))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for c in 0..d.run.segmentation.clusters.len() {
        let style = colour(c).mix(0.6).filled();
        chart
            .draw_series(
                shown
                    .iter()
                    .filter(|&&i| labels[i] == c)
                    .map(|&i| Circle::new((r.recency[i], r.monetary[i].max(1.0)), 3, style)),
            )?
            .label(label(d, c))
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, colour(c).filled()));
    }
    legend(&mut chart)
}
