//! Charts, drawn by the binary as PNG and SVG with an embedded font (DejaVu Sans from the
//! `dejavu` crate), so text renders on a machine with no fonts. Colours are the Okabe-Ito
//! palette, which stays distinguishable with the common kinds of colour blindness.

use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::FontStyle;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::cluster::elbow::ElbowResult;
use crate::pipeline::SegmentRun;

/// Chart size in pixels: readable at 100 % zoom.
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 800;
/// Points drawn in the scatter at most (a seeded sample beyond that).
pub const MAX_POINTS: usize = 20_000;
/// Outliers drawn per box at most.
const MAX_OUTLIERS: usize = 400;

const FONT: &str = "sans-serif";

/// Okabe-Ito, in the order segments use them.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 0, 0),       // black
];

pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// One chart in both formats.
pub struct Chart {
    pub name: &'static str,
    pub title: String,
    pub png: Vec<u8>,
    pub svg: String,
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (style, bytes) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
        ] {
            plotters::style::register_font(FONT, style, bytes)
                .unwrap_or_else(|_| panic!("the embedded DejaVu font loads"));
        }
    });
}

/// Renders the same drawing code on both backends.
macro_rules! chart {
    ($name:expr, $title:expr, |$a:ident| $body:expr) => {
        render($name, $title, |$a| $body, |$a| $body)
    };
}

mod predict;

pub use predict::tracking_chart;

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws `draw` into a PNG and an SVG.
fn render(
    name: &'static str,
    title: String,
    draw_png: impl Fn(DrawingArea<BitMapBackend, Shift>) -> DrawResult<BitMapBackend>,
    draw_svg: impl Fn(DrawingArea<SVGBackend, Shift>) -> DrawResult<SVGBackend>,
) -> Result<Chart> {
    register_fonts();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{name}: {e}"))?;
        draw_png(root.clone()).map_err(|e| anyhow!("cannot draw {name}: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw {name}: {e}"))?;
    }
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&rgb)?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{name}: {e}"))?;
        draw_svg(root.clone()).map_err(|e| anyhow!("cannot draw {name}: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw {name}: {e}"))?;
    }
    Ok(Chart {
        name,
        title,
        png,
        svg,
    })
}

/// What the charts need to know about the run.
pub struct ChartData<'a> {
    pub run: &'a SegmentRun,
    /// Segment name per cluster id.
    pub names: &'a [String],
    pub currency: &'a str,
    pub elbow: Option<&'a ElbowResult>,
}

/// Every chart the run can draw (the elbow needs a sweep).
pub fn all(d: &ChartData) -> Result<Vec<Chart>> {
    let mut charts = vec![
        chart!(
            "customer_segments",
            "Customer segments: recency against monetary value".into(),
            |a| scatter(a, d)
        )?,
        chart!(
            "cluster_boxplots",
            "Monetary, frequency and recency per cluster".into(),
            |a| boxplots(a, d)
        )?,
        chart!(
            "segment_value",
            "Share of customers and share of revenue per segment".into(),
            |a| segment_value(a, d)
        )?,
    ];
    if let Some(p) = d.run.predictions.as_ref().and_then(|p| p.fitted()) {
        charts.push(chart!(
            "predicted_value",
            "Predicted value by segment".into(),
            |a| predict::predicted_value(a, d, p)
        )?);
    }
    if let Some(e) = d.elbow {
        charts.push(chart!(
            "elbow",
            "Choosing k: WCSS and silhouette".into(),
            |a| elbow(a, e)
        )?);
    }
    Ok(charts)
}

/// The category an axis position stands for, when it sits on one (categories are at 0, 1, …).
fn category(x: f64, k: usize) -> Option<usize> {
    let c = x.round();
    ((x - c).abs() < 1e-6 && c >= 0.0 && (c as usize) < k).then_some(c as usize)
}

fn label(d: &ChartData, c: usize) -> String {
    format!("{c}: {}", d.names.get(c).map(String::as_str).unwrap_or(""))
}

fn money(currency: &str, v: f64) -> String {
    if v >= 1000.0 {
        format!("{currency}{:.0}k", v / 1000.0)
    } else {
        format!("{currency}{v:.0}")
    }
}

/// Indices of at most `max` customers, a seeded sample, sorted.
fn subsample(n: usize, max: usize, seed: u64) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut idx = sample(&mut rng, n, max).into_vec();
    idx.sort_unstable();
    idx
}

/// The series legend, top right, as every chart draws it.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> DrawResult<DB> {
    legend_at(chart, SeriesLabelPosition::UpperRight)
}

/// The series legend at `position`.
fn legend_at<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.5))
        .label_font((FONT, 20))
        .draw()
}

fn scatter<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, d: &ChartData) -> DrawResult<DB> {
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

/// Tukey box: quartiles, whiskers to the furthest values within 1.5 IQR, outliers beyond.
struct BoxStats {
    q1: f64,
    median: f64,
    q3: f64,
    low: f64,
    high: f64,
    outliers: Vec<f64>,
}

fn box_stats(mut v: Vec<f64>) -> Option<BoxStats> {
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

fn boxplots<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, d: &ChartData) -> DrawResult<DB> {
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
fn box_panel<DB: DrawingBackend>(
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
fn draw_box<DB: DrawingBackend>(
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

fn segment_value<DB: DrawingBackend>(
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

fn elbow<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, e: &ElbowResult) -> DrawResult<DB> {
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

/// The migration matrix as a heat map (for the `compare` command).
pub fn migration_chart(m: &crate::compare::Migration) -> Result<Chart> {
    chart!(
        "migration",
        "Customers moving between segments".into(),
        |a| migration(a, m)
    )
}

fn migration<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    m: &crate::compare::Migration,
) -> DrawResult<DB> {
    let (rows, cols) = (m.matrix.len(), m.after_segments.len());
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Segment migration ({} customers in both runs)",
                m.customers_in_both
            ),
            (FONT, 30),
        )
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(260)
        .build_cartesian_2d(-0.5..cols as f64 - 0.5, -0.5..rows as f64 - 0.5)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols)
        .y_labels(rows)
        .x_label_formatter(&|x| {
            category(*x, cols)
                .map(|j| m.after_segments[j].chars().take(22).collect())
                .unwrap_or_default()
        })
        .y_label_formatter(&|y| {
            category(*y, rows)
                .map(|r| {
                    let i = rows - 1 - r;
                    format!("{i}: {}", m.before_segments[i])
                        .chars()
                        .take(28)
                        .collect()
                })
                .unwrap_or_default()
        })
        .x_desc("after")
        .y_desc("before")
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 20))
        .draw()?;
    for (i, row) in m.matrix.iter().enumerate() {
        let total: usize = row.iter().sum::<usize>().max(1);
        let y = (rows - 1 - i) as f64 - 0.5;
        for (j, &v) in row.iter().enumerate() {
            let share = v as f64 / total as f64;
            let shade = RGBColor(
                (255.0 - 255.0 * share) as u8,
                (255.0 - 141.0 * share) as u8,
                (255.0 - 77.0 * share) as u8,
            );
            let x = j as f64 - 0.5;
            chart.draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], shade.filled())])?;
            chart.draw_series([Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                BLACK.mix(0.2).stroke_width(1),
            )])?;
            let ink = if share > 0.5 { WHITE } else { BLACK };
            chart.draw_series([Text::new(
                format!("{v}"),
                (x + 0.4, y + 0.55),
                (FONT, 20).into_font().color(&ink),
            )])?;
        }
    }
    Ok(())
}
