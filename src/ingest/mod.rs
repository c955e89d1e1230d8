//! Ingest: reads a transactions file (CSV, XLSX or Parquet) into a [`RawTable`] holding the
//! mapped columns, untyped where the format is untyped; typing and cleaning come later.

mod columns;
mod csv;
pub mod limits;
mod parquet;
mod text;
mod xlsx;

use std::path::Path;

use polars::prelude::Series;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use columns::{ColumnMap, Resolved, Role, normalize_header, resolve as resolve_columns};
pub use limits::InputLimits;
pub use text::{Encoding, decode_text};

/// Errors while reading an input file. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: file not found; check the path passed to --input")]
    NotFound { path: String },
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: unknown file type `{ext}`; use .csv, .tsv, .txt (optionally .gz), .xlsx or .parquet, or pass --format-in csv|xlsx|parquet"
    )]
    UnknownFormat { path: String, ext: String },
    #[error("{path}: the file is empty; export the transactions again")]
    Empty { path: String },
    #[error("{path}: the file has a header but no data rows")]
    HeaderOnly { path: String },
    #[error(
        "{path}: required column(s) missing: {missing}. Columns found: {found}. Map yours with --columns customer=…,invoice=…,date=…,quantity=…,price=… (or amount=… instead of quantity and price)"
    )]
    MissingColumns {
        path: String,
        missing: String,
        found: String,
    },
    #[error(
        "{path}: row {row} (line {line}) has {got} fields but the header has {expected}; fix that line (an unquoted delimiter inside a value?) or pass the right --delimiter"
    )]
    Ragged {
        path: String,
        row: usize,
        line: usize,
        got: usize,
        expected: usize,
    },
    #[error("{path}: not valid UTF-8 at byte {offset} (line {line}); pass --encoding latin1")]
    Encoding {
        path: String,
        offset: usize,
        line: usize,
    },
    #[error("{path}: cannot find the columns: {detail}; pass --delimiter")]
    Layout { path: String, detail: String },
    #[error(
        "{path}: not a readable {format} file ({detail}); re-export it or check that it is not truncated"
    )]
    Corrupt {
        path: String,
        format: &'static str,
        detail: String,
    },
    #[error("{path}: {detail}")]
    Sheet { path: String, detail: String },
    #[error(
        "{path}: {detail}. If the file is genuine, raise `[limits] {setting}` in the settings (or the environment variable RFM_AGENT__LIMITS__{setting_env})",
        setting_env = setting.to_ascii_uppercase()
    )]
    Limit {
        path: String,
        /// What was found and the limit, e.g. "2,000 columns, over the limit of 1,000".
        detail: String,
        setting: &'static str,
    },
    #[error("{0}")]
    Options(String),
}

/// The supported input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Xlsx,
    Parquet,
}

impl FileFormat {
    pub fn parse(name: &str) -> Option<FileFormat> {
        match name.to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" | "text" => Some(FileFormat::Csv),
            "xlsx" | "xlsm" | "excel" => Some(FileFormat::Xlsx),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            _ => None,
        }
    }

    /// Guesses the format from the file name (`.gz` is looked through).
    pub fn from_path(path: &Path) -> Result<FileFormat, IngestError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = stem.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "csv" | "tsv" | "txt" | "dat" | "tab" => Ok(FileFormat::Csv),
            _ => FileFormat::parse(ext).ok_or_else(|| IngestError::UnknownFormat {
                path: path.display().to_string(),
                ext: if ext.is_empty() {
                    "(none)".into()
                } else {
                    format!(".{ext}")
                },
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Xlsx => "xlsx",
            FileFormat::Parquet => "parquet",
        }
    }
}

/// How to read the input; every field has an "auto" setting.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub format: Option<FileFormat>,
    /// `None` sniffs the delimiter.
    pub delimiter: Option<u8>,
    pub encoding: Encoding,
    pub sheet: Option<String>,
    pub columns: ColumnMap,
    pub limits: InputLimits,
}

/// What was read, for the run manifest.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    pub path: String,
    pub format: FileFormat,
    pub sha256: String,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// role → header as written in the file.
    pub columns: std::collections::BTreeMap<String, String>,
}

/// The mapped columns of an input, one entry per data row.
#[derive(Debug, Clone)]
pub struct RawTable {
    pub source: SourceInfo,
    pub rows: usize,
    pub customer: Series,
    pub invoice: Option<Series>,
    pub date: Series,
    pub quantity: Option<Series>,
    pub price: Option<Series>,
    pub amount: Option<Series>,
    pub email: Option<Series>,
}

/// Columns handed back by a format reader, before the manifest is completed.
pub(crate) struct Mapped {
    pub rows: usize,
    pub resolved: Resolved,
    pub columns: Vec<(Role, Series)>,
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    pub sheet: Option<String>,
}

/// Reads `path` with `opts`.
pub fn read_file(path: &Path, opts: &ReadOptions) -> Result<RawTable, IngestError> {
    let (bytes, display, format) = load(path, opts)?;
    read_bytes(bytes, &display, format, opts)
}

/// The file's bytes, its name for messages and its format.
fn load(path: &Path, opts: &ReadOptions) -> Result<(Vec<u8>, String, FileFormat), IngestError> {
    let display = path.display().to_string();
    if path.is_dir() {
        return Err(IngestError::Options(format!(
            "{display}: is a directory; pass a transactions file with --input"
        )));
    }
    let format = match opts.format {
        Some(f) => f,
        None => FileFormat::from_path(path)?,
    };
    if let Ok(meta) = std::fs::metadata(path) {
        opts.limits.check_bytes(&display, meta.len())?;
    }
    match std::fs::read(path) {
        Ok(bytes) => Ok((bytes, display, format)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(IngestError::NotFound { path: display })
        }
        Err(source) => Err(IngestError::Io {
            path: display,
            source,
        }),
    }
}

/// Reads an in-memory file; `name` is used in messages and the manifest.
pub fn read_bytes(
    bytes: Vec<u8>,
    name: &str,
    format: FileFormat,
    opts: &ReadOptions,
) -> Result<RawTable, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::Empty { path: name.into() });
    }
    let size = bytes.len() as u64;
    opts.limits.check_bytes(name, size)?;
    // Hash on the other core while the file is parsed.
    let (sha256, mapped) = std::thread::scope(|s| {
        let hasher = s.spawn(|| hex(&Sha256::digest(&bytes)));
        let mapped = match format {
            FileFormat::Csv => csv::read(&bytes, name, opts),
            FileFormat::Xlsx => xlsx::read(&bytes, name, opts),
            FileFormat::Parquet => parquet::read(&bytes, name, opts),
        };
        (hasher.join().expect("hashing thread panicked"), mapped)
    });
    let mapped = mapped?;
    if mapped.rows == 0 {
        return Err(IngestError::HeaderOnly { path: name.into() });
    }
    let mut table = RawTable {
        source: SourceInfo {
            path: name.to_string(),
            format,
            sha256,
            bytes: size,
            encoding: mapped.encoding,
            delimiter: mapped.delimiter,
            sheet: mapped.sheet,
            columns: mapped.resolved.manifest(),
        },
        rows: mapped.rows,
        customer: Series::default(),
        invoice: None,
        date: Series::default(),
        quantity: None,
        price: None,
        amount: None,
        email: None,
    };
    for (role, series) in mapped.columns {
        match role {
            Role::Customer => table.customer = series,
            Role::Invoice => table.invoice = Some(series),
            Role::Date => table.date = series,
            Role::Quantity => table.quantity = Some(series),
            Role::Price => table.price = Some(series),
            Role::Amount => table.amount = Some(series),
            Role::Email => table.email = Some(series),
        }
    }
    Ok(table)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Turns a polars error into a "corrupt file" error for `format`.
pub(crate) fn corrupt(path: &str, format: &'static str, e: impl std::fmt::Display) -> IngestError {
    IngestError::Corrupt {
        path: path.to_string(),
        format,
        detail: e.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

/// Reads every column of a CSV or Parquet file (for `convert`), with the date column found
/// through the column map. XLSX input is not supported here.
pub fn read_all_columns(
    path: &Path,
    opts: &ReadOptions,
) -> Result<(polars::prelude::DataFrame, Resolved), IngestError> {
    let (bytes, display, format) = load(path, opts)?;
    if bytes.is_empty() {
        return Err(IngestError::Empty { path: display });
    }
    match format {
        FileFormat::Csv => {
            let p = csv::prepare(&bytes, &display, opts)?;
            let resolved = columns::resolve(&opts.columns, &p.headers, &display)?;
            Ok((csv::checked_frame(&p, None, &[], &display)?.0, resolved))
        }
        FileFormat::Parquet => parquet::read_all(&bytes, &display, opts),
        FileFormat::Xlsx => Err(IngestError::Options(format!(
            "{display}: converting from XLSX is not supported; convert from CSV or Parquet"
        ))),
    }
}
