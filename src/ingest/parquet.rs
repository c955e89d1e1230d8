//! Parquet input, read by polars one row group at a time with only the mapped columns
//! projected.

use std::io::Cursor;

use polars::prelude::*;

use super::columns::Role;
use super::{IngestError, InputLimits, ReadOptions, corrupt};
use polars::io::parquet::metadata::{FileMetadata, FileMetadataRef};

/// Where a Parquet file's bytes are: a file is mapped again by every row group's reader
/// (and unmapped after it), so only the row groups in flight count in memory.
pub(crate) enum Bytes {
    File(std::path::PathBuf),
    Memory(Arc<[u8]>),
}

/// Bytes a decoded value takes at least (a number, or a string's view), beyond the bytes the
/// footer declares: repeated values in a dictionary inflate to little but decode to a value
/// per row.
const DECODED_VALUE: u64 = 16;

/// Projected bytes of row group `group` in memory: its footer's inflated sizes plus a decoded
/// value per row and column.
fn group_bytes(meta: &FileMetadataRef, group: usize, names: &[String]) -> u64 {
    let rows = meta.row_groups[group].num_rows() as u64;
    let mut inflated = rows.saturating_mul(DECODED_VALUE * names.len() as u64);
    for name in names {
        for column in meta.row_groups[group]
            .columns_under_root_iter(name)
            .into_iter()
            .flatten()
        {
            let size = u64::try_from(column.uncompressed_size()).unwrap_or(u64::MAX);
            inflated = inflated.saturating_add(size);
        }
    }
    inflated
}

/// Reads row group `group` alone: the reader is given a footer that lists only that group
/// (a row slice would make polars walk every group before it).
fn read_group(
    bytes: &Bytes,
    meta: &FileMetadataRef,
    names: &[String],
    group: usize,
    path: &str,
) -> PolarsResult<DataFrame> {
    fn finish<R: polars::io::mmap::MmapBytesReader>(
        mut reader: ParquetReader<R>,
        meta: FileMetadataRef,
        names: &[String],
    ) -> PolarsResult<DataFrame> {
        reader.set_metadata(meta);
        reader
            .with_columns(Some(names.to_vec()))
            .read_parallel(ParallelStrategy::None)
            .finish()
    }
    let rg = meta.row_groups[group].clone();
    let mut one = FileMetadata {
        row_groups: Vec::new(),
        ..(**meta).clone()
    };
    one.num_rows = rg.num_rows();
    one.max_row_group_height = rg.num_rows();
    one.row_groups.push(rg);
    let one = Arc::new(one);
    match bytes {
        Bytes::File(p) => {
            let file =
                std::fs::File::open(p).map_err(|e| polars_err!(ComputeError: "{path}: {e}"))?;
            finish(ParquetReader::new(file), one, names)
        }
        Bytes::Memory(m) => finish(ParquetReader::new(Cursor::new(m.clone())), one, names),
    }
}

/// Opens a Parquet file for streaming, one row group per piece. The footer is checked
/// against the limits first: a few hundred KB can declare tens of millions of rows.
pub(crate) fn open(
    bytes: Bytes,
    path: &str,
    opts: &ReadOptions,
    info: impl Fn(&super::Resolved) -> super::SourceInfo,
) -> Result<super::Stream, IngestError> {
    let bad = |e: PolarsError| corrupt(path, "Parquet", e);
    let (schema, meta) = match &bytes {
        Bytes::File(p) => {
            let file = std::fs::File::open(p).map_err(|e| corrupt(path, "Parquet", e))?;
            let mut reader = ParquetReader::new(file);
            (
                reader.schema().map_err(bad)?,
                reader.get_metadata().map_err(bad)?.clone(),
            )
        }
        Bytes::Memory(m) => {
            let mut reader = ParquetReader::new(Cursor::new(m.clone()));
            (
                reader.schema().map_err(bad)?,
                reader.get_metadata().map_err(bad)?.clone(),
            )
        }
    };
    opts.limits.check_columns(path, schema.len() as u64, None)?;
    let headers: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let resolved = super::map_columns(opts, &headers, path)?;
    let mut names: Vec<String> = resolved.found.values().map(|(_, h)| h.clone()).collect();
    names.sort();
    names.dedup();
    opts.limits.check_rows(path, meta.num_rows as u64, None)?;
    if meta.num_rows == 0 {
        return Err(IngestError::HeaderOnly { path: path.into() });
    }
    let mut total = 0u64;
    for group in 0..meta.row_groups.len() {
        let size = group_bytes(&meta, group, &names);
        opts.limits.check_chunk(
            path,
            size,
            &format!("row group {}'s mapped columns", group + 1),
        )?;
        total = total.saturating_add(size);
    }
    opts.limits.check_bytes(path, total)?;
    let roles: Vec<(Role, String)> = resolved
        .found
        .iter()
        .map(|(r, (_, h))| (*r, h.clone()))
        .collect();
    let source = info(&resolved);
    let shared = Arc::new((bytes, meta.clone(), names, roles, path.to_string()));
    let pieces = (0..meta.row_groups.len()).map(move |group| {
        let shared = shared.clone();
        Ok(Box::new(move || {
            let (bytes, meta, names, roles, path) = &*shared;
            let df = read_group(bytes, meta, names, group, path)
                .map_err(|e| corrupt(path, "Parquet", e))?;
            let columns = roles
                .iter()
                .map(|(role, header)| {
                    df.column(header)
                        .map(|c| (*role, c.as_materialized_series().clone()))
                        .map_err(|e| corrupt(path, "Parquet", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(super::Chunk::from_columns(df.height(), columns))
        }) as super::Piece)
    });
    Ok(super::Stream {
        source,
        pieces: Box::new(pieces),
        encoding: None,
    })
}

/// Rows, columns and the inflated size of the columns to be read, from the file's footer.
fn check_limits(
    reader: &mut ParquetReader<Cursor<&[u8]>>,
    names: &[String],
    path: &str,
    limits: &InputLimits,
) -> Result<(), IngestError> {
    let meta = reader
        .get_metadata()
        .map_err(|e| corrupt(path, "Parquet", e))?
        .clone();
    limits.check_rows(path, meta.num_rows as u64, None)?;
    let inflated = (0..meta.row_groups.len())
        .map(|g| group_bytes(&meta, g, names))
        .fold(0u64, u64::saturating_add);
    limits.check_chunk(path, inflated, "the file's columns (read whole)")
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
    let resolved = super::map_columns(opts, &headers, path)?;
    check_limits(&mut reader, &headers, path, &opts.limits)?;
    let df = reader.finish().map_err(|e| corrupt(path, "Parquet", e))?;
    Ok((df, resolved))
}
