//! rfm-agent: turns an online shop's transactions into RFM customer segments.
//!
//! The pipeline, one module per stage: [`ingest`] → [`clean`] → [`rfm`] (one streaming
//! pass, [`scan`]) → [`cluster`] → [`output`], driven by [`pipeline`] with settings from
//! [`settings`].

pub mod agent;
pub mod batch;
pub mod bounded;
pub mod clean;
pub mod cli;
pub mod cluster;
pub mod compare;
pub mod convert;
pub mod dates;
pub mod engine;
pub mod ingest;
pub mod intern;
pub mod llm;
pub mod options;
pub mod output;
pub mod pipeline;
pub mod predict;
pub mod progress;
pub mod remedy;
pub mod report;
pub mod rfm;
pub mod run_folder;
pub mod sample;
pub mod scan;
pub mod server;
pub mod settings;
pub mod sysmem;
pub mod templates;
pub mod tls;
