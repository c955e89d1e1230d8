//! Tukey boxes of R, F and M per cluster.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::DrawResult;
use super::*;

/// Tukey box: quartiles, whiskers to the furthest values within 1.5 IQR, outliers beyond.
pub(super) struct BoxStats {
    q1: f64,
    median: f64,
    q3: f64,
    low: f64,
    high: f64,
    outliers: Vec<f64>,
}

pub(super) fn box_stats(mut v: Vec<f64>) -> Option<BoxStats> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    let (q1, median, q3) = (q(0.25), q(0.5), q(0.75));
    let (fence_lo, fence_hi) = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1));
    let inside: Vec<f64> = v
        .iter()
        .copied()
        .filter(|x| (fence_lo..=fence_hi).contains(x))
        .collect();
    let outliers: Vec<f64> = v
        .iter()
        .copied()
        .filter(|x| !(fence_lo..=fence_hi).contains(x))
        .collect();
    let picked = subsample(outliers.len(), MAX_OUTLIERS, 11);
    Some(BoxStats {
        q1,
        median,
        q3,
        low: inside.first().copied().unwrap_or(q1),
        high: inside.last().copied().unwrap_or(q3),
        outliers: picked.into_iter().map(|i| outliers[i]).collect(),
    })
}

pub(super) fn boxplots<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    d: &ChartData,
) -> DrawResult<DB> {
    let r = &d.run.rfm;
    let k = d.run.segmentation.clusters.len();
    let (title, rest) = root.split_vertically(60);
    title.titled(
        "Monetary, frequency and recency per cluster",
        (FONT, 30).into_font(),
    )?;
    let (panels, legend) = rest.split_vertically(HEIGHT - 60 - 90);
    // Monetary and frequency are skewed: drawn as log10, labelled in original units.
    let measures: [(&str, &Vec<f64>, bool); 3] = [
        ("Monetary", &r.monetary, true),
        ("Frequency", &r.frequency, true),
        ("Recency (days)", &r.recency, false),
    ];
    for (area, (name, values, log)) in panels.split_evenly((1, 3)).iter().zip(measures) {
        box_panel(area, d, name, values, log)?;
    }
    // Which cluster is which segment.
    let text = (0..k).map(|c| label(d, c)).collect::<Vec<_>>().join("    ");
    legend.draw(&Text::new(
        text,
        (40, 30),
        (FONT, 20).into_font().color(&BLACK),
    ))?;
    Ok(())
}

/// One measure's boxes, one per cluster (`log`: drawn as log10, labelled in units).
pub(super) fn box_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &ChartData,
    name: &str,
    values: &[f64],
    log: bool,
) -> DrawResult<DB> {
    let k = d.run.segmentation.clusters.len();
    let labels = &d.run.segmentation.labels;
    let tf = |v: f64| if log { v.max(1.0).log10() } else { v };
    let stats: Vec<Option<BoxStats>> = (0..k)
        .map(|c| {
            let of_c = values.iter().zip(labels).filter(|(_, l)| **l == c);
            box_stats(of_c.map(|(v, _)| tf(*v)).collect())
        })
        .collect();
    let all = stats.iter().flatten().flat_map(|s| {
        [s.low, s.high]
            .into_iter()
            .chain(s.outliers.iter().copied())
    });
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let pad = ((hi - lo) * 0.05).max(0.1);
    let unit = if name == "Monetary" { d.currency } else { "" };
    let mut chart = ChartBuilder::on(area)
        .caption(name, (FONT, 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..k as f64 - 0.5, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(k)
        .x_label_formatter(&|x| category(*x, k).map(|c| c.to_string()).unwrap_or_default())
        .x_desc("cluster")
        .y_label_formatter(&|v| match (log, unit.is_empty()) {
            (true, true) => format!("{:.0}", 10f64.powf(*v)),
            (true, false) => money(unit, 10f64.powf(*v)),
            (false, _) => format!("{v:.0}"),
        })
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()?;
    for (c, s) in stats.iter().enumerate() {
        if let Some(s) = s {
            draw_box(&mut chart, c, s)?;
        }
    }
    Ok(())
}

/// Cluster `c`'s box, median, whiskers and outliers, centred on its x label.
pub(super) fn draw_box<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    c: usize,
    s: &BoxStats,
) -> DrawResult<DB> {
    let x = c as f64;
    let col = colour(c);
    chart.draw_series([Rectangle::new(
        [(x - 0.3, s.q1), (x + 0.3, s.q3)],
        col.mix(0.35).filled(),
    )])?;
    chart.draw_series([Rectangle::new(
        [(x - 0.3, s.q1), (x + 0.3, s.q3)],
        col.stroke_width(2),
    )])?;
    let lines = [
        vec![(x - 0.3, s.median), (x + 0.3, s.median)],
        vec![(x, s.q3), (x, s.high)],
        vec![(x, s.q1), (x, s.low)],
        vec![(x - 0.15, s.high), (x + 0.15, s.high)],
        vec![(x - 0.15, s.low), (x + 0.15, s.low)],
    ];
    chart.draw_series(
        lines
            .into_iter()
            .map(|l| PathElement::new(l, BLACK.stroke_width(2))),
    )?;
    chart.draw_series(
        s.outliers
            .iter()
            .map(|&v| Circle::new((x, v), 2, col.mix(0.5).filled())),
    )?;
    Ok(())
}
