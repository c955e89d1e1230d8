//! Input limits: the one place where every reader checks a size taken from a file (bytes
//! after decompression, rows, columns, bytes per field, what is held in memory at once,
//! customers and invoices) before it allocates by it.

use std::io::Read;

use serde::{Deserialize, Serialize};

use super::IngestError;

/// Excel's own sheet size: a workbook that claims more is not one Excel wrote.
pub const XLSX_MAX_ROWS: u64 = 1_048_576;
pub const XLSX_MAX_COLUMNS: u64 = 16_384;

/// `[limits]` in the settings: the same for the command line and the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputLimits {
    /// Bytes read from the input after decompression, in MiB. Streamed formats (CSV, gzip,
    /// Parquet) hold only a piece at a time, so this bounds time rather than memory.
    pub max_input_mb: u64,
    /// What a run may hold in memory, in MiB. The service reserves it for each run and
    /// stops a run that passes it; the default customer and invoice limits are derived from it.
    pub max_memory_mb: u64,
    /// What a reader holds in memory at once, in MiB, counted as it is decoded: an XLSX
    /// workbook (its bytes, shared strings and cells), the Parquet row groups read together,
    /// a file read whole by `convert`.
    pub max_chunk_mb: u64,
    /// Data rows.
    pub max_rows: u64,
    /// Distinct customers, when set (0: no limit of its own). Whatever it says, customers
    /// and the invoices kept for them must fit in what `max_memory_mb` leaves for them, at
    /// [`BYTES_PER_CUSTOMER`] and [`BYTES_PER_INVOICE`] each.
    pub max_customers: u64,
    /// Distinct (customer, invoice) pairs kept to count invoices exactly, when set (0: no
    /// limit of its own).
    pub max_invoices: u64,
    /// Columns in the header (all of them, mapped or not).
    pub max_columns: u64,
    /// Bytes in one field (cell), in KiB.
    pub max_field_kb: u64,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_input_mb: 64 << 10,
            max_memory_mb: 2 << 10,
            max_chunk_mb: 512,
            max_rows: 1_000_000_000,
            max_customers: 0,
            max_invoices: 0,
            max_columns: 1_000,
            max_field_kb: 64,
        }
    }
}

/// What a run holds per customer at its peak, measured on the whole run (pass, clusters,
/// predictions, report; bench/customers.sh): 417 bytes each at 5,000,000 customers and 471
/// at 1,000,000, beyond what a run of a few thousand takes.
pub const BYTES_PER_CUSTOMER: u64 = 512;

/// What one distinct (customer, invoice) pair takes in the set that counts invoices.
pub const BYTES_PER_INVOICE: u64 = 48;

/// What a run holds besides its readers and its customers: the program, its threads, the
/// charts and the report.
pub const BASE_BYTES: u64 = 128 << 20;

impl InputLimits {
    /// What `max_memory_mb` leaves for the per-customer state: the run's memory less a
    /// reader's (`max_chunk_mb`) and the program's own ([`BASE_BYTES`]); 64 MiB at least.
    pub fn state_bytes(&self) -> u64 {
        self.memory_bytes()
            .saturating_sub(self.chunk_bytes())
            .saturating_sub(BASE_BYTES)
            .max(64 << 20)
    }

    /// The most customers a run takes (with no invoices kept): `max_customers` if set and
    /// smaller, else what [`InputLimits::state_bytes`] holds.
    pub fn customers(&self) -> u64 {
        let held = self.state_bytes() / BYTES_PER_CUSTOMER;
        match self.max_customers {
            0 => held,
            n => n.min(held),
        }
    }

    pub fn memory_bytes(&self) -> u64 {
        self.max_memory_mb.saturating_mul(1 << 20)
    }

    pub fn input_bytes(&self) -> u64 {
        self.max_input_mb.saturating_mul(1 << 20)
    }

    pub fn chunk_bytes(&self) -> u64 {
        self.max_chunk_mb.saturating_mul(1 << 20)
    }

    pub fn field_bytes(&self) -> u64 {
        self.max_field_kb.saturating_mul(1 << 10)
    }

    /// Refuses `bytes` of input (a file's size, or what it inflates to) over `max_input_mb`.
    pub fn check_bytes(&self, path: &str, bytes: u64) -> Result<(), IngestError> {
        if bytes > self.input_bytes() {
            return Err(refuse(
                path,
                format!(
                    "the data comes to {} (after decompression), over the limit of {} MiB",
                    mib(bytes),
                    self.max_input_mb
                ),
                "max_input_mb",
            ));
        }
        Ok(())
    }

    /// Refuses `bytes` held in memory at once (`what`, e.g. "the workbook's parts") over
    /// `max_chunk_mb`.
    pub fn check_chunk(&self, path: &str, bytes: u64, what: &str) -> Result<(), IngestError> {
        if bytes > self.chunk_bytes() {
            let detail = format!(
                "{what} come to {} in memory, over the limit of {} MiB",
                mib(bytes),
                self.max_chunk_mb
            );
            return Err(refuse(path, detail, "max_chunk_mb"));
        }
        Ok(())
    }

    /// The refusal once what a reader holds, counted as it is decoded (`what`, e.g. "the
    /// workbook's shared strings"), passes `max_chunk_mb`.
    pub fn over_chunk(&self, path: &str, what: &str) -> IngestError {
        let detail = format!(
            "{what} need more than the {} MiB a reader may hold in memory",
            self.max_chunk_mb
        );
        refuse(path, detail, "max_chunk_mb")
    }

    /// Refuses more distinct customers than `max_customers`, when it is set.
    pub fn check_customers(&self, path: &str, customers: u64) -> Result<(), IngestError> {
        match self.max_customers {
            n if n > 0 && customers > n => {
                let detail = format!("more than {n} distinct customers, the limit");
                Err(refuse(path, detail, "max_customers"))
            }
            _ => Ok(()),
        }
    }

    /// Refuses more distinct (customer, invoice or period) pairs than `max_invoices`, when
    /// it is set.
    pub fn check_invoices(&self, path: &str, invoices: u64) -> Result<(), IngestError> {
        match self.max_invoices {
            n if n > 0 && invoices > n => {
                let detail = format!(
                    "more than {n} distinct invoices, the limit for counting invoices (frequency = lines needs no such memory)"
                );
                Err(refuse(path, detail, "max_invoices"))
            }
            _ => Ok(()),
        }
    }

    /// Refuses a run whose per-customer state (customers, and the invoices and purchase
    /// periods kept for them) would pass what `max_memory_mb` leaves for it.
    pub fn check_state(&self, path: &str, customers: u64, pairs: u64) -> Result<(), IngestError> {
        let need = customers
            .saturating_mul(BYTES_PER_CUSTOMER)
            .saturating_add(pairs.saturating_mul(BYTES_PER_INVOICE));
        if need > self.state_bytes() {
            let detail = format!(
                "{customers} customers and {pairs} invoices or purchase days need more than the \
                 {} MiB a run's memory of {} MiB leaves for them",
                self.state_bytes() >> 20,
                self.max_memory_mb
            );
            return Err(refuse(path, detail, "max_memory_mb"));
        }
        Ok(())
    }

    /// Refuses more than `max_rows` data rows, or more than `cap`, a format's own limit.
    pub fn check_rows(&self, path: &str, rows: u64, cap: Option<u64>) -> Result<(), IngestError> {
        if let Some(cap) = cap.filter(|c| rows > *c) {
            return Err(not_a_sheet(
                path,
                format!("more than {cap} rows, which no sheet holds"),
            ));
        }
        if rows > self.max_rows {
            let detail = format!("more than {} data rows, the limit", self.max_rows);
            return Err(refuse(path, detail, "max_rows"));
        }
        Ok(())
    }

    /// Refuses a header with more than `max_columns` columns, or more than `cap`.
    pub fn check_columns(
        &self,
        path: &str,
        columns: u64,
        cap: Option<u64>,
    ) -> Result<(), IngestError> {
        if let Some(cap) = cap.filter(|c| columns > *c) {
            return Err(not_a_sheet(
                path,
                format!("a cell in column {columns}, beyond the {cap} columns a sheet has"),
            ));
        }
        if columns > self.max_columns {
            let detail = format!("{columns} columns, over the limit of {}", self.max_columns);
            return Err(refuse(path, detail, "max_columns"));
        }
        Ok(())
    }

    /// Refuses a field longer than `max_field_kb`; `at` says where, e.g. " (row 3, column `X`)".
    pub fn check_field(
        &self,
        path: &str,
        len: usize,
        at: impl FnOnce() -> String,
    ) -> Result<(), IngestError> {
        if len as u64 > self.field_bytes() {
            let detail = format!(
                "a field of {len} bytes{}, over the limit of {} KiB",
                at(),
                self.max_field_kb
            );
            return Err(refuse(path, detail, "max_field_kb"));
        }
        Ok(())
    }

    /// Inflates what `open` reads to its end (a file read whole), refusing it once more
    /// than `max_chunk_mb` would come out. Up to [`EAGER_INFLATE`] is kept on the first pass (most files end
    /// there); past it the rest is only counted, into nothing, so that a bomb costs time but
    /// little memory, and a genuine larger file is inflated again into a buffer of exactly
    /// its size.
    pub fn read_capped<R: Read>(
        &self,
        open: impl Fn() -> R,
        path: &str,
        format: &'static str,
    ) -> Result<Vec<u8>, IngestError> {
        let failed = |e: std::io::Error| super::corrupt(path, format, e);
        let limit = self.chunk_bytes().min(self.input_bytes());
        let eager = EAGER_INFLATE.min(limit);
        let mut reader = open();
        let mut out = Vec::new();
        (&mut reader)
            .take(eager.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(failed)?;
        if out.len() as u64 <= eager {
            return Ok(out);
        }
        let kept = out.len() as u64;
        drop(out);
        let rest = limit.saturating_add(1).saturating_sub(kept);
        let total =
            kept + std::io::copy(&mut reader.take(rest), &mut std::io::sink()).map_err(failed)?;
        if total > limit {
            let detail = format!(
                "the data comes to more than {} MiB after decompression, the limit for a file read whole",
                limit >> 20
            );
            let setting = if self.chunk_bytes() <= self.input_bytes() {
                "max_chunk_mb"
            } else {
                "max_input_mb"
            };
            return Err(refuse(path, detail, setting));
        }
        let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        open().take(total).read_to_end(&mut out).map_err(failed)?;
        Ok(out)
    }
}

/// Inflated bytes kept on the first pass.
const EAGER_INFLATE: u64 = 64 << 20;

/// A workbook past Excel's own sheet size: no setting helps, the file is not valid.
fn not_a_sheet(path: &str, detail: String) -> IngestError {
    IngestError::Corrupt {
        path: path.to_string(),
        format: "XLSX",
        detail,
    }
}

fn refuse(path: &str, detail: String, setting: &'static str) -> IngestError {
    IngestError::Limit {
        path: path.to_string(),
        detail,
        setting,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_read_stops_at_the_limit() {
        let limits = InputLimits {
            max_chunk_mb: 1,
            ..InputLimits::default()
        };
        let data = vec![b'x'; 1 << 20];
        let ok = limits.read_capped(|| &data[..], "f", "gzip").unwrap();
        assert_eq!(ok.len(), 1 << 20);
        let err = limits
            .read_capped(|| std::io::repeat(b'x'), "f", "gzip")
            .unwrap_err();
        let remedy = crate::remedy::Remedied::remedy(&err);
        assert_eq!(
            remedy,
            Some(crate::remedy::Remedy::RaiseLimit("max_chunk_mb"))
        );
        assert!(err.to_string().contains("more than 1 MiB"), "{err}");
    }

    #[test]
    fn past_the_eager_part_the_rest_is_counted_then_read_again() {
        let limits = InputLimits {
            max_chunk_mb: 100,
            ..InputLimits::default()
        };
        let size = EAGER_INFLATE + (6 << 20);
        let open = || std::io::Read::take(std::io::repeat(b'y'), size);
        let ok = limits.read_capped(open, "f", "gzip").unwrap();
        assert_eq!(ok.len() as u64, size);
        assert_eq!(ok.capacity() as u64, size, "an exact buffer");
        let err = limits.read_capped(|| std::io::repeat(b'y'), "f", "gzip");
        assert!(err.unwrap_err().to_string().contains("more than 100 MiB"));
    }

    #[test]
    fn format_caps_apply_below_the_setting() {
        let limits = InputLimits {
            max_rows: u64::MAX,
            ..InputLimits::default()
        };
        let err = limits
            .check_rows("f", XLSX_MAX_ROWS + 1, Some(XLSX_MAX_ROWS))
            .unwrap_err();
        assert!(err.to_string().contains("which no sheet holds"), "{err}");
        assert!(
            limits
                .check_rows("f", XLSX_MAX_ROWS, Some(XLSX_MAX_ROWS))
                .is_ok()
        );
    }
}
