//! Where the data lives: the pass's seam (source + column mapping + cleaning rules →
//! per-customer RFM table + ledger) run by a database instead of the local reader.

mod pgpass;
pub mod postgres;
