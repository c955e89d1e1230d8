//! Ingest: reads a transactions file (CSV, XLSX or Parquet) into a [`RawTable`] holding the
//! mapped columns, untyped where the format is untyped; typing and cleaning come later.

mod columns;
mod csv;
pub mod limits;
mod mapping;
mod parquet;
pub mod presets;
mod text;
mod xlsx;

use std::path::Path;

use polars::prelude::Series;
use serde::{Deserialize, Serialize};

use crate::remedy::Remedy;
use sha2::{Digest, Sha256};

pub use columns::{ColumnMap, Role, normalize_header};
pub use limits::InputLimits;
pub use mapping::{Resolved, resolve as resolve_columns};
pub use presets::{CurrencyChoice, Preset, PresetChoice};
pub use text::{Encoding, decode_text};

/// Errors while reading an input file. Every message names the file; what to do is a
/// [`Remedy`] the front end words (see [`crate::remedy`]), or in the message where there is
/// one thing to do whoever reads it.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: file not found")]
    NotFound { path: String },
    #[error("{path}: is a directory, not a transactions file")]
    NotAFile { path: String },
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unknown file type `{ext}`")]
    UnknownFormat { path: String, ext: String },
    #[error("{path}: the file is empty; export the transactions again")]
    Empty { path: String },
    #[error("{path}: the file has a header but no data rows")]
    HeaderOnly { path: String },
    #[error("{path}: required column(s) missing: {missing}. Columns found: {found}")]
    MissingColumns {
        path: String,
        missing: String,
        found: String,
    },
    #[error("{path}: row {row} (line {line}) has {got} fields but the header has {expected}")]
    Ragged {
        path: String,
        row: usize,
        line: usize,
        got: usize,
        expected: usize,
    },
    #[error("{path}: not valid UTF-8 at byte {offset} (line {line})")]
    Encoding {
        path: String,
        offset: usize,
        line: usize,
    },
    #[error("{path}: cannot find the columns: {detail}")]
    Layout { path: String, detail: String },
    #[error("{path}: {detail}")]
    Preset { path: String, detail: String },
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
    #[error("{path}: no sheet named `{name}`; sheets are: {sheets}")]
    NoSuchSheet {
        path: String,
        name: String,
        sheets: String,
    },
    #[error("{path}: {detail}")]
    Limit {
        path: String,
        /// What was found and the limit, e.g. "2,000 columns, over the limit of 1,000".
        detail: String,
        setting: &'static str,
    },
    #[error("{0}")]
    Options(String),
    #[error("{path}: a database or a Spark source is read by its engine")]
    EngineSource { path: String },
    #[error(
        "{path}: the converted currency needs an export with converted amounts (Stripe's); this one is {export}"
    )]
    NoConverted { path: String, export: String },
    /// The run was asked to stop (Ctrl-C) while a reader worked.
    #[error("the run was stopped")]
    Stopped,
    /// Internal: auto-detected UTF-8 turned out wrong after non-ASCII text was already
    /// read as UTF-8; the pass starts again reading Latin-1.
    #[error("{path}: the text is not UTF-8 after all; read again as Latin-1")]
    Reencode { path: String },
}

impl crate::remedy::Remedied for IngestError {
    fn remedy(&self) -> Option<Remedy> {
        Some(match self {
            IngestError::NotFound { .. } | IngestError::NotAFile { .. } => Remedy::CheckInput,
            IngestError::UnknownFormat { .. } => Remedy::GiveFormat,
            IngestError::MissingColumns { .. } => Remedy::MapColumns,
            IngestError::Ragged { .. } => Remedy::FixLineOrDelimiter,
            IngestError::Encoding { .. } => Remedy::GiveEncoding,
            IngestError::Layout { .. } => Remedy::GiveDelimiter,
            IngestError::Preset { .. } => Remedy::ChoosePreset,
            IngestError::NoSuchSheet { .. } => Remedy::GiveSheet,
            IngestError::Limit { setting, .. } => Remedy::RaiseLimit(setting),
            IngestError::EngineSource { .. } => Remedy::UseEngine,
            IngestError::NoConverted { .. } => Remedy::ConvertedAmounts,
            _ => return None,
        })
    }
}

impl IngestError {
    /// Adds the rows before a chunk to a row number found inside it.
    pub fn after_rows(self, before: usize) -> IngestError {
        match self {
            IngestError::Ragged {
                path,
                row,
                line,
                got,
                expected,
            } => IngestError::Ragged {
                path,
                row: row + before,
                line,
                got,
                expected,
            },
            other => other,
        }
    }
}

/// The supported input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Xlsx,
    Parquet,
    /// A PostgreSQL table or query, read by its engine (never by the file readers).
    Postgres,
    /// A table or query read by a Spark cluster.
    Spark,
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
            FileFormat::Postgres => "postgres",
            FileFormat::Spark => "spark",
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
    pub preset: PresetChoice,
    pub currency: CurrencyChoice,
    pub limits: InputLimits,
}

/// What the dashboard shows for a chosen file: the preset its header line is recognised
/// as, and where each role would be read from (or why not).
pub fn preview(line: &str, opts: &ReadOptions) -> (Option<Preset>, Result<Resolved, IngestError>) {
    let name = "the file";
    let delim = match opts.delimiter {
        Some(d) => d,
        None => match text::sniff_layout(line.as_bytes(), name) {
            Ok(text::Layout::Delimited(d)) => d,
            _ => b'\t',
        },
    };
    let headers = text::header_fields(line.as_bytes(), delim);
    let resolved = map_columns(opts, &headers, name);
    let preset = match &resolved {
        Ok(r) => r.preset,
        Err(_) => presets::recognise(&headers).first().copied(),
    };
    (preset, resolved)
}

/// Finds the columns of `headers`: the export preset (recognised or named), its names, and
/// the roles the settings and `--columns` map.
pub(crate) fn map_columns(
    opts: &ReadOptions,
    headers: &[String],
    file: &str,
) -> Result<Resolved, IngestError> {
    let (preset, map) = presets::choose(opts.preset, &opts.currency, &opts.columns, headers, file)?;
    let mut resolved = mapping::resolve(&map, headers, file)?;
    resolved.preset = preset;
    Ok(resolved)
}

/// What was read, for the run manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    /// The export preset whose column names were used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
}

/// A run of consecutive data rows of an input: the mapped columns, typed as the format types
/// them (text where the format is untyped). Typing and cleaning come later.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    pub rows: usize,
    pub customer: Series,
    pub invoice: Option<Series>,
    pub date: Series,
    pub quantity: Option<Series>,
    pub price: Option<Series>,
    pub amount: Option<Series>,
    pub email: Option<Series>,
    pub status: Option<Series>,
    pub cancelled: Option<Series>,
    pub refunded: Option<Series>,
    pub currency: Option<Series>,
    pub test: Option<Series>,
}

impl Chunk {
    fn from_columns(rows: usize, columns: Vec<(Role, Series)>) -> Chunk {
        let mut chunk = Chunk {
            rows,
            ..Chunk::default()
        };
        for (role, series) in columns {
            match role {
                Role::Customer => chunk.customer = series,
                Role::Invoice => chunk.invoice = Some(series),
                Role::Date => chunk.date = series,
                Role::Quantity => chunk.quantity = Some(series),
                Role::Price => chunk.price = Some(series),
                Role::Amount => chunk.amount = Some(series),
                Role::Email => chunk.email = Some(series),
                Role::Status => chunk.status = Some(series),
                Role::Cancelled => chunk.cancelled = Some(series),
                Role::Refunded => chunk.refunded = Some(series),
                Role::Currency => chunk.currency = Some(series),
                Role::Test => chunk.test = Some(series),
            }
        }
        chunk
    }

    /// Rows `offset..offset + len` (no copy).
    pub fn slice(&self, offset: usize, len: usize) -> Chunk {
        let s = |c: &Series| c.slice(offset as i64, len);
        let o = |c: &Option<Series>| c.as_ref().map(s);
        Chunk {
            rows: len,
            customer: s(&self.customer),
            invoice: o(&self.invoice),
            date: s(&self.date),
            quantity: o(&self.quantity),
            price: o(&self.price),
            amount: o(&self.amount),
            email: o(&self.email),
            status: o(&self.status),
            cancelled: o(&self.cancelled),
            refunded: o(&self.refunded),
            currency: o(&self.currency),
            test: o(&self.test),
        }
    }
}

/// Work that yields the next chunk: the reader hands these out in file order and worker
/// threads run them (parsing a block of text, decoding a row group).
pub type Piece = Box<dyn FnOnce() -> Result<Chunk, IngestError> + Send>;

/// An opened input: what it is, and its pieces in file order. Only the pieces in flight are
/// in memory.
pub struct Stream {
    /// The manifest entry; `sha256` is filled in by [`Input::hash`] once the pass is done.
    pub source: SourceInfo,
    pub pieces: Box<dyn Iterator<Item = Result<Piece, IngestError>> + Send>,
    /// A text input's encoding as decided so far (it can turn from UTF-8 to Latin-1 as the
    /// text goes); read it when the pass is done.
    pub encoding: Option<std::sync::Arc<std::sync::Mutex<&'static str>>>,
}

/// Where the data comes from.
#[derive(Debug, Clone)]
pub enum Input {
    File(std::path::PathBuf),
    /// An in-memory file (the built-in sample); `name` is used in messages.
    Bytes {
        bytes: std::sync::Arc<[u8]>,
        name: String,
    },
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Bytes { name, .. } => name.clone(),
        }
    }

    /// A fresh reader over the raw bytes.
    fn reader(&self) -> Result<Box<dyn std::io::Read + Send>, IngestError> {
        match self {
            Input::File(path) => Ok(Box::new(open_file(path)?)),
            Input::Bytes { bytes, .. } => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
        }
    }

    /// SHA-256 of the raw bytes, computed on its own thread while the pass runs (the file
    /// is read again from the page cache, never a second sequential pass of the pass itself).
    pub fn hash(&self) -> std::thread::JoinHandle<Result<String, IngestError>> {
        let input = self.clone();
        std::thread::spawn(move || {
            let mut reader = input.reader()?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(IngestError::Io {
                            path: input.name(),
                            source,
                        });
                    }
                };
                hasher.update(&buf[..n]);
            }
            Ok(hex(&hasher.finalize()))
        })
    }
}

fn open_file(path: &Path) -> Result<std::fs::File, IngestError> {
    let display = path.display().to_string();
    if path.is_dir() {
        return Err(IngestError::NotAFile { path: display });
    }
    match std::fs::File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(IngestError::NotFound { path: display })
        }
        Err(source) => Err(IngestError::Io {
            path: display,
            source,
        }),
    }
}

/// Columns handed back by a format reader that reads a file whole (XLSX).
pub(crate) struct Mapped {
    pub rows: usize,
    pub resolved: Resolved,
    pub columns: Vec<(Role, Series)>,
    pub sheet: Option<String>,
}

/// Rows per chunk when a whole table is cut up for the workers.
const TABLE_CHUNK_ROWS: usize = 1 << 18;

/// Opens `input` for one streaming pass. Cheap: reads the header (and the first block of a
/// text file), never the whole input, except a workbook, read whole here (where `progress`
/// can stop it).
pub fn open(
    input: &Input,
    opts: &ReadOptions,
    progress: &dyn crate::progress::Progress,
) -> Result<Stream, IngestError> {
    let name = input.name();
    if let Input::File(path) = input
        && path.is_dir()
    {
        return Err(IngestError::NotAFile { path: name });
    }
    let format = match (opts.format, input) {
        (Some(f), _) => f,
        (None, Input::File(path)) => FileFormat::from_path(path)?,
        (None, Input::Bytes { .. }) => FileFormat::Csv,
    };
    let size = match input {
        Input::File(path) => {
            let file = open_file(path)?;
            file.metadata().map(|m| m.len()).unwrap_or(0)
        }
        Input::Bytes { bytes, .. } => bytes.len() as u64,
    };
    if size == 0 {
        return Err(IngestError::Empty { path: name });
    }
    opts.limits.check_bytes(&name, size)?;
    let info = |resolved: &Resolved| SourceInfo {
        path: name.clone(),
        format,
        sha256: String::new(),
        bytes: size,
        encoding: None,
        delimiter: None,
        sheet: None,
        columns: resolved.manifest(),
        preset: resolved.preset,
    };
    match format {
        FileFormat::Postgres | FileFormat::Spark => Err(IngestError::EngineSource { path: name }),
        FileFormat::Csv => csv::open(input.reader()?, &name, opts, info),
        FileFormat::Parquet => {
            let file = match input {
                Input::File(path) => parquet::Bytes::File(path.clone()),
                Input::Bytes { bytes, .. } => parquet::Bytes::Memory(bytes.clone()),
            };
            parquet::open(file, &name, opts, info)
        }
        FileFormat::Xlsx => {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut input.reader()?, &mut raw).map_err(|source| {
                IngestError::Io {
                    path: name.clone(),
                    source,
                }
            })?;
            opts.limits
                .check_chunk(&name, raw.len() as u64, "the workbook's bytes")?;
            let mapped = xlsx::read(&raw, &name, opts, progress)?;
            drop(raw);
            if mapped.rows == 0 {
                return Err(IngestError::HeaderOnly { path: name });
            }
            let mut source = info(&mapped.resolved);
            source.sheet = mapped.sheet;
            let table = Chunk::from_columns(mapped.rows, mapped.columns);
            let rows = mapped.rows;
            let pieces = (0..rows).step_by(TABLE_CHUNK_ROWS).map(move |offset| {
                let chunk = table.slice(offset, TABLE_CHUNK_ROWS.min(rows - offset));
                Ok(Box::new(move || Ok(chunk)) as Piece)
            });
            Ok(Stream {
                source,
                pieces: Box::new(pieces),
                encoding: None,
            })
        }
    }
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
    let display = path.display().to_string();
    let format = match opts.format {
        Some(f) => f,
        None => FileFormat::from_path(path)?,
    };
    let mut file = open_file(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    opts.limits
        .check_chunk(&display, size, "the file's bytes (read whole)")?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|source| IngestError::Io {
        path: display.clone(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(IngestError::Empty { path: display });
    }
    match format {
        FileFormat::Csv => {
            let p = csv::prepare(&bytes, &display, opts)?;
            let resolved = map_columns(opts, &p.headers, &display)?;
            Ok((csv::checked_frame(&p, None, &[], &display)?.0, resolved))
        }
        FileFormat::Parquet => parquet::read_all(&bytes, &display, opts),
        FileFormat::Postgres | FileFormat::Spark => Err(IngestError::EngineSource {
            path: display.to_string(),
        }),
        FileFormat::Xlsx => Err(IngestError::Options(format!(
            "{display}: converting from XLSX is not supported; convert from CSV or Parquet"
        ))),
    }
}
