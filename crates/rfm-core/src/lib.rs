//! rfm-core: the data's way from a transactions file to customer segments, with nothing of
//! the agent, the reports, the service or the command line.
//!
//! The pipeline, one module per stage: [`ingest`] → [`clean`] → [`rfm`] (one streaming
//! pass, [`scan`]) → [`cluster`] → [`predict`]; [`run`] holds what a run produced and
//! [`run_folder`] the on-disk contract its documents are written and read back by. Errors
//! name a [`remedy::Remedy`] as data; the front ends word it.

pub mod bounded;
pub mod clean;
pub mod cluster;
pub mod dates;
pub mod fmt;
pub mod ingest;
pub mod intern;
pub mod options;
pub mod predict;
pub mod progress;
pub mod remedy;
pub mod rfm;
pub mod run;
pub mod run_folder;
pub mod sample;
pub mod scan;
pub mod secret;
mod serde_text;
pub mod settings;
pub mod sysmem;
pub mod tls;
