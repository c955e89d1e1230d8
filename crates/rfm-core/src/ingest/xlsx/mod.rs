//! XLSX input, streamed cell by cell with calamine; only the mapped columns are kept.

use std::io::Cursor;

use calamine::{DataRef, DataType as _, Reader, Xlsx, open_workbook_from_rs};
use polars::prelude::*;

use super::Resolved;
use super::columns::Role;
use super::limits::{XLSX_MAX_COLUMNS, XLSX_MAX_ROWS};
use super::{IngestError, InputLimits, Mapped, ReadOptions, corrupt};
use crate::progress::Progress;

/// One cell of a mapped column.
#[derive(Debug, Clone)]
enum Cell {
    Empty,
    Num(f64),
    /// A date/time cell, as milliseconds since 1970-01-01.
    Millis(i64),
    Text(String),
}

mod shared;

/// The workbook's parts, inflated, against `max_input_mb` (time: the parts are streamed).
/// The sizes the archive declares are summed; the zip reader refuses to inflate a part past
/// its declared size, so a part that lies about its size cannot get round the check.
fn check_inflated(
    zip: &mut ::zip::ZipArchive<Cursor<&[u8]>>,
    path: &str,
    limits: &InputLimits,
) -> Result<(), IngestError> {
    let mut declared = 0u64;
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(|e| corrupt(path, "XLSX", e))?;
        declared = declared.saturating_add(part.size());
    }
    limits.check_bytes(path, declared)
}

/// What the reader holds, charged against `max_chunk_mb` as it is decoded rather than as a
/// header says: the workbook's bytes, the shared strings calamine keeps, and the mapped
/// cells read so far (a shared string is copied into every cell that refers to it).
struct Held<'a> {
    bytes: u64,
    path: &'a str,
    limits: &'a InputLimits,
    /// Told of nothing, asked whether to stop.
    progress: &'a dyn Progress,
}

/// A mapped cell kept until the sheet ends, and again as it becomes a column.
const CELL_BYTES: u64 = 2 * std::mem::size_of::<Cell>() as u64 + 16;

impl Held<'_> {
    fn charge(&mut self, bytes: u64) -> Result<(), IngestError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.chunk_bytes() {
            return Err(self.limits.over_chunk(
                self.path,
                "the workbook's bytes, its shared strings and the cells read so far",
            ));
        }
        Ok(())
    }
}

/// Charges the shared-strings parts before calamine opens the book (and reads them whole).
fn check_shared_strings(
    zip: &mut ::zip::ZipArchive<Cursor<&[u8]>>,
    held: &mut Held<'_>,
) -> Result<(), IngestError> {
    let budget = held.limits.chunk_bytes().saturating_sub(held.bytes);
    let measure = match shared::measure_book(zip, budget) {
        Ok(m) => m,
        Err(shared::Failure::Xml(e)) => {
            return Err(corrupt(held.path, "XLSX", format!("shared strings: {e}")));
        }
        // Its strings alone pass the budget: a limit, whatever the file declares.
        Err(shared::Failure::OverBudget(m)) => return held.charge(m.least()),
    };
    if measure.overstated() && measure.bytes() > budget {
        return Err(corrupt(
            held.path,
            "XLSX",
            format!(
                "its shared-strings table declares {} strings (uniqueCount) but holds {}; \
                 save the workbook again from a spreadsheet program",
                measure.declared.unwrap_or(0),
                measure.entries
            ),
        ));
    }
    held.charge(measure.bytes())
}

pub(crate) fn read(
    raw: &[u8],
    path: &str,
    opts: &ReadOptions,
    progress: &dyn Progress,
) -> Result<Mapped, IngestError> {
    let mut zip = ::zip::ZipArchive::new(Cursor::new(raw)).map_err(|e| corrupt(path, "XLSX", e))?;
    check_inflated(&mut zip, path, &opts.limits)?;
    let mut held = Held {
        bytes: raw.len() as u64,
        path,
        limits: &opts.limits,
        progress,
    };
    check_shared_strings(&mut zip, &mut held)?;
    drop(zip);
    let mut book: Xlsx<_> =
        open_workbook_from_rs(Cursor::new(raw)).map_err(|e| corrupt(path, "XLSX", e))?;
    let sheet = pick_sheet(&book.sheet_names(), opts, path)?;
    let mut cells = book
        .worksheet_cells_reader(&sheet)
        .map_err(|e| corrupt(path, "XLSX", e))?;
    let (header, pending) = read_header(&mut cells, path, &opts.limits)?;
    let resolved = super::map_columns(opts, &header, path)?;
    let mut rows = Rows::new(&resolved, header.len(), held);
    if let Some(cell) = pending {
        rows.add(cell)?;
    }
    while let Some(cell) = cells.next_cell().map_err(|e| corrupt(path, "XLSX", e))? {
        rows.add(cell)?;
    }
    let (rows, columns) = rows.finish()?;
    Ok(Mapped {
        rows,
        resolved,
        columns,
        sheet: Some(sheet),
    })
}

/// The sheet asked for, or the first.
fn pick_sheet(sheets: &[String], opts: &ReadOptions, path: &str) -> Result<String, IngestError> {
    match &opts.sheet {
        Some(name) => {
            sheets
                .iter()
                .find(|s| *s == name)
                .cloned()
                .ok_or_else(|| IngestError::NoSuchSheet {
                    path: path.into(),
                    name: crate::bounded::value(name, crate::bounded::MAX_VALUE),
                    sheets: crate::bounded::list(sheets),
                })
        }
        None => sheets.first().cloned().ok_or_else(|| IngestError::Sheet {
            path: path.into(),
            detail: "the workbook has no sheets".into(),
        }),
    }
}

type Cells<'a> = calamine::XlsxCellReader<'a, Cursor<&'a [u8]>>;

/// The first row that has any cell is the header; returns it and the next row's first cell.
fn read_header<'a>(
    cells: &mut Cells<'a>,
    path: &str,
    limits: &InputLimits,
) -> Result<(Vec<String>, Option<calamine::Cell<DataRef<'a>>>), IngestError> {
    let mut header: Vec<String> = Vec::new();
    let mut header_row = None;
    while let Some(cell) = cells.next_cell().map_err(|e| corrupt(path, "XLSX", e))? {
        let (row, col) = cell.get_position();
        match header_row {
            None => header_row = Some(row),
            Some(r) if r != row => return Ok((header, Some(cell))),
            _ => {}
        }
        // The column comes from the cell reference: checked before the header grows to it.
        limits.check_columns(path, u64::from(col) + 1, Some(XLSX_MAX_COLUMNS))?;
        let col = col as usize;
        if header.len() <= col {
            header.resize(col + 1, String::new());
        }
        let name = text_of(cell.get_value()).unwrap_or_default();
        limits.check_field(path, name.len(), || {
            format!(" (header, column {})", col + 1)
        })?;
        header[col] = name;
    }
    match header_row {
        None => Err(IngestError::Empty { path: path.into() }),
        Some(_) => Ok((header, None)),
    }
}

/// The mapped columns' cells, row by row (a row's missing cells are empty).
struct Rows<'a> {
    /// Column index → slot of the mapped role (most columns map to nothing).
    by_col: Vec<Option<usize>>,
    roles: Vec<Role>,
    data: Vec<Vec<Cell>>,
    current: Vec<Cell>,
    current_row: Option<u32>,
    rows: usize,
    held: Held<'a>,
}

impl<'a> Rows<'a> {
    fn new(resolved: &Resolved, columns: usize, held: Held<'a>) -> Self {
        let mut by_col: Vec<Option<usize>> = vec![None; columns];
        for (slot, (col, _)) in resolved.found.values().enumerate() {
            by_col[*col] = Some(slot);
        }
        let roles: Vec<Role> = resolved.found.keys().copied().collect();
        Rows {
            by_col,
            data: vec![Vec::new(); roles.len()],
            current: vec![Cell::Empty; roles.len()],
            roles,
            current_row: None,
            rows: 0,
            held,
        }
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        for (slot, cell) in self.current.iter_mut().enumerate() {
            self.data[slot].push(std::mem::replace(cell, Cell::Empty));
        }
        self.held.charge(CELL_BYTES * self.current.len() as u64)
    }

    fn add(&mut self, cell: calamine::Cell<DataRef<'_>>) -> Result<(), IngestError> {
        let (row, col) = cell.get_position();
        if self.current_row != Some(row) {
            // A sheet is one piece: a stop (Ctrl-C) is seen within it, every 64k rows.
            if self.rows.is_multiple_of(1 << 16) {
                (self.held.progress.checkpoint()).map_err(|_| IngestError::Stopped)?;
            }
            if self.current_row.is_some() {
                self.flush()?;
            }
            self.current_row = Some(row);
            self.rows += 1;
            let (path, limits) = (self.held.path, self.held.limits);
            limits.check_rows(path, self.rows as u64, Some(XLSX_MAX_ROWS))?;
        }
        if let Some(&Some(slot)) = self.by_col.get(col as usize) {
            let value = convert(cell.get_value());
            if let Cell::Text(t) = &value {
                let (rows, role) = (self.rows, self.roles[slot].key());
                let (path, limits) = (self.held.path, self.held.limits);
                limits.check_field(path, t.len(), || format!(" (row {rows}, column `{role}`)"))?;
                // Kept in the cell, then copied into the column.
                self.held.charge(2 * t.len() as u64)?;
            }
            self.current[slot] = value;
        }
        Ok(())
    }

    /// The row count and each mapped role's column.
    fn finish(mut self) -> Result<(usize, Vec<(Role, Series)>), IngestError> {
        if self.rows > 0 {
            self.flush()?;
        }
        let columns = (self.roles.iter())
            .zip(self.data)
            .map(|(role, cells)| (*role, to_series(*role, cells)))
            .collect();
        Ok((self.rows, columns))
    }
}

fn text_of(v: &DataRef<'_>) -> Option<String> {
    match v {
        DataRef::String(s) => Some(s.clone()),
        DataRef::SharedString(s) => Some(s.to_string()),
        DataRef::Empty => None,
        other => Some(data_text(other)),
    }
}

/// Text of a cell that is not a plain string or number.
fn data_text(v: &DataRef<'_>) -> String {
    match v {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => f.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) | DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => s.to_string(),
        DataRef::DateTime(d) => d.as_f64().to_string(),
        DataRef::Error(e) => format!("#{e:?}"),
        DataRef::Empty => String::new(),
    }
}

fn convert(v: &DataRef<'_>) -> Cell {
    match v {
        DataRef::Empty => Cell::Empty,
        DataRef::Int(i) => Cell::Num(*i as f64),
        DataRef::Float(f) => Cell::Num(*f),
        DataRef::DateTime(_) => match v.as_datetime() {
            Some(dt) => Cell::Millis(dt.and_utc().timestamp_millis()),
            None => Cell::Text(data_text(v)),
        },
        DataRef::String(s) => Cell::Text(s.clone()),
        DataRef::SharedString(s) => Cell::Text(s.to_string()),
        other => Cell::Text(data_text(other)),
    }
}

fn millis_to_iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn cell_text(cell: Cell) -> Option<String> {
    match cell {
        Cell::Empty => None,
        Cell::Num(f) => Some(number_text(f)),
        Cell::Millis(ms) => Some(millis_to_iso(ms)),
        Cell::Text(s) => Some(s),
    }
}

/// Typed where every cell agrees (numbers, date cells), text otherwise, so that clean can
/// count the cells that do not parse.
fn to_series(role: Role, cells: Vec<Cell>) -> Series {
    let name = PlSmallStr::from_static(role.key());
    let numeric = matches!(role, Role::Quantity | Role::Price | Role::Amount);
    let any_text = cells
        .iter()
        .any(|c| matches!(c, Cell::Text(_)) || (numeric && matches!(c, Cell::Millis(_))));
    match role {
        Role::Date if !any_text => {
            let ms: Vec<Option<i64>> = cells
                .into_iter()
                .map(|c| match c {
                    Cell::Millis(ms) => Some(ms),
                    Cell::Num(serial) => Some(crate::dates::excel_serial_to_millis(serial)),
                    _ => None,
                })
                .collect();
            Series::new(name, ms)
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .expect("i64 casts to datetime")
        }
        Role::Quantity | Role::Price | Role::Amount if !any_text => {
            let v: Vec<Option<f64>> = cells
                .into_iter()
                .map(|c| match c {
                    Cell::Num(f) => Some(f),
                    _ => None,
                })
                .collect();
            Series::new(name, v)
        }
        _ => {
            let v: Vec<Option<String>> = cells.into_iter().map(cell_text).collect();
            Series::new(name, v)
        }
    }
}
