//! The elbow chart: WCSS and silhouette over k.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::DrawResult;
use super::*;

pub(super) fn elbow<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    e: &ElbowResult,
) -> DrawResult<DB> {
    let (k0, k1) = (
        e.points.first().map_or(2, |p| p.k) as f64,
        e.points.last().map_or(10, |p| p.k) as f64,
    );
    let wmax = e.points.iter().map(|p| p.wcss).fold(1.0, f64::max);
    let (smin, smax) = e.points.iter().fold((0.0f64, 0.0f64), |(a, b), p| {
        (a.min(p.silhouette), b.max(p.silhouette))
    });
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Choosing k: recommended k = {}", e.recommended),
            (FONT, 30),
        )
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(100)
        .right_y_label_area_size(90)
        .build_cartesian_2d((k0 - 0.5)..(k1 + 0.5), 0.0..wmax * 1.1)?
        .set_secondary_coord((k0 - 0.5)..(k1 + 0.5), (smin - 0.05)..(smax + 0.1).max(0.1));
    chart
        .configure_mesh()
        .x_desc("k (number of clusters)")
        .x_labels(e.points.len())
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("WCSS (within-cluster sum of squares)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 20))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("silhouette")
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 20))
        .draw()?;
    let blue = PALETTE[0];
    let orange = PALETTE[1];
    chart
        .draw_series(LineSeries::new(
            e.points.iter().map(|p| (p.k as f64, p.wcss)),
            blue.stroke_width(3),
        ))?
        .label("WCSS")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(3)));
    chart.draw_series(
        e.points
            .iter()
            .map(|p| Circle::new((p.k as f64, p.wcss), 6, blue.filled())),
    )?;
    chart
        .draw_secondary_series(LineSeries::new(
            e.points.iter().map(|p| (p.k as f64, p.silhouette)),
            orange.stroke_width(3),
        ))?
        .label("silhouette")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], orange.stroke_width(3)));
    chart.draw_secondary_series(
        e.points
            .iter()
            .map(|p| TriangleMarker::new((p.k as f64, p.silhouette), 8, orange.filled())),
    )?;
    let k = e.recommended as f64;
    chart.draw_series([PathElement::new(
        vec![(k, 0.0), (k, wmax * 1.1)],
        BLACK.mix(0.6).stroke_width(2),
    )])?;
    chart.draw_series([Text::new(
        format!("recommended k = {}", e.recommended),
        (k + 0.08, wmax * 1.05),
        (FONT, 20),
    )])?;
    legend(&mut chart)
}

/// The elbow chart alone (for the `elbow` command).
pub fn elbow_chart(e: &ElbowResult) -> Result<Chart> {
    chart!(
        "elbow",
        "Choosing k: WCSS and silhouette".into(),
        |a| elbow(a, e)
    )
}
