//! Parquet input, read by polars with only the mapped columns projected.

use std::io::Cursor;

use polars::prelude::*;

use super::columns::resolve;
use super::{IngestError, InputLimits, Mapped, ReadOptions, corrupt};

/// Rows, columns and the inflated size of the columns to be read, from the file's footer,
/// against the input limits: a few hundred KB can declare tens of millions of rows.
fn check_limits(
    reader: &mut ParquetReader<Cursor<&[u8]>>,
    names: &[String],
    path: &str,
    limits: &InputLimits,
) -> Result<(), IngestError> {
    let meta = reader
        .get_metadata()
        .map_err(|e| corrupt(path, "Parquet", e))?;
    limits.check_rows(path, meta.num_rows as u64, None)?;
    let mut inflated = 0u64;
    for group in &meta.row_groups {
        for name in names {
            for column in group.columns_under_root_iter(name).into_iter().flatten() {
                let size = u64::try_from(column.uncompressed_size()).unwrap_or(u64::MAX);
                inflated = inflated.saturating_add(size);
            }
        }
    }
    limits.check_bytes(path, inflated)
}

pub(crate) fn read(raw: &[u8], path: &str, opts: &ReadOptions) -> Result<Mapped, IngestError> {
    let mut reader = ParquetReader::new(Cursor::new(raw));
    let schema = reader.schema().map_err(|e| corrupt(path, "Parquet", e))?;
    opts.limits.check_columns(path, schema.len() as u64, None)?;
    let headers: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let resolved = resolve(&opts.columns, &headers, path)?;
    let mut names: Vec<String> = resolved.found.values().map(|(_, h)| h.clone()).collect();
    names.sort();
    names.dedup();
    check_limits(&mut reader, &names, path, &opts.limits)?;
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
    opts.limits.check_columns(path, schema.len() as u64, None)?;
    let headers: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let resolved = resolve(&opts.columns, &headers, path)?;
    check_limits(&mut reader, &headers, path, &opts.limits)?;
    let df = reader.finish().map_err(|e| corrupt(path, "Parquet", e))?;
    Ok((df, resolved))
}
