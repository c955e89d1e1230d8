//! Parquet input, read by polars with only the mapped columns projected.

use std::io::Cursor;

use polars::prelude::*;

use super::columns::resolve;
use super::{IngestError, Mapped, ReadOptions, corrupt};

pub(crate) fn read(raw: &[u8], path: &str, opts: &ReadOptions) -> Result<Mapped, IngestError> {
    let mut reader = ParquetReader::new(Cursor::new(raw));
    let schema = reader.schema().map_err(|e| corrupt(path, "Parquet", e))?;
    let headers: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let resolved = resolve(&opts.columns, &headers, path)?;
    let mut names: Vec<String> = resolved.found.values().map(|(_, h)| h.clone()).collect();
    names.sort();
    names.dedup();
    let df = reader
        .with_columns(Some(names))
        .finish()
        .map_err(|e| corrupt(path, "Parquet", e))?;
    let columns = resolved
        .found
        .iter()
        .map(|(role, (_, header))| {
            df.column(header)
                .map(|c| (*role, c.as_materialized_series().clone()))
                .map_err(|e| corrupt(path, "Parquet", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Mapped {
        rows: df.height(),
        resolved,
        columns,
        encoding: None,
        delimiter: None,
        sheet: None,
    })
}

/// Every column, for `convert`.
pub(crate) fn read_all(
    raw: &[u8],
    path: &str,
    opts: &ReadOptions,
) -> Result<(DataFrame, super::Resolved), IngestError> {
    let mut reader = ParquetReader::new(Cursor::new(raw));
    let schema = reader.schema().map_err(|e| corrupt(path, "Parquet", e))?;
    let headers: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let resolved = resolve(&opts.columns, &headers, path)?;
    let df = reader.finish().map_err(|e| corrupt(path, "Parquet", e))?;
    Ok((df, resolved))
}
