//! Where the data lives: the pass's seam (source + column mapping + cleaning rules →
//! per-customer RFM table + ledger) run by a database or a Spark cluster instead of the local
//! reader. Both engines run the same SQL ([`sql`]); only the ledger's counts and one row per
//! customer come back.

mod pgpass;
mod pgtls;
pub mod postgres;
mod settings;
pub mod spark;
pub mod sql;

pub use settings::EngineSettings;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use rfm_core::clean::Rule;
use rfm_core::ingest::{FileFormat, Resolved, SourceInfo};
use rfm_core::remedy::{Remedied, Remedy};
use rfm_core::rfm::accumulate::{Accumulator, Settings as AccSettings};
use rfm_core::scan::{Scan, ScanOptions};

pub const MS_PER_DAY: i64 = 86_400_000;

/// What the ledger says instead of example rows.
pub const NO_EXAMPLES: &str = "the engine's rows have no row numbers: no example rows";

/// Which engine runs the pass. `Auto` is PostgreSQL when `--input` is a postgres:// URL, else
/// this machine. (No doc comments on the variants: the command line's help would list them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    #[default]
    Auto,
    Local,
    Postgres,
    Spark,
}

impl EngineKind {
    /// The engine that runs a pass over `input`.
    pub fn resolve(self, input: &str) -> EngineKind {
        match self {
            EngineKind::Auto if postgres::is_url(input) => EngineKind::Postgres,
            EngineKind::Auto => EngineKind::Local,
            k => k,
        }
    }
}

/// The engine's errors whose remedy depends on who reads it (see [`rfm_core::remedy`]).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{name}: column `{column}` has type {found}, not {wanted}")]
    Type {
        name: String,
        column: String,
        found: String,
        wanted: &'static str,
        /// Whether the cast is to be written in Spark SQL.
        spark: bool,
    },
    #[error("{name}: no answer within {secs} s")]
    Silent { name: String, secs: u64 },
    #[error("{name}: the server refused the credentials ({why})")]
    Refused { name: String, why: String },
    #[error("{name}: no table, query or file names the data")]
    NoData { name: String, spark: bool },
    #[error("{name}: more than one of a table, a query and a file name the data")]
    TwoData { name: String, spark: bool },
    #[error("spark: the Spark Connect address must look like sc://HOST:PORT")]
    Remote,
    #[error("{name}: cannot connect ({why})")]
    Unreachable { name: String, why: String },
    #[error("postgres: the source is not a PostgreSQL URL")]
    NotPostgres,
    #[error("{name}: column `{column}`: cannot hand the date format `{format}` to Spark")]
    DateFormat {
        name: String,
        column: String,
        format: String,
        #[source]
        source: anyhow::Error,
    },
    #[error(
        "export presets, a currency choice and the {roles} roles are read from files, not from a database or Spark"
    )]
    FileRules { roles: String },
}

impl Remedied for EngineError {
    fn remedy(&self) -> Option<Remedy> {
        Some(match self {
            EngineError::Type { spark: false, .. } => Remedy::CastInQuery,
            EngineError::Type { spark: true, .. } => Remedy::CastInSparkQuery,
            EngineError::Refused { .. } => Remedy::CheckSparkToken,
            EngineError::Silent { .. } => Remedy::RaiseEngineTimeout,
            EngineError::NoData { spark, .. } => Remedy::NameEngineData { spark: *spark },
            EngineError::TwoData { spark, .. } => Remedy::OneEngineData { spark: *spark },
            EngineError::Remote => Remedy::GiveSparkRemote,
            EngineError::Unreachable { .. } => Remedy::CheckSparkRemote,
            EngineError::NotPostgres => Remedy::GivePostgresUrl,
            EngineError::DateFormat { .. } => Remedy::SparkDateFormat,
            EngineError::FileRules { .. } => Remedy::FilterInQuery,
        })
    }
}

/// One row of the ledger query: a rule (0 = kept), its rows and revenue, their signed value
/// (returns negative) and the last date.
pub struct LedgerRow {
    pub rule: i64,
    pub count: i64,
    pub revenue: f64,
    pub kept: f64,
    pub max_ms: Option<i64>,
}

/// The accumulator an engine fills for `name`.
pub fn accumulator(name: &str, opts: &ScanOptions) -> Accumulator {
    Accumulator::new(AccSettings {
        path: name.to_string(),
        frequency: opts.frequency,
        returns: opts.clean.returns,
        limits: opts.read.limits,
        emails: false,
        histories: None,
    })
}

/// The ledger's counts into the accumulator; returns the last date.
pub fn add_ledger(acc: &mut Accumulator, rows: Vec<LedgerRow>) -> Result<Option<i64>> {
    let (mut n, mut revenue, mut kept, mut max) = (0u64, 0.0, 0.0, None);
    let mut removed = Vec::new();
    for row in rows {
        n += row.count as u64;
        revenue += row.revenue;
        max = max.max(row.max_ms);
        if row.rule == 0 {
            kept += row.kept;
            continue;
        }
        let rule = usize::try_from(row.rule - 1)
            .ok()
            .and_then(|i| Rule::ALL.get(i))
            .with_context(|| format!("the engine returned an unknown rule {}", row.rule))?;
        // Rows after the snapshot are kept rows set aside: they count with their signed
        // value, in the kept value too (the ledger then takes them out of it).
        if matches!(rule, Rule::AfterSnapshot | Rule::AfterRun) {
            kept += row.kept;
            removed.push((*rule, row.count as usize, row.kept));
        } else {
            removed.push((*rule, row.count as usize, row.revenue));
        }
    }
    removed.sort_by_key(|(r, ..)| *r);
    acc.add_counts(n, revenue, kept, max, &removed)?;
    Ok(max)
}

/// Refuses what only the file pass does: export presets and the rules on an export's own
/// fields (status, cancellation, refunds, currency, test orders).
pub fn file_rules_only(read: &rfm_core::ingest::ReadOptions) -> Result<()> {
    use rfm_core::ingest::{CurrencyChoice, PresetChoice, Role};
    let mapped: Vec<&str> = Role::ORDER
        .iter()
        .chain([&Role::Refunded])
        .filter(|r| !read.columns.get(**r).is_empty())
        .map(|r| r.key())
        .collect();
    let preset =
        matches!(read.preset, PresetChoice::Named(p) if p != rfm_core::ingest::Preset::Uci);
    if preset || !mapped.is_empty() || read.currency != CurrencyChoice::One {
        let roles = Role::ORDER.iter().chain([&Role::Refunded]).map(|r| r.key());
        return Err(EngineError::FileRules {
            roles: roles.collect::<Vec<_>>().join(", "),
        }
        .into());
    }
    Ok(())
}

/// The snapshot a run uses: the explicit one, else the last date + 1 day.
pub fn snapshot(opts: &ScanOptions, max_ms: Option<i64>) -> Option<i64> {
    opts.clean.snapshot.or(max_ms.map(|d| d + MS_PER_DAY))
}

/// The pass's result from what the engine accumulated.
pub fn finish(
    acc: Accumulator,
    opts: &ScanOptions,
    name: &str,
    format: FileFormat,
    resolved: &Resolved,
    dates: &str,
) -> Result<Scan> {
    let mut totals = acc
        .finish(opts.clean.snapshot, dates.into())
        .with_context(|| format!("{name}: no row has a date"))?;
    totals.ledger.note = Some(NO_EXAMPLES.into());
    let source = SourceInfo {
        path: name.to_string(),
        format,
        sha256: String::new(),
        bytes: 0,
        encoding: None,
        delimiter: None,
        sheet: None,
        columns: resolved.manifest(),
        preset: None,
    };
    Ok(Scan {
        source,
        totals,
        date_ambiguous: false,
    })
}
