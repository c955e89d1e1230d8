//! Parquet input, read by polars a few row groups at a time with only the mapped columns
//! projected. Memory is charged by what is decoded, not by what the footer says: each
//! piece's page headers are audited before polars reads them (pages.rs), and its decoded
//! text is measured before anything copies it.

mod pages;

use std::io::{BufReader, Cursor};
use std::ops::Range;

use polars::prelude::*;

use super::columns::Role;
use super::{IngestError, InputLimits, ReadOptions, corrupt};
use polars::io::parquet::metadata::{FileMetadata, FileMetadataRef};

/// Where a Parquet file's bytes are: a file is mapped again by every piece's reader (and
/// unmapped after it), so only the pieces in flight count in memory.
pub(crate) enum Bytes {
    File(std::path::PathBuf),
    Memory(Arc<[u8]>),
}

/// Rows a piece gathers from consecutive small row groups: a piece per group cost a tenth
/// of a millisecond each, so a file of 16,000 ten-row groups took seconds.
const PIECE_ROWS: u64 = 1 << 16;

/// Projected bytes of row group `group` in memory as its footer tells them: its inflated
/// sizes plus a decoded value per row and column (checked again from the pages).
fn group_bytes(meta: &FileMetadataRef, group: usize, names: &[String]) -> u64 {
    let rows = meta.row_groups[group].num_rows() as u64;
    let mut inflated = rows.saturating_mul(pages::VALUE_BYTES * names.len() as u64);
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

/// A footer without row groups, from which each piece's own footer is made: cloning the
/// whole footer for every group made reading a file cost the square of its row groups.
/// The key-value metadata is left out: its Arrow schema would have polars decode a
/// dictionary-encoded column value by value (a 60 KB value on 200,000 rows took 12 GB),
/// where the Parquet types alone give text columns that share the dictionary's bytes.
fn template(meta: &FileMetadataRef) -> FileMetadata {
    FileMetadata {
        version: meta.version,
        num_rows: 0,
        max_row_group_height: 0,
        created_by: meta.created_by.clone(),
        row_groups: Vec::new(),
        key_value_metadata: None,
        schema_descr: meta.schema_descr.clone(),
        column_orders: meta.column_orders.clone(),
        footer_buf: meta.footer_buf.clone(),
    }
}

/// Consecutive row groups gathered into pieces of about [`PIECE_ROWS`] rows (a large group
/// is a piece of its own), each within `max_chunk` by its footer.
fn cut(meta: &FileMetadataRef, names: &[String], max_chunk: u64) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let (mut start, mut rows, mut bytes) = (0, 0u64, 0u64);
    for group in 0..meta.row_groups.len() {
        let (r, b) = (
            meta.row_groups[group].num_rows() as u64,
            group_bytes(meta, group, names),
        );
        if group > start && (rows + r > PIECE_ROWS || bytes.saturating_add(b) > max_chunk / 4) {
            pieces.push(start..group);
            (start, rows, bytes) = (group, 0, 0);
        }
        rows += r;
        bytes = bytes.saturating_add(b);
    }
    if start < meta.row_groups.len() {
        pieces.push(start..meta.row_groups.len());
    }
    pieces
}

/// A file opened for reading, shared by its pieces.
struct File {
    bytes: Bytes,
    meta: FileMetadataRef,
    template: FileMetadata,
    /// The columns read (the mapped ones, or all of them for `convert`).
    names: Vec<String>,
    path: String,
    limits: InputLimits,
    /// Rows before each group.
    starts: Vec<u64>,
}

impl File {
    fn new(
        bytes: Bytes,
        meta: FileMetadataRef,
        names: Vec<String>,
        path: &str,
        limits: InputLimits,
    ) -> File {
        let starts = (meta.row_groups.iter())
            .scan(0u64, |before, g| {
                let start = *before;
                *before += g.num_rows() as u64;
                Some(start)
            })
            .collect();
        File {
            template: template(&meta),
            bytes,
            meta,
            names,
            path: path.to_string(),
            limits,
            starts,
        }
    }

    /// Decodes `groups`: their pages audited first, their text measured after.
    fn read(&self, groups: Range<usize>) -> Result<DataFrame, IngestError> {
        let path = &self.path;
        let audited = match &self.bytes {
            Bytes::File(p) => {
                let f = std::fs::File::open(p).map_err(|e| corrupt(path, "Parquet", e))?;
                self.audit(&mut BufReader::new(f), groups.clone())
            }
            Bytes::Memory(m) => {
                self.audit(&mut BufReader::new(Cursor::new(m.clone())), groups.clone())
            }
        }?;
        if audited > self.limits.chunk_bytes() {
            return Err(self
                .limits
                .over_chunk(path, &self.what(&groups, "mapped columns, decoded,")));
        }
        let mut df = self
            .decode(groups.clone())
            .map_err(|e| corrupt(path, "Parquet", e))?;
        // One array per column rather than one per row group: the steps after this one
        // work array by array.
        if groups.len() > 1 {
            df.rechunk_mut();
        }
        self.check_text(&df, &groups)?;
        Ok(df)
    }

    /// "row group 3's …" or "row groups 3 to 9's …".
    fn what(&self, groups: &Range<usize>, what: &str) -> String {
        match groups.len() {
            1 => format!("row group {}'s {what}", groups.start + 1),
            _ => format!("row groups {} to {}'s {what}", groups.start + 1, groups.end),
        }
    }

    /// What the groups' pages hold once decoded, from their headers.
    fn audit<R: std::io::Read + std::io::Seek>(
        &self,
        src: &mut BufReader<R>,
        groups: Range<usize>,
    ) -> Result<u64, IngestError> {
        let (budget, field) = (self.limits.chunk_bytes(), self.limits.field_bytes());
        let mut total = 0u64;
        for group in groups {
            let left = budget.saturating_sub(total);
            let found = pages::group_decoded(src, &self.meta, group, &self.names, left, field);
            total = total.saturating_add(found.map_err(|r| self.refused(r, group))?);
            if total > budget {
                break;
            }
        }
        Ok(total)
    }

    fn refused(&self, refusal: pages::Refusal, group: usize) -> IngestError {
        match refusal {
            pages::Refusal::Corrupt(detail) => corrupt(
                &self.path,
                "Parquet",
                format!("row group {}: {detail}", group + 1),
            ),
            pages::Refusal::LongValue {
                column,
                bytes,
                values,
            } => {
                let at = || format!(" on average (row group {}, column `{column}`)", group + 1);
                let mean = bytes.div_ceil(values.max(1));
                match self.limits.check_field(&self.path, mean as usize, at) {
                    Err(e) => e,
                    Ok(()) => corrupt(&self.path, "Parquet", "a text page longer than its values"),
                }
            }
        }
    }

    /// Reads `groups` alone: the reader is given a footer that lists only them (a row slice
    /// would make polars walk every group before them).
    fn decode(&self, groups: Range<usize>) -> PolarsResult<DataFrame> {
        fn finish<R: polars::io::mmap::MmapBytesReader>(
            mut reader: ParquetReader<R>,
            meta: FileMetadata,
            names: &[String],
        ) -> PolarsResult<DataFrame> {
            reader.set_metadata(Arc::new(meta));
            reader
                .with_columns(Some(names.to_vec()))
                .read_parallel(ParallelStrategy::None)
                .finish()
        }
        let mut meta = self.template.clone();
        for rg in &self.meta.row_groups[groups] {
            meta.num_rows += rg.num_rows();
            meta.max_row_group_height = meta.max_row_group_height.max(rg.num_rows());
            meta.row_groups.push(rg.clone());
        }
        match &self.bytes {
            Bytes::File(p) => {
                let f = std::fs::File::open(p)
                    .map_err(|e| polars_err!(ComputeError: "{}: {e}", self.path))?;
                finish(ParquetReader::new(f), meta, &self.names)
            }
            Bytes::Memory(m) => finish(
                ParquetReader::new(Cursor::new(m.clone())),
                meta,
                &self.names,
            ),
        }
    }

    /// The decoded text: every value within `max_field_kb` (a dictionary lets one long value
    /// repeat on every row for a few bytes of file), and all of it, as the steps after this
    /// one copy it, within `max_chunk_mb`.
    fn check_text(&self, df: &DataFrame, groups: &Range<usize>) -> Result<(), IngestError> {
        let mut total = 0u64;
        for column in df.columns() {
            let series = column.as_materialized_series();
            let arrays: Vec<Lengths> = match series.dtype() {
                DataType::String => (series.str().expect("text").downcast_iter())
                    .map(|a| Lengths::of(a.views().iter().map(|v| v.length)))
                    .collect(),
                DataType::Binary => (series.binary().expect("bytes").downcast_iter())
                    .map(|a| Lengths::of(a.views().iter().map(|v| v.length)))
                    .collect(),
                _ => continue,
            };
            let mut offset = self.starts[groups.start];
            for a in arrays {
                total = total.saturating_add(a.bytes);
                let (row, name) = (offset + a.longest_at as u64 + 1, column.name());
                self.limits
                    .check_field(&self.path, a.longest as usize, || {
                        format!(" (row {row}, column `{name}`)")
                    })?;
                offset += a.values as u64;
            }
        }
        if total > self.limits.chunk_bytes() {
            return Err(self
                .limits
                .over_chunk(&self.path, &self.what(groups, "text, decoded,")));
        }
        Ok(())
    }
}

/// The lengths of one array's text values.
struct Lengths {
    values: usize,
    /// Where the longest is, and its length.
    longest_at: usize,
    longest: u32,
    /// All of them together.
    bytes: u64,
}

impl Lengths {
    fn of(lengths: impl Iterator<Item = u32>) -> Lengths {
        let mut m = Lengths {
            values: 0,
            longest_at: 0,
            longest: 0,
            bytes: 0,
        };
        for (i, len) in lengths.enumerate() {
            m.values += 1;
            m.bytes += u64::from(len);
            if len > m.longest {
                (m.longest_at, m.longest) = (i, len);
            }
        }
        m
    }
}

/// The footer of a file and its column names.
fn footer(bytes: &Bytes, path: &str) -> Result<(Vec<String>, FileMetadataRef), IngestError> {
    fn of<R: polars::io::mmap::MmapBytesReader>(
        mut reader: ParquetReader<R>,
    ) -> PolarsResult<(Vec<String>, FileMetadataRef)> {
        let names = reader
            .schema()?
            .iter_names()
            .map(|n| n.to_string())
            .collect();
        Ok((names, reader.get_metadata()?.clone()))
    }
    match bytes {
        Bytes::File(p) => {
            let file = std::fs::File::open(p).map_err(|e| corrupt(path, "Parquet", e))?;
            of(ParquetReader::new(file))
        }
        Bytes::Memory(m) => of(ParquetReader::new(Cursor::new(m.clone()))),
    }
    .map_err(|e| corrupt(path, "Parquet", e))
}

/// Rows, and the inflated size of the columns `names` by the footer (checked again from the
/// pages as each piece is read).
fn check_footer(
    meta: &FileMetadataRef,
    names: &[String],
    path: &str,
    limits: &InputLimits,
) -> Result<(), IngestError> {
    limits.check_rows(path, meta.num_rows as u64, None)?;
    if meta.num_rows == 0 {
        return Err(IngestError::HeaderOnly { path: path.into() });
    }
    let mut total = 0u64;
    for group in 0..meta.row_groups.len() {
        let size = group_bytes(meta, group, names);
        limits.check_chunk(
            path,
            size,
            &format!("row group {}'s mapped columns", group + 1),
        )?;
        total = total.saturating_add(size);
    }
    limits.check_bytes(path, total)
}

/// Opens a Parquet file for streaming, a few row groups per piece. The footer is checked
/// against the limits first: a few hundred KB can declare tens of millions of rows.
pub(crate) fn open(
    bytes: Bytes,
    path: &str,
    opts: &ReadOptions,
    info: impl Fn(&super::Resolved) -> super::SourceInfo,
) -> Result<super::Stream, IngestError> {
    let (headers, meta) = footer(&bytes, path)?;
    opts.limits
        .check_columns(path, headers.len() as u64, None)?;
    let resolved = super::map_columns(opts, &headers, path)?;
    let mut names: Vec<String> = resolved.found.values().map(|(_, h)| h.clone()).collect();
    names.sort();
    names.dedup();
    check_footer(&meta, &names, path, &opts.limits)?;
    let roles: Vec<(Role, String)> = (resolved.found.iter())
        .map(|(r, (_, h))| (*r, h.clone()))
        .collect();
    let source = info(&resolved);
    let pieces = cut(&meta, &names, opts.limits.chunk_bytes());
    let file = Arc::new(File::new(bytes, meta, names, path, opts.limits));
    let pieces = pieces.into_iter().map(move |groups| {
        let (file, roles) = (file.clone(), roles.clone());
        Ok(Box::new(move || {
            let df = file.read(groups)?;
            let columns = (roles.iter())
                .map(|(role, header)| {
                    df.column(header)
                        .map(|c| (*role, c.as_materialized_series().clone()))
                        .map_err(|e| corrupt(&file.path, "Parquet", e))
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

/// Every column, for `convert`: the whole file as one piece, within `max_chunk_mb`.
pub(crate) fn read_all(
    raw: &[u8],
    path: &str,
    opts: &ReadOptions,
) -> Result<(DataFrame, super::Resolved), IngestError> {
    let bytes = Bytes::Memory(Arc::from(raw));
    let (headers, meta) = footer(&bytes, path)?;
    opts.limits
        .check_columns(path, headers.len() as u64, None)?;
    let resolved = super::map_columns(opts, &headers, path)?;
    check_footer(&meta, &headers, path, &opts.limits)?;
    let inflated = (0..meta.row_groups.len())
        .map(|g| group_bytes(&meta, g, &headers))
        .fold(0u64, u64::saturating_add);
    opts.limits
        .check_chunk(path, inflated, "the file's columns (read whole)")?;
    let groups = 0..meta.row_groups.len();
    let df = File::new(bytes, meta, headers, path, opts.limits).read(groups)?;
    Ok((df, resolved))
}
