//! rfm-agent: turns an online shop's transactions into RFM customer segments and, for each
//! segment, a campaign. This package is the command line ([`cli`] and `main`); the work is
//! done by the workspace's crates, lowest layer first (README, Layout):
//!
//! - `rfm_core`: ingest → clean → rfm → cluster → predict, and the run folder's contract;
//! - `rfm_engines`: the same pass pushed down to PostgreSQL or Spark Connect;
//! - `rfm_llm`: LLM providers, the validated ask, schemas and templates;
//! - `rfm_campaigns`: the rule agent, the LLM writer and its gates, batch copy;
//! - `rfm_report`: tables, charts, reports, exports, comparisons;
//! - `rfm_run`: the settings, the segment pipeline, the agent's run, errors in words;
//! - `rfm_server`: the HTTP service and dashboard.
//!
//! Their modules are re-exported here under one name each, as the tests and scripts use them.

pub mod cli;

pub use rfm_campaigns::{agent, batch};
pub use rfm_core::{
    bounded, clean, cluster, dates, fmt, ingest, intern, options, predict, progress, remedy, rfm,
    run, run_folder, sample, scan, secret, sysmem, tls,
};
pub use rfm_engines as engine;
pub use rfm_llm as llm;
pub use rfm_llm::templates;
pub use rfm_report::{compare, convert, output, report};
pub use rfm_run::{agent_run, pipeline, settings, words};
pub use rfm_server as server;
