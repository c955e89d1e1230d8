//! The `segment` pipeline: settings → ingest → clean → RFM → clusters, with progress shown
//! on a terminal.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::clean::{self, CleanOptions, Ledger, Returns};
use crate::cluster::{self, KMeansParams, Segmentation};
use crate::dates::{self, DateFormat};
use crate::ingest::{self, ColumnMap, Encoding, FileFormat, ReadOptions, SourceInfo};
use crate::progress::Steps;
use crate::rfm::{self, Frequency, RfmTable};
use crate::sample;
use crate::settings::Settings;

/// Name shown for the built-in sample input.
pub const SAMPLE_NAME: &str = "<built-in sample>";

/// Every setting a run used, recorded in clusters.json.
#[derive(Debug, Clone, Serialize)]
pub struct RunParams {
    pub frequency: Frequency,
    pub returns: Returns,
    pub drop_zero_price: bool,
    pub snapshot: String,
    pub snapshot_source: &'static str,
    pub k: usize,
    pub seed: u64,
    pub n_init: usize,
    pub max_iter: usize,
    pub tolerance: f64,
    pub date_format: String,
    pub columns: ColumnMap,
}

/// Everything the `segment` command produced.
#[derive(Debug, Clone)]
pub struct SegmentRun {
    pub source: SourceInfo,
    pub rows: usize,
    pub ledger: Ledger,
    pub snapshot: i64,
    pub params: RunParams,
    pub rfm: RfmTable,
    pub segmentation: Segmentation,
}

/// Turns the input settings into reader options.
pub fn read_options(s: &Settings) -> Result<ReadOptions> {
    let i = &s.input;
    let format = match i.format.as_str() {
        "" | "auto" => None,
        f => Some(FileFormat::parse(f).with_context(|| {
            format!("unknown input format `{f}`; use auto, csv, xlsx or parquet")
        })?),
    };
    let delimiter = match i.delimiter.to_ascii_lowercase().as_str() {
        "" | "auto" => None,
        "tab" | "\\t" | "\t" => Some(b'\t'),
        "whitespace" | "space" | " " => Some(b' '),
        d if d.len() == 1 => Some(d.as_bytes()[0]),
        d => bail!("unknown delimiter `{d}`; use auto, \",\", \";\", tab, \"|\" or whitespace"),
    };
    let encoding = Encoding::parse(&i.encoding).with_context(|| {
        format!(
            "unknown encoding `{}`; use auto, utf-8 or latin1",
            i.encoding
        )
    })?;
    Ok(ReadOptions {
        format,
        delimiter,
        encoding,
        sheet: (!i.sheet.is_empty()).then(|| i.sheet.clone()),
        columns: i.columns.clone(),
    })
}

/// Reads the configured input, or the built-in sample when no path is set.
pub fn read_input(s: &Settings) -> Result<ingest::RawTable> {
    let opts = read_options(s)?;
    if s.input.path.is_empty() {
        let bytes = sample::generate(&sample::SampleSpec::default());
        return Ok(ingest::read_bytes(
            bytes,
            SAMPLE_NAME,
            FileFormat::Csv,
            &opts,
        )?);
    }
    Ok(ingest::read_file(Path::new(&s.input.path), &opts)?)
}

/// Runs the whole segmentation.
pub fn run_segment(s: &Settings) -> Result<SegmentRun> {
    let started = Instant::now();
    let steps = Steps::new(4);
    // Check cheap settings before reading a large file.
    let forced_dates = match s.input.date_format.as_str() {
        "" | "auto" => None,
        f => Some(DateFormat::from_option(f)),
    };
    let explicit_snapshot = match s.rfm.snapshot.trim() {
        "" => None,
        v => Some(dates::parse_snapshot(v).with_context(|| {
            format!("--snapshot `{v}` is not a date; use e.g. 2011-12-10 or \"2011-12-10 12:50\"")
        })?),
    };
    let params = KMeansParams::new(s.cluster.k)
        .seed(s.cluster.seed)
        .n_init(s.cluster.n_init)
        .max_iter(s.cluster.max_iter)
        .tolerance(s.cluster.tolerance);
    linfa::ParamGuard::check_ref(&params)
        .map_err(|e| anyhow::anyhow!("invalid clustering settings: {e}"))?;

    steps.start("reading input");
    let raw = read_input(s)?;
    tracing::info!(rows = raw.rows, elapsed = ?started.elapsed(), "read {}", raw.source.path);

    steps.start("cleaning");
    let opts = CleanOptions {
        returns: s.clean.returns,
        drop_zero_price: s.clean.drop_zero_price,
        date_format: forced_dates,
        snapshot: explicit_snapshot,
    };
    let cleaned = clean::clean(&raw, &opts)?;
    tracing::debug!(elapsed = ?started.elapsed(), "cleaned");
    if cleaned.date_ambiguous {
        tracing::warn!(
            "{}: dates could be month/day or day/month; read as {}. Pass --date-format if that is wrong",
            raw.source.path,
            cleaned.ledger.date_format
        );
    }
    steps.start("computing RFM");
    let mut ledger = cleaned.ledger;
    let table = rfm::compute(
        &cleaned.transactions,
        cleaned.snapshot,
        s.rfm.frequency,
        &mut ledger,
    );
    if table.is_empty() {
        return Err(clean::nothing_left(&raw.source.path, &ledger).into());
    }
    tracing::info!(customers = table.len(), elapsed = ?started.elapsed(), "RFM computed");

    steps.start("clustering");
    let segmentation = cluster::segment(&table, params)
        .map_err(|e| anyhow::anyhow!("{}: cannot cluster: {e}", raw.source.path))?;
    steps.finish();
    tracing::info!(elapsed = ?started.elapsed(), inertia = segmentation.inertia, "clustered");

    Ok(SegmentRun {
        params: RunParams {
            frequency: s.rfm.frequency,
            returns: s.clean.returns,
            drop_zero_price: s.clean.drop_zero_price,
            snapshot: dates::format_millis(cleaned.snapshot),
            snapshot_source: if explicit_snapshot.is_some() {
                "given"
            } else {
                "last date + 1 day"
            },
            k: s.cluster.k,
            seed: s.cluster.seed,
            n_init: s.cluster.n_init,
            max_iter: s.cluster.max_iter,
            tolerance: s.cluster.tolerance,
            date_format: ledger.date_format.clone(),
            columns: s.input.columns.clone(),
        },
        rows: raw.rows,
        source: raw.source,
        ledger,
        snapshot: cleaned.snapshot,
        rfm: table,
        segmentation,
    })
}
