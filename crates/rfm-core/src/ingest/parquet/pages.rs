//! A row group's pages, audited before polars decodes them. polars sizes its buffers by
//! each page header's `uncompressed_page_size` and `num_values` (up to 2 GiB and 2³¹ each,
//! zero-filled or reserved before a byte is decoded), so a few bytes of header could make it
//! allocate gigabytes. The headers are read here (the page data is skipped), checked against
//! the column chunk and the row group, and what decoding them holds is added up for the
//! reader's memory budget.

use std::io::{BufReader, Read, Seek};

use polars::io::parquet::metadata::FileMetadataRef;
use polars_parquet::parquet::schema::types::PhysicalType;
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::{PageHeader, PageType};

/// Largest page header read (a header carries statistics, never the data).
const MAX_HEADER: usize = 1 << 20;

/// Bytes a decoded value takes besides its page's bytes: a number, or a string's view.
pub const VALUE_BYTES: u64 = 16;

/// Why a row group's pages are refused.
#[derive(Debug)]
pub enum Refusal {
    /// A header contradicts the file: a size or count it cannot hold.
    Corrupt(String),
    /// A text page holds more bytes per value than `max_field_kb` allows: at least one of
    /// its values is longer (refused before it is inflated; a dictionary would repeat it).
    LongValue {
        column: String,
        bytes: u64,
        values: u64,
    },
}

/// Bytes of a text value's length prefix in a page, and slack for a page's levels.
const PREFIX: u64 = 4;
const LEVELS: u64 = 1 << 10;

/// What the projected columns of one row group hold once decoded, from their page headers:
/// every page's inflated bytes and a value slot for every value a page declares.
pub fn group_decoded<R: Read + Seek>(
    src: &mut BufReader<R>,
    meta: &FileMetadataRef,
    group: usize,
    names: &[String],
    budget: u64,
    field: u64,
) -> Result<u64, Refusal> {
    let rg = &meta.row_groups[group];
    let rows = rg.num_rows() as u64;
    let mut decoded = 0u64;
    for name in names {
        for column in rg.columns_under_root_iter(name).into_iter().flatten() {
            let flat = column.descriptor().descriptor.max_rep_level == 0;
            let values = u64::try_from(column.num_values()).map_err(|_| {
                Refusal::Corrupt(format!(
                    "column `{name}` declares a negative number of values"
                ))
            })?;
            if flat && values > rows {
                return Err(Refusal::Corrupt(format!(
                    "column `{name}` declares {values} values in a row group of {rows} rows"
                )));
            }
            let text = column.physical_type() == PhysicalType::ByteArray;
            let chunk = Chunk {
                range: column.byte_range(),
                values,
                budget: budget.saturating_sub(decoded),
                field: text.then_some(field),
                name,
            };
            decoded = decoded.saturating_add(chunk.decoded(src)?);
        }
    }
    Ok(decoded)
}

/// One column chunk of the file.
struct Chunk<'a> {
    range: std::ops::Range<u64>,
    values: u64,
    budget: u64,
    /// The field limit, for a text column.
    field: Option<u64>,
    name: &'a str,
}

impl Chunk<'_> {
    fn bad(&self, what: String) -> Refusal {
        Refusal::Corrupt(format!("column `{}`: {what}", self.name))
    }

    /// Its pages' decoded bytes, header by header (stops counting past the budget).
    fn decoded<R: Read + Seek>(&self, src: &mut BufReader<R>) -> Result<u64, Refusal> {
        let io = |e: std::io::Error| self.bad(e.to_string());
        // Relative seeks keep the buffer when the chunk is near (small row groups are).
        let here = src.stream_position().map_err(io)?;
        src.seek_relative(self.range.start as i64 - here as i64)
            .map_err(io)?;
        let (mut seen, mut decoded, mut pos) = (0u64, 0u64, self.range.start);
        while seen < self.values && pos < self.range.end {
            let header = {
                let mut prot = TCompactInputProtocol::new(&mut *src, MAX_HEADER);
                PageHeader::read_from_in_protocol(&mut prot).map_err(|e| {
                    self.bad(format!("a page header at byte {pos} cannot be read: {e}"))
                })?
            };
            pos = src.stream_position().map_err(io)?;
            let (compressed, values, inflated) = self.page(&header, pos)?;
            if header.type_ != PageType::DICTIONARY_PAGE {
                seen = seen.saturating_add(values);
                if seen > self.values {
                    let total = self.values;
                    return Err(self.bad(format!(
                        "its pages declare more than the chunk's {total} values"
                    )));
                }
            }
            decoded = decoded
                .saturating_add(inflated)
                .saturating_add(values.saturating_mul(VALUE_BYTES));
            if decoded > self.budget {
                return Ok(decoded);
            }
            src.seek_relative(compressed as i64).map_err(io)?;
            pos += compressed;
        }
        Ok(decoded)
    }

    /// One page's (compressed size, values, inflated size), checked.
    fn page(&self, header: &PageHeader, pos: u64) -> Result<(u64, u64, u64), Refusal> {
        let sizes = (
            u64::try_from(header.compressed_page_size),
            u64::try_from(header.uncompressed_page_size),
        );
        let (Ok(compressed), Ok(inflated)) = sizes else {
            return Err(self.bad(format!("a page at byte {pos} declares a negative size")));
        };
        if pos.saturating_add(compressed) > self.range.end {
            return Err(self.bad(format!(
                "a page at byte {pos} runs past the end of its column chunk"
            )));
        }
        let values = declared_values(header).map_err(|e| self.bad(format!("{e} (byte {pos})")))?;
        // Every dictionary value takes at least one byte of the page.
        if header.type_ == PageType::DICTIONARY_PAGE && values > inflated.max(compressed) {
            return Err(self.bad(format!(
                "a dictionary page declares {values} values in {inflated} bytes"
            )));
        }
        if let Some(field) = self.field
            && header.type_ != PageType::INDEX_PAGE
            && inflated > values.saturating_mul(field + PREFIX).saturating_add(LEVELS)
        {
            return Err(Refusal::LongValue {
                column: self.name.to_string(),
                bytes: inflated,
                values,
            });
        }
        Ok((compressed, values, inflated))
    }
}

/// The values a page header declares (0 for an index page).
fn declared_values(header: &PageHeader) -> Result<u64, &'static str> {
    let n = match header.type_ {
        PageType::DATA_PAGE => header.data_page_header.as_ref().map(|h| h.num_values),
        PageType::DATA_PAGE_V2 => header.data_page_header_v2.as_ref().map(|h| h.num_values),
        PageType::DICTIONARY_PAGE => header.dictionary_page_header.as_ref().map(|h| h.num_values),
        PageType::INDEX_PAGE => Some(0),
        _ => return Err("a page of an unknown type"),
    };
    let n = n.ok_or("a page header without its type's header")?;
    u64::try_from(n).map_err(|_| "a page declares a negative number of values")
}
