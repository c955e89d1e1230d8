//! Delimited text read whole (for `convert`): decoded, its layout worked out, its shape and
//! limits checked, then parsed by polars in one frame.

use std::borrow::Cow;
use std::io::Cursor;

use polars::prelude::*;

use crate::ingest::text::{self, Layout};
use crate::ingest::{IngestError, ReadOptions, corrupt};

/// Decoded text with its layout worked out and its shape checked.
pub(crate) struct Prepared<'a> {
    pub(super) text: Cow<'a, [u8]>,
    pub(super) delim: u8,
    pub(super) quote: Option<u8>,
    pub headers: Vec<String>,
}

pub(crate) fn prepare<'a>(
    raw: &'a [u8],
    path: &str,
    opts: &ReadOptions,
) -> Result<Prepared<'a>, IngestError> {
    let started = std::time::Instant::now();
    let (mut text, encoding) = text::decode_text(raw, path, opts.encoding, &opts.limits)?;
    tracing::debug!(elapsed = ?started.elapsed(), "decoded {encoding}");
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(IngestError::Empty { path: path.into() });
    }
    // The header is split into names before anything else: it must be a line, not a file.
    opts.limits
        .check_field(path, text::first_line(&text).len(), || {
            " (the header line)".into()
        })?;
    let layout = match opts.delimiter {
        Some(b' ') => match text::sniff_layout(&text, path)? {
            Layout::Delimited(_) => Layout::WhitespaceSplit,
            other => other,
        },
        Some(d) => Layout::Delimited(d),
        None => text::sniff_layout(&text, path)?,
    };
    let (delim, quote) = match layout {
        Layout::Delimited(d) => (d, Some(b'"')),
        other => {
            text = Cow::Owned(text::to_tab_separated(&text, other));
            (b'\t', None)
        }
    };
    let headers = text::header_fields(&text, delim);
    check_limits(&text, delim, quote, &headers, path, &opts.limits)?;
    Ok(Prepared {
        text,
        delim,
        quote,
        headers,
    })
}

impl Prepared<'_> {
    /// Checks every record against the header; returns the number of data rows.
    pub(crate) fn check_shape(&self, path: &str) -> Result<usize, IngestError> {
        let started = std::time::Instant::now();
        let rows = if self.quote.is_some() {
            text::check_shape(&self.text, self.delim, path)?
        } else {
            check_tab_shape(&self.text, self.headers.len(), path)?
        };
        tracing::debug!(elapsed = ?started.elapsed(), rows, "shape checked");
        if rows == 0 {
            return Err(IngestError::HeaderOnly { path: path.into() });
        }
        Ok(rows)
    }
}

/// Parses with polars, then makes sure every record had as many fields as the header.
/// Polars itself refuses a record with too many fields; one with too few leaves the file's
/// last column null, so the last column is always read and the precise (row-numbered)
/// shape check runs only when polars failed or that column has nulls.
pub(crate) fn checked_frame(
    p: &Prepared<'_>,
    projection: Option<Vec<usize>>,
    numeric: &[String],
    path: &str,
) -> Result<(DataFrame, usize), IngestError> {
    let last = p.headers.len() - 1;
    let projection = projection.map(|mut cols| {
        if !cols.contains(&last) {
            cols.push(last);
        }
        cols
    });
    let df = frame(p, projection, numeric, path);
    let suspect = match &df {
        Ok(df) => df.columns().last().is_none_or(|c| c.null_count() > 0) || df.height() == 0,
        Err(_) => true,
    };
    let rows = if suspect {
        p.check_shape(path)?
    } else {
        df.as_ref().map_or(0, |d| d.height())
    };
    let df = df?;
    if df.height() != rows {
        return Err(corrupt(
            path,
            "CSV",
            format!("{} records found but {} rows parsed", rows, df.height()),
        ));
    }
    Ok((df, rows))
}

/// Reads the prepared text; every column as text except `numeric`, which polars parses as
/// floats. If any of those cells is not a plain number, everything is read as text instead
/// (clean then counts the cells that do not parse).
pub(super) fn frame(
    p: &Prepared<'_>,
    projection: Option<Vec<usize>>,
    numeric: &[String],
    path: &str,
) -> Result<DataFrame, IngestError> {
    let started = std::time::Instant::now();
    let read = |numeric: &[String]| {
        let overwrite: Schema = numeric
            .iter()
            .map(|name| Field::new(name.as_str().into(), DataType::Float64))
            .collect();
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_schema_overwrite((!numeric.is_empty()).then(|| Arc::new(overwrite)))
            .with_projection(projection.clone().map(Arc::new))
            .with_raise_if_empty(true)
            .map_parse_options(|o| {
                o.with_separator(p.delim)
                    .with_quote_char(p.quote)
                    .with_missing_is_null(true)
                    .with_truncate_ragged_lines(false)
            })
            .into_reader_with_file_handle(Cursor::new(p.text.as_ref()))
            .finish()
    };
    let df = match read(numeric) {
        Err(e) if !numeric.is_empty() => {
            tracing::debug!("numbers need the text path: {e}");
            read(&[])
        }
        other => other,
    }
    .map_err(|e| corrupt(path, "CSV", e))?;
    tracing::debug!(elapsed = ?started.elapsed(), "parsed by polars");
    Ok(df)
}

/// Shape check for the tab-separated rewrite of whitespace layouts (no quoting there).
pub(super) fn check_tab_shape(
    text: &[u8],
    expected: usize,
    path: &str,
) -> Result<usize, IngestError> {
    let mut rows = 0;
    for (i, line) in text.split(|&b| b == b'\n').enumerate().skip(1) {
        if line.is_empty() {
            continue;
        }
        let got = line.iter().filter(|&&b| b == b'\t').count() + 1;
        if got != expected {
            return Err(IngestError::Ragged {
                path: path.into(),
                row: rows + 1,
                line: i + 1,
                got,
                expected,
            });
        }
        rows += 1;
    }
    Ok(rows)
}

/// Columns, rows and field sizes against the input limits, before polars allocates by them.
/// Cheap bounds first (newlines, longest line); the exact, quote-aware count only when a
/// bound is over.
pub(super) fn check_limits(
    text: &[u8],
    delim: u8,
    quote: Option<u8>,
    headers: &[String],
    path: &str,
    limits: &crate::ingest::InputLimits,
) -> Result<(), IngestError> {
    limits.check_columns(path, headers.len() as u64, None)?;
    let lines = memchr::memchr_iter(b'\n', text).count() as u64;
    if lines > limits.max_rows.saturating_add(1) {
        let mut reader = records(text, delim, quote);
        let mut record = ::csv::ByteRecord::new();
        let mut rows = 0u64;
        // A malformed record ends the count: the shape check names it.
        while let Ok(true) = reader.read_byte_record(&mut record) {
            rows += 1;
            limits.check_rows(path, rows, None)?;
        }
    }
    super::check_fields(text, delim, quote, headers, path, limits, 0)
}

/// A flexible CSV reader over `text`, for the exact, quote-aware checks.
pub(super) fn records(text: &[u8], delim: u8, quote: Option<u8>) -> ::csv::Reader<&[u8]> {
    ::csv::ReaderBuilder::new()
        .delimiter(delim)
        .quoting(quote.is_some())
        .has_headers(true)
        .flexible(true)
        .from_reader(text)
}
