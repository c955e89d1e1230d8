//! Delimited text input (CSV, TSV, whitespace-aligned; gzip; UTF-8 or Latin-1) read by polars.

use std::io::Cursor;
use std::sync::Arc;

use polars::prelude::*;

use super::columns::{Role, resolve};
use super::text::{self, Layout};
use super::{IngestError, Mapped, ReadOptions, corrupt};

/// Decoded text with its layout worked out and its shape checked.
pub(crate) struct Prepared {
    text: Vec<u8>,
    delim: u8,
    quote: Option<u8>,
    pub headers: Vec<String>,
    pub rows: usize,
    pub encoding: &'static str,
    pub layout: Layout,
}

pub(crate) fn prepare(raw: &[u8], path: &str, opts: &ReadOptions) -> Result<Prepared, IngestError> {
    let (mut text, encoding) = text::decode_text(raw, path, opts.encoding)?;
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(IngestError::Empty { path: path.into() });
    }
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
            text = text::to_tab_separated(&text, other);
            (b'\t', None)
        }
    };
    let headers = text::header_fields(&text, delim);
    let rows = if quote.is_some() {
        text::check_shape(&text, delim, path)?
    } else {
        check_tab_shape(&text, headers.len(), path)?
    };
    if rows == 0 {
        return Err(IngestError::HeaderOnly { path: path.into() });
    }
    Ok(Prepared {
        text,
        delim,
        quote,
        headers,
        rows,
        encoding,
        layout,
    })
}

/// Reads the prepared text as all-text columns (typing happens in clean).
pub(crate) fn frame(
    p: Prepared,
    projection: Option<Vec<usize>>,
    path: &str,
) -> Result<DataFrame, IngestError> {
    let rows = p.rows;
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_projection(projection.map(Arc::new))
        .with_raise_if_empty(true)
        .map_parse_options(|o| {
            o.with_separator(p.delim)
                .with_quote_char(p.quote)
                .with_missing_is_null(true)
                .with_truncate_ragged_lines(false)
        })
        .into_reader_with_file_handle(Cursor::new(p.text))
        .finish()
        .map_err(|e| corrupt(path, "CSV", e))?;
    if df.height() != rows {
        return Err(corrupt(
            path,
            "CSV",
            format!("{} records found but {} rows parsed", rows, df.height()),
        ));
    }
    Ok(df)
}

pub(crate) fn read(raw: &[u8], path: &str, opts: &ReadOptions) -> Result<Mapped, IngestError> {
    let p = prepare(raw, path, opts)?;
    let resolved = resolve(&opts.columns, &p.headers, path)?;
    let (rows, encoding, layout) = (p.rows, p.encoding, p.layout);
    let mut wanted: Vec<(Role, usize)> = resolved
        .found
        .iter()
        .map(|(role, (idx, _))| (*role, *idx))
        .collect();
    wanted.sort_by_key(|(_, idx)| *idx);
    let mut projection: Vec<usize> = wanted.iter().map(|(_, i)| *i).collect();
    projection.dedup();
    let df = frame(p, Some(projection.clone()), path)?;
    let cols = df.columns();
    let columns = wanted
        .iter()
        .map(|(role, idx)| {
            let pos = projection.iter().position(|p| p == idx).expect("projected");
            (*role, cols[pos].as_materialized_series().clone())
        })
        .collect();
    Ok(Mapped {
        rows,
        resolved,
        columns,
        encoding: Some(encoding.to_string()),
        delimiter: Some(layout.describe()),
        sheet: None,
    })
}

/// Shape check for the tab-separated rewrite of whitespace layouts (no quoting there).
fn check_tab_shape(text: &[u8], expected: usize, path: &str) -> Result<usize, IngestError> {
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
