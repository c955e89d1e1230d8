//! `convert`: rewrites a transactions file as CSV (optionally gzipped or Latin-1), XLSX
//! (date cells, numbers as numbers) or Parquet (typed columns), keeping every column.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use polars::prelude::*;

use crate::output::write_file;
use rfm_core::dates;
use rfm_core::ingest::{self, ReadOptions, Role};

/// Options for the written file.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    pub sheet_name: String,
    pub latin1: bool,
    pub float_ids: bool,
}

/// Converts `input` to `out` (format from the extension); returns the number of rows.
pub fn convert(
    input: &Path,
    read: &ReadOptions,
    out: &Path,
    opts: &ConvertOptions,
) -> Result<usize> {
    let (df, resolved) = ingest::read_all_columns(input, read)?;
    let date_col = resolved.header(Role::Date).map(str::to_string);
    let customer_col = resolved.header(Role::Customer).map(str::to_string);
    let millis = match &date_col {
        Some(name) => {
            let s = df.column(name)?.as_materialized_series();
            Some(dates::parse_column(s, name, None)?.millis)
        }
        None => None,
    };
    let table = Table::new(
        &df,
        date_col.as_deref(),
        customer_col.as_deref(),
        millis,
        opts.float_ids,
    )?;
    let name = out.to_string_lossy().to_ascii_lowercase();
    let bytes = if name.ends_with(".xlsx") {
        table.xlsx(&opts.sheet_name)?
    } else if name.ends_with(".parquet") {
        table.parquet()?
    } else if name.ends_with(".csv") || name.ends_with(".csv.gz") || name.ends_with(".txt") {
        let csv = table.csv(opts.latin1)?;
        if name.ends_with(".gz") {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&csv)?;
            gz.finish()?
        } else {
            csv
        }
    } else {
        bail!(
            "{}: unknown output type; use .csv, .csv.gz, .xlsx or .parquet",
            out.display()
        );
    };
    write_file(out, &bytes)?;
    Ok(table.rows)
}

/// Every column as text, with the date column as milliseconds.
struct Table {
    names: Vec<String>,
    text: Vec<StringChunked>,
    date_index: Option<usize>,
    customer_index: Option<usize>,
    millis: Option<Vec<Option<i64>>>,
    float_ids: bool,
    rows: usize,
}

impl Table {
    fn new(
        df: &DataFrame,
        date_col: Option<&str>,
        customer_col: Option<&str>,
        millis: Option<Vec<Option<i64>>>,
        float_ids: bool,
    ) -> Result<Table> {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        let text = df
            .columns()
            .iter()
            .map(|c| {
                Ok(c.as_materialized_series()
                    .cast(&DataType::String)?
                    .str()?
                    .clone())
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        Ok(Table {
            date_index: date_col.and_then(|d| names.iter().position(|n| n == d)),
            customer_index: customer_col.and_then(|d| names.iter().position(|n| n == d)),
            names,
            text,
            millis,
            float_ids,
            rows: df.height(),
        })
    }

    /// Cell text as written to CSV.
    fn cell(&self, col: usize, row: usize) -> Option<String> {
        if Some(col) == self.date_index {
            let ms = self.millis.as_ref()?[row]?;
            return chrono::DateTime::from_timestamp_millis(ms)
                .map(|d| d.naive_utc().format("%-m/%-d/%Y %-H:%M").to_string());
        }
        let v = self.text[col].get(row)?;
        if Some(col) == self.customer_index && self.float_ids && !v.contains('.') {
            return Some(format!("{v}.0"));
        }
        Some(v.to_string())
    }

    fn csv(&self, latin1: bool) -> Result<Vec<u8>> {
        let mut w = crate::output::CsvWriter::new();
        w.write(&self.names)?;
        let mut record = Vec::with_capacity(self.names.len());
        for row in 0..self.rows {
            record.clear();
            for col in 0..self.names.len() {
                record.push(self.cell(col, row).unwrap_or_default());
            }
            w.write(&record)?;
        }
        let utf8 = w.finish()?;
        if !latin1 {
            return Ok(utf8);
        }
        let text = String::from_utf8(utf8)?;
        Ok(text
            .chars()
            .map(|c| {
                if (c as u32) < 256 {
                    c as u32 as u8
                } else {
                    b'?'
                }
            })
            .collect())
    }

    fn xlsx(&self, sheet: &str) -> Result<Vec<u8>> {
        use rust_xlsxwriter::{Format, Workbook};
        let mut book = Workbook::new();
        let date_format = Format::new().set_num_format("m/d/yyyy h:mm");
        let ws = book.add_worksheet_with_constant_memory()?;
        ws.set_name(sheet)?;
        for (c, name) in self.names.iter().enumerate() {
            ws.write_string(0, c as u16, name)?;
        }
        for row in 0..self.rows {
            let r = row as u32 + 1;
            for col in 0..self.names.len() {
                let c = col as u16;
                if Some(col) == self.date_index {
                    if let Some(Some(ms)) = self.millis.as_ref().map(|m| m[row]) {
                        let serial = ms as f64 / 86_400_000.0 + 25_569.0;
                        ws.write_number_with_format(r, c, serial, &date_format)?;
                    }
                    continue;
                }
                let Some(v) = self.text[col].get(row) else {
                    continue;
                };
                match v.parse::<f64>() {
                    Ok(f) if f.is_finite() && !v.starts_with('0') || v == "0" => {
                        ws.write_number(r, c, f)?;
                    }
                    _ => {
                        ws.write_string(r, c, v)?;
                    }
                }
            }
        }
        book.save_to_buffer().context("cannot build the XLSX file")
    }

    fn parquet(&self) -> Result<Vec<u8>> {
        let mut columns = Vec::with_capacity(self.names.len());
        for (col, name) in self.names.iter().enumerate() {
            let name = PlSmallStr::from(name.as_str());
            let series = if Some(col) == self.date_index {
                Series::new(name, self.millis.clone().unwrap_or_default())
                    .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
            } else {
                let text = self.text[col].clone().with_name(name).into_series();
                let present = text.len() - text.null_count();
                let as_int = text.cast(&DataType::Int64)?;
                let as_float = text.cast(&DataType::Float64)?;
                let is_customer = Some(col) == self.customer_index;
                if as_int.len() - as_int.null_count() == present && !(is_customer && self.float_ids)
                {
                    as_int
                } else if as_float.len() - as_float.null_count() == present {
                    as_float
                } else {
                    text
                }
            };
            columns.push(series.into_column());
        }
        let mut df = DataFrame::new_infer_height(columns)?;
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf).finish(&mut df)?;
        Ok(buf)
    }
}
