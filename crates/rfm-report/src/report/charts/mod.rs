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

use rfm_core::cluster::elbow::ElbowResult;
use rfm_core::run::SegmentRun;

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

mod boxes;
mod elbow;
mod migration;
mod predict;
mod scatter;
mod segment_value;

use boxes::boxplots;
use elbow::elbow;
pub use elbow::elbow_chart;
pub use migration::migration_chart;
pub use predict::tracking_chart;
use scatter::scatter;
use segment_value::segment_value;

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
