//! Each segment's customers and revenue side by side.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::DrawResult;
use super::*;

pub(super) fn segment_value<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    d: &ChartData,
) -> DrawResult<DB> {
    let clusters = &d.run.segmentation.clusters;
    let k = clusters.len();
    let top = clusters
        .iter()
        .flat_map(|c| [c.share, c.revenue_share])
        .fold(0.0, f64::max)
        * 100.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Share of customers and share of revenue per segment",
            (FONT, 30),
        )
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..k as f64 - 0.5, 0.0..(top * 1.15).max(1.0))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(k)
        .x_label_formatter(&|x| category(*x, k).map(|c| label(d, c)).unwrap_or_default())
        .y_desc("% of total")
        .y_label_formatter(&|v| format!("{v:.0} %"))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 20))
        .draw()?;
    let customers = RGBColor(86, 180, 233);
    let revenue = RGBColor(0, 114, 178);
    for (series, col, offset, name) in [
        (0, customers, -0.36, "customers"),
        (1, revenue, 0.02, "revenue"),
    ] {
        chart
            .draw_series(clusters.iter().enumerate().map(|(c, s)| {
                let v = if series == 0 {
                    s.share
                } else {
                    s.revenue_share
                } * 100.0;
                let x = c as f64 + offset;
                Rectangle::new([(x, 0.0), (x + 0.34, v)], col.filled())
            }))?
            .label(format!("share of {name}"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 16, y + 8)], col.filled()));
        chart.draw_series(clusters.iter().enumerate().map(|(c, s)| {
            let v = if series == 0 {
                s.share
            } else {
                s.revenue_share
            } * 100.0;
            let x = c as f64 + offset + 0.02;
            Text::new(format!("{v:.0} %"), (x, v + top * 0.03), (FONT, 18))
        }))?;
    }
    legend(&mut chart)
}
