//! rfm-report: everything people read or import: the terminal tables and run folder files
//! ([`output`]), the charts and the HTML and Markdown reports ([`report`]), the migration
//! between two runs ([`compare`]) and file conversion ([`convert`]).

pub mod compare;
pub mod convert;
pub mod output;
pub mod report;
