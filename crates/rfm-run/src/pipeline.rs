//! The `segment` pipeline: settings → ingest → clean → RFM → clusters, with progress shown
//! on a terminal.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::settings::{KChoice, Settings};
use rfm_core::clean::CleanOptions;
use rfm_core::cluster::{self, KMeansParams, elbow};
use rfm_core::dates;
use rfm_core::ingest::{ColumnMap, Input, ReadOptions, SourceInfo};
use rfm_core::options::InputFormat;
use rfm_core::predict::outcome::Outcome;
use rfm_core::progress::Steps;
use rfm_core::rfm::RfmTable;
use rfm_core::rfm::accumulate::Totals;
use rfm_core::rfm::histories::HistorySettings;
use rfm_core::run::SegmentRun;
use rfm_core::run_folder::{RunParams, SnapshotSource};
use rfm_core::sample;
use rfm_core::scan::{self, Scan, ScanOptions};
use rfm_engines::EngineKind;

/// Name shown for the built-in sample input.
pub const SAMPLE_NAME: &str = "<built-in sample>";

/// Turns the input settings into reader options.
pub fn read_options(s: &Settings) -> ReadOptions {
    let i = &s.input;
    ReadOptions {
        format: match i.format {
            InputFormat::Auto => None,
            InputFormat::Given(f) => Some(f),
        },
        delimiter: i.delimiter.byte(),
        encoding: i.encoding,
        sheet: (!i.sheet.is_empty()).then(|| i.sheet.clone()),
        columns: i.columns.clone(),
        preset: i.preset,
        currency: i.currency.clone(),
        limits: s.limits,
    }
}

/// The configured input, or the built-in sample when no path is set.
pub fn input(s: &Settings) -> Input {
    if s.input.path.is_empty() {
        Input::Bytes {
            bytes: sample::generate(&sample::SampleSpec::default()).into(),
            name: SAMPLE_NAME.into(),
        }
    } else {
        Input::File(Path::new(&s.input.path).to_path_buf())
    }
}

/// Runs the whole segmentation.
/// The configured k-means with `k` clusters.
fn kmeans_params(s: &Settings, k: usize) -> KMeansParams {
    let c = &s.cluster;
    KMeansParams::new(k)
        .seed(c.seed)
        .n_init(c.n_init)
        .max_iter(c.max_iter)
        .tolerance(c.tolerance)
}

/// WCSS and silhouette for k in `cluster.k_min..=k_max` with the run's k-means settings.
pub fn sweep(table: &RfmTable, s: &Settings, path: &str) -> Result<elbow::ElbowResult> {
    let c = &s.cluster;
    let range = c.k_range().map_err(anyhow::Error::msg)?;
    let valid = linfa::ParamGuard::check(kmeans_params(s, range.min))
        .context("invalid clustering settings")?;
    let (x, _) = cluster::features(table);
    let ks = range.min..=range.max.min(table.len());
    let bar = rfm_core::progress::Counter::new("k sweep", ks.clone().count() as u64);
    let result = elbow::sweep(&x, &valid, ks, |k| bar.step(&format!("k = {k}")))
        .with_context(|| format!("{path}: cannot cluster"))?;
    bar.finish();
    Ok(result)
}

/// Settings → input → cleaning and RFM (one pass) → k (with `k = auto`) → clusters, and the
/// k sweep the report shows when a report is written.
pub fn run_segment(s: &Settings) -> Result<SegmentRun> {
    let started = Instant::now();
    let auto_k = s.cluster.k == KChoice::Auto;
    let report = !s.output.dir.is_empty();
    // Check cheap settings before reading a large file.
    let (opts, skipped) = scan_options(s)?;
    let predict = opts.histories.is_some();
    let steps = Steps::new(2 + usize::from(auto_k || report) + usize::from(predict));
    let fixed_k = match s.cluster.k {
        KChoice::Fixed(k) => k,
        KChoice::Auto => s.cluster.k_range().map_err(anyhow::Error::msg)?.min,
    };
    let params = kmeans_params(s, fixed_k);
    linfa::ParamGuard::check_ref(&params).context("invalid clustering settings")?;

    steps.start("reading and cleaning the input")?;
    let Scan {
        source,
        totals,
        date_ambiguous,
    } = scan_input(s, &opts)?;
    let (ledger, table) = (&totals.ledger, &totals.table);
    if date_ambiguous {
        tracing::warn!(
            "{}: dates could be month/day or day/month; read as {}. Pass --date-format if that is wrong",
            source.path,
            ledger.date_format
        );
    }
    tracing::info!(rows = totals.rows, customers = table.len(), elapsed = ?started.elapsed(), "RFM computed");

    let k_choice = match s.cluster.k {
        KChoice::Fixed(_) => None,
        KChoice::Auto => {
            steps.start("choosing k")?;
            Some(choose_k(table, s, &source.path)?)
        }
    };
    let params = match &k_choice {
        Some(c) => params.n_clusters(c.recommended),
        None => params,
    };
    steps.start("clustering")?;
    let segmentation = cluster::segment(table, params)
        .with_context(|| format!("{}: cannot cluster", source.path))?;
    tracing::info!(elapsed = ?started.elapsed(), inertia = segmentation.inertia, "clustered");
    // The report's elbow chart: the sweep is computed here, once; reports only render.
    let elbow = match &k_choice {
        Some(c) => Some(c.clone()),
        None if report => {
            steps.start("the k sweep for the report")?;
            Some(sweep(table, s, &source.path)?)
        }
        None => None,
    };
    let params = run_params(s, &opts, &totals, segmentation.clusters.len(), &source);
    let mut run = SegmentRun {
        params,
        rows: totals.rows,
        source,
        ledger: totals.ledger,
        snapshot: totals.snapshot,
        rfm: totals.table,
        segmentation,
        k_choice,
        elbow,
        emails: totals.emails,
        histories: totals.histories,
        predictions: skipped.map(|reason| Outcome::Skipped { reason }),
    };
    if predict {
        steps.start("fitting the predictive models")?;
        run.predictions = Some(predict_step(&run, s)?);
        tracing::info!(elapsed = ?started.elapsed(), "predictive models done");
    }
    steps.finish();
    Ok(run)
}

/// The models on the run's histories. A fit that fails stops `clv`; any other run goes on
/// without predictions and says why.
fn predict_step(run: &SegmentRun, s: &Settings) -> Result<Outcome> {
    match rfm_core::predict::outcome::clv(&run.customers(), &s.predict) {
        Ok(report) => Ok(Outcome::Fitted(Box::new(report))),
        Err(e) if s.predict.required => Err(anyhow::Error::new(e))
            .with_context(|| format!("{}: cannot fit the predictive models", run.source.path)),
        Err(e) => {
            tracing::warn!("{}: no predictions: {e}", run.source.path);
            Ok(Outcome::Skipped {
                reason: e.to_string(),
            })
        }
    }
}

/// The pass over the input: read here, or run by the database or the Spark cluster that
/// holds the data.
fn scan_input(s: &Settings, opts: &ScanOptions) -> Result<Scan> {
    use rfm_engines::{postgres, spark};
    let e = &s.engine;
    let timeout = std::time::Duration::from_secs(e.timeout_secs.max(1));
    let kind = e.kind.resolve(&s.input.path);
    if !matches!(kind, EngineKind::Auto | EngineKind::Local) {
        rfm_engines::file_rules_only(&opts.read)?;
    }
    match kind {
        EngineKind::Auto | EngineKind::Local => {
            scan::scan(&input(s), opts, &rfm_core::progress::this_step())
        }
        EngineKind::Postgres => {
            // The settings' password (the front end put PGPASSWORD there when the settings
            // had none); else the target reads the password file.
            let target =
                postgres::Target::new(&s.input.path, &e.table, &e.query, &e.password.0, timeout)?;
            let runtime = tokio::runtime::Handle::try_current()
                .context("the PostgreSQL engine needs the async runtime")?;
            runtime.block_on(postgres::scan(&target, opts))
        }
        EngineKind::Spark => {
            // As PySpark: the address given (flag or settings), else SPARK_REMOTE (which the
            // front end put in the settings).
            let remote = e.url.trim().to_string();
            let delimiter = match s.input.delimiter {
                rfm_core::options::Delimiter::Byte(b) if b != b' ' => Some(b as char),
                _ => None,
            };
            let target = spark::Target::new(
                &remote,
                &s.input.path,
                &e.table,
                &e.query,
                delimiter,
                timeout,
            )?;
            spark::scan(&target, opts)
        }
    }
}

/// Why a database or Spark run has no predictions: only the local reader keeps histories.
const ENGINE_HISTORIES: &str = "the PostgreSQL and Spark engines return per-customer totals, not purchase histories; export the transactions (rfm-agent convert) and run on the file for predictions";

/// With the models on: the period, the calibration end (checked) and the horizon the pass
/// keeps histories for; or why a run that may go without them does.
fn histories(s: &Settings) -> Result<(Option<HistorySettings>, Option<String>)> {
    let p = &s.predict;
    if !p.enabled {
        return Ok((None, None));
    }
    let engine = s.engine.kind.resolve(&s.input.path);
    if !matches!(engine, EngineKind::Auto | EngineKind::Local) {
        if p.required {
            bail!("`clv`: {ENGINE_HISTORIES}");
        }
        return Ok((None, Some(ENGINE_HISTORIES.into())));
    }
    let end = match p.calibration_end.trim() {
        "" => None,
        v => Some(dates::parse_snapshot(v).with_context(|| {
            format!("--calibration-end `{v}` is not a date; use e.g. 2011-09-30")
        })?),
    };
    let settings = HistorySettings {
        period: p.period,
        calibration_end: end,
        horizon_days: p.horizon_days,
    };
    Ok((Some(settings), None))
}

/// What the pass needs: reader, cleaning and frequency options, the snapshot checked; and
/// why the run will have no predictions, when that is known before it starts.
fn scan_options(s: &Settings) -> Result<(ScanOptions, Option<String>)> {
    let (histories, skipped) = histories(s)?;
    let snapshot = match s.rfm.snapshot.trim() {
        "" => None,
        v => Some(dates::parse_snapshot(v).with_context(|| {
            format!("--snapshot `{v}` is not a date; use e.g. 2011-12-10 or \"2011-12-10 12:50\"")
        })?),
    };
    let opts = ScanOptions {
        read: read_options(s),
        clean: CleanOptions {
            returns: s.clean.returns,
            drop_zero_price: s.clean.drop_zero_price,
            date_format: s.input.date_format.given(),
            snapshot,
            // The only use of the clock: no purchase is dated after the run (the snapshot
            // itself always comes from the data or the settings).
            latest: snapshot
                .is_none()
                .then(|| chrono::Utc::now().timestamp_millis() + 86_400_000),
            currency: s.input.currency.clone(),
            timezone: s.input.timezone.0,
        },
        frequency: s.rfm.frequency,
        histories,
    };
    Ok((opts, skipped))
}

/// The elbow rule's k over the configured range.
fn choose_k(table: &RfmTable, s: &Settings, path: &str) -> Result<elbow::ElbowResult> {
    let result = sweep(table, s, path)?;
    if result.points.is_empty() {
        bail!(
            "{path}: only {} customers, too few for k = {}..{}",
            table.len(),
            s.cluster.k_min,
            s.cluster.k_max
        );
    }
    tracing::info!(k = result.recommended, "k chosen by the elbow rule");
    Ok(result)
}

/// Every setting the run used, as clusters.json records it (the columns as read).
fn run_params(
    s: &Settings,
    opts: &ScanOptions,
    totals: &Totals,
    k: usize,
    source: &SourceInfo,
) -> RunParams {
    let columns = match source.columns.is_empty() {
        true => s.input.columns.clone(),
        false => ColumnMap::from_manifest(&source.columns),
    };
    RunParams {
        frequency: s.rfm.frequency,
        returns: s.clean.returns,
        drop_zero_price: s.clean.drop_zero_price,
        snapshot: dates::format_millis(totals.snapshot),
        snapshot_source: match opts.clean.snapshot {
            Some(_) => SnapshotSource::Given,
            None => SnapshotSource::LastDatePlusOne,
        },
        k,
        seed: s.cluster.seed,
        n_init: s.cluster.n_init,
        max_iter: s.cluster.max_iter,
        tolerance: s.cluster.tolerance,
        date_format: totals.ledger.date_format.clone(),
        columns,
        timezone: s.input.timezone.0.map(|z| z.name().to_string()),
    }
}
