//! Delimited text input (CSV, TSV, whitespace-aligned; gzip; UTF-8 or Latin-1), streamed:
//! the reader cuts the text into blocks of whole records and worker threads parse each block
//! with polars. `convert` still reads a file whole ([`prepare`]).

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

use polars::prelude::*;

use super::columns::Role;
use super::text::{self, Layout};
use super::{IngestError, ReadOptions, corrupt};

mod whole;

use whole::*;
pub(crate) use whole::{Prepared, checked_frame, prepare};

/// Text read at a time; a block ends at the last whole record in it.
const BLOCK: usize = 8 << 20;

/// The first block is small: the layout, header and date format are worked out from it
/// before the workers start, so that work waits on as little as possible.
const FIRST_BLOCK: usize = 1 << 20;

/// Raw text in blocks of whole records, counting what comes out against `max_input_mb`.
struct Blocks {
    reader: Box<dyn Read + Send>,
    carry: Vec<u8>,
    eof: bool,
    /// Double quotes group fields (and the line breaks inside them).
    quoting: bool,
    total: u64,
    path: String,
    limits: super::InputLimits,
}

impl Blocks {
    /// Reads until `want` bytes are held or the input ends.
    fn fill(&mut self, want: usize) -> Result<(), IngestError> {
        while self.carry.len() < want && !self.eof {
            let len = self.carry.len();
            self.carry.resize(want.max(len + 4096), 0);
            let n = loop {
                match self.reader.read(&mut self.carry[len..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.carry.truncate(len);
                        return Err(corrupt(&self.path, "CSV", e));
                    }
                }
            };
            self.carry.truncate(len + n);
            self.eof = n == 0;
            self.total += n as u64;
            self.limits.check_bytes(&self.path, self.total)?;
        }
        Ok(())
    }

    /// The next block of whole records (about `want` bytes), or `None` at the end.
    fn next_block(&mut self, mut want: usize) -> Result<Option<Vec<u8>>, IngestError> {
        loop {
            self.fill(want)?;
            if self.carry.is_empty() {
                return Ok(None);
            }
            let cut = if self.eof {
                Some(self.carry.len())
            } else {
                last_record_end(&self.carry, self.quoting)
            };
            if let Some(cut) = cut {
                let rest = self.carry[cut..].to_vec();
                let mut block = std::mem::replace(&mut self.carry, rest);
                block.truncate(cut);
                return Ok(Some(block));
            }
            // One record longer than the block: it may grow to a full row of full fields.
            let most = self
                .limits
                .field_bytes()
                .saturating_mul(self.limits.max_columns);
            if self.carry.len() as u64 > most {
                return Err(IngestError::Limit {
                    path: self.path.clone(),
                    detail: format!(
                        "a record of more than {} bytes with no line break outside quotes, over the limit of {} KiB per field",
                        self.carry.len(),
                        self.limits.max_field_kb
                    ),
                    setting: "max_field_kb",
                });
            }
            want = self.carry.len() + BLOCK;
        }
    }
}

/// Just past the last line break that is outside double quotes (`None` if there is none).
/// Blocks start outside quotes, so the quote parity is known from the block's start.
fn last_record_end(text: &[u8], quoting: bool) -> Option<usize> {
    if !quoting || memchr::memchr(b'"', text).is_none() {
        return memchr::memrchr(b'\n', text).map(|i| i + 1);
    }
    let mut quoted = false;
    let mut end = None;
    for i in memchr::memchr2_iter(b'"', b'\n', text) {
        if text[i] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            end = Some(i + 1);
        }
    }
    end
}

/// Turns raw blocks into UTF-8, deciding the encoding as the text goes: in `auto` mode text
/// stays UTF-8 until a block is not, then it is Latin-1 from there on (identical for the
/// ASCII read before). Had non-ASCII UTF-8 already been read, the pass must start again.
struct Decoder {
    mode: text::Encoding,
    latin1: bool,
    non_ascii_seen: bool,
    first: bool,
    bytes_before: u64,
    lines_before: u64,
    path: String,
}

impl Decoder {
    fn decode(&mut self, raw: Vec<u8>) -> Result<Vec<u8>, IngestError> {
        let mut raw = raw;
        if std::mem::take(&mut self.first) && raw.starts_with(b"\xEF\xBB\xBF") {
            raw.drain(..3);
            self.bytes_before += 3;
        }
        let lines = memchr::memchr_iter(b'\n', &raw).count() as u64;
        let raw_len = raw.len() as u64;
        let single_byte = self.latin1 || self.mode.is_single_byte();
        let out = match (single_byte, std::str::from_utf8(&raw)) {
            (true, _) => text::single_byte_to_utf8(&raw, self.mode),
            (false, Ok(_)) => {
                self.non_ascii_seen |= !raw.is_ascii();
                raw
            }
            (false, Err(e)) if self.mode == text::Encoding::Utf8 => {
                let offset = e.valid_up_to();
                let line = raw[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
                return Err(IngestError::Encoding {
                    path: self.path.clone(),
                    offset: (self.bytes_before + offset as u64) as usize,
                    line: (self.lines_before + line + 1) as usize,
                });
            }
            (false, Err(_)) if self.non_ascii_seen => {
                return Err(IngestError::Reencode {
                    path: self.path.clone(),
                });
            }
            (false, Err(_)) => {
                self.latin1 = true;
                text::single_byte_to_utf8(&raw, self.mode)
            }
        };
        self.bytes_before += raw_len;
        self.lines_before += lines;
        Ok(out)
    }

    fn name(&self) -> &'static str {
        match self.mode {
            text::Encoding::Windows1252 => "windows-1252",
            text::Encoding::Latin1 => "latin-1",
            _ if self.latin1 => "latin-1",
            _ => "utf-8",
        }
    }
}

/// How every block is parsed: shared by the worker threads.
struct BlockPlan {
    path: String,
    delim: u8,
    quote: Option<u8>,
    layout: Layout,
    /// Column spans of a whitespace-aligned layout.
    spans: Vec<(usize, usize)>,
    /// The header line as written, put in front of every block after the first.
    header_line: Vec<u8>,
    headers: Vec<String>,
    wanted: Vec<(Role, usize)>,
    projection: Vec<usize>,
    numeric: Vec<String>,
    limits: super::InputLimits,
}

impl BlockPlan {
    /// Parses one block; `first_line` is its first line in the file (1 = the header).
    fn parse(&self, text: Vec<u8>, first_line: u64) -> Result<super::Chunk, IngestError> {
        let first = first_line == 1;
        let mut text = text;
        if !first {
            let mut with_header = Vec::with_capacity(self.header_line.len() + text.len());
            with_header.extend_from_slice(&self.header_line);
            with_header.extend_from_slice(&text);
            text = with_header;
        }
        // Local line L (1 = header) is line L + shift of the file.
        let shift = if first { 0 } else { first_line as i64 - 2 };
        if let Layout::WhitespaceSplit | Layout::FixedWidth = self.layout {
            text = text::to_tab_separated_with(&text, self.layout, &self.spans);
        }
        check_fields(
            &text,
            self.delim,
            self.quote,
            &self.headers,
            &self.path,
            &self.limits,
            shift,
        )?;
        let p = Prepared {
            text: Cow::Owned(text),
            delim: self.delim,
            quote: self.quote,
            headers: self.headers.clone(),
        };
        let (df, rows) =
            match checked_frame(&p, Some(self.projection.clone()), &self.numeric, &self.path) {
                Err(IngestError::Ragged {
                    path,
                    row,
                    line,
                    got,
                    expected,
                }) => {
                    return Err(IngestError::Ragged {
                        path,
                        row,
                        line: (line as i64 + shift) as usize,
                        got,
                        expected,
                    });
                }
                Err(IngestError::HeaderOnly { .. }) => (DataFrame::empty(), 0),
                other => other?,
            };
        if rows == 0 {
            return Ok(super::Chunk::default());
        }
        let cols = df.columns();
        let columns = self
            .wanted
            .iter()
            .map(|(role, idx)| {
                let pos = self
                    .projection
                    .iter()
                    .position(|p| p == idx)
                    .expect("projected");
                (*role, cols[pos].as_materialized_series().clone())
            })
            .collect();
        Ok(super::Chunk::from_columns(rows, columns))
    }
}

/// Opens a text input for streaming: gzip by its magic number, then the first block is
/// sniffed for the layout and the header.
pub(crate) fn open(
    reader: Box<dyn Read + Send>,
    path: &str,
    opts: &ReadOptions,
    info: impl Fn(&super::Resolved) -> super::SourceInfo,
) -> Result<super::Stream, IngestError> {
    let mut blocks = Blocks {
        reader: ungzipped(reader, path)?,
        carry: Vec::new(),
        eof: false,
        quoting: true,
        total: 0,
        path: path.to_string(),
        limits: opts.limits,
    };
    blocks.fill(FIRST_BLOCK)?;
    let peek = blocks
        .carry
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&blocks.carry);
    if peek.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(IngestError::Empty { path: path.into() });
    }
    let header_raw = text::first_line(peek);
    opts.limits
        .check_field(path, header_raw.len(), || " (the header line)".into())?;
    let plan = plan(peek, path, opts)?;
    blocks.quoting = plan.quote.is_some();
    let resolved = super::map_columns(opts, &plan.headers, path)?;
    let plan = Arc::new(plan.mapped(&resolved));
    let mut decoder = Decoder {
        mode: opts.encoding,
        latin1: false,
        non_ascii_seen: false,
        first: true,
        bytes_before: 0,
        lines_before: 0,
        path: path.to_string(),
    };
    let initial_encoding = decoder.name();
    let mut source = info(&resolved);
    source.delimiter = Some(plan.layout.describe());
    // The encoding is known for sure only at the end; the first block's verdict is recorded.
    let mut first_block = Some(blocks.next_block(FIRST_BLOCK));
    let encoding = std::sync::Arc::new(std::sync::Mutex::new("utf-8"));
    let shared_encoding = encoding.clone();
    let pieces = std::iter::from_fn(move || {
        let block = match first_block.take() {
            Some(b) => b,
            None => blocks.next_block(BLOCK),
        };
        let raw = match block {
            Ok(Some(raw)) => raw,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let first_line = decoder.lines_before + 1;
        let text = match decoder.decode(raw) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        *shared_encoding.lock().expect("encoding") = decoder.name();
        let plan = plan.clone();
        Some(Ok(
            Box::new(move || plan.parse(text, first_line)) as super::Piece
        ))
    });
    source.encoding = Some(initial_encoding.into());
    Ok(super::Stream {
        source,
        pieces: Box::new(pieces),
        encoding: Some(encoding),
    })
}

/// `reader`, decompressed when it starts with gzip's magic number.
fn ungzipped(
    reader: Box<dyn Read + Send>,
    path: &str,
) -> Result<Box<dyn Read + Send>, IngestError> {
    let mut buffered = std::io::BufReader::with_capacity(1 << 16, reader);
    let gzip = std::io::BufRead::fill_buf(&mut buffered)
        .map_err(|e| corrupt(path, "CSV", e))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

impl BlockPlan {
    /// The plan with the mapped columns to read: which, in file order, and which are numbers.
    fn mapped(self, resolved: &super::Resolved) -> BlockPlan {
        let mut wanted: Vec<(Role, usize)> =
            resolved.found.iter().map(|(r, (i, _))| (*r, *i)).collect();
        wanted.sort_by_key(|(_, idx)| *idx);
        let mut projection: Vec<usize> = wanted.iter().map(|(_, i)| *i).collect();
        projection.dedup();
        let numeric = [Role::Quantity, Role::Price, Role::Amount]
            .iter()
            .filter_map(|r| resolved.header(*r).map(str::to_string))
            .collect();
        BlockPlan {
            wanted,
            projection,
            numeric,
            ..self
        }
    }
}

/// Layout, quoting and header from the first block.
fn plan(peek: &[u8], path: &str, opts: &ReadOptions) -> Result<BlockPlan, IngestError> {
    let layout = match opts.delimiter {
        Some(b' ') => match text::sniff_layout(peek, path)? {
            Layout::Delimited(_) => Layout::WhitespaceSplit,
            other => other,
        },
        Some(d) => Layout::Delimited(d),
        None => text::sniff_layout(peek, path)?,
    };
    let header_line = text::first_line_with_break(peek);
    let header_text = match (opts.encoding, std::str::from_utf8(&header_line)) {
        (text::Encoding::Latin1 | text::Encoding::Windows1252, _) | (_, Err(_)) => {
            text::single_byte_to_utf8(&header_line, opts.encoding)
        }
        _ => header_line.clone(),
    };
    let (delim, quote, spans, header_tsv) = match layout {
        Layout::Delimited(d) => (d, Some(b'"'), Vec::new(), header_text.clone()),
        other => {
            let spans = text::fixed_width_spans(peek, other);
            let tsv = text::to_tab_separated_with(&header_text, other, &spans);
            (b'\t', None, spans, tsv)
        }
    };
    let headers = text::header_fields(&header_tsv, delim);
    opts.limits
        .check_columns(path, headers.len() as u64, None)?;
    Ok(BlockPlan {
        path: path.to_string(),
        delim,
        quote,
        layout,
        spans,
        header_line: header_text,
        headers,
        wanted: Vec::new(),
        projection: Vec::new(),
        numeric: Vec::new(),
        limits: opts.limits,
    })
}

/// Fields of one block against `max_field_kb`: a cheap bound first (the longest line), the
/// exact quote-aware pass only when a line is over it. `shift` turns the block's lines into
/// the file's.
fn check_fields(
    text: &[u8],
    delim: u8,
    quote: Option<u8>,
    headers: &[String],
    path: &str,
    limits: &super::InputLimits,
    shift: i64,
) -> Result<(), IngestError> {
    let (mut longest, mut start) = (0usize, 0usize);
    for end in memchr::memchr_iter(b'\n', text) {
        longest = longest.max(end - start);
        start = end + 1;
    }
    longest = longest.max(text.len() - start);
    if longest as u64 <= limits.field_bytes() {
        return Ok(());
    }
    let mut reader = records(text, delim, quote);
    let mut record = ::csv::ByteRecord::new();
    while let Ok(true) = reader.read_byte_record(&mut record) {
        let line = record.position().map_or(0, |p| p.line() as i64 + shift);
        for (i, field) in record.iter().enumerate() {
            limits.check_field(path, field.len(), || {
                let name = headers.get(i).map_or("?", String::as_str);
                format!(
                    " (line {line}, column `{}`)",
                    crate::bounded::value(name, crate::bounded::MAX_VALUE)
                )
            })?;
        }
    }
    Ok(())
}
