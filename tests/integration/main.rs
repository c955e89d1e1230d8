//! Integration tests: drive the real `rfm-agent` binary.

mod agent;
mod bad_input;
mod batch;
mod browser;
mod clv;
mod common;
mod craft;
mod exports;
mod formats;
mod fuzz;
mod hostile;
mod hostile_readers;
mod hostile_service;
mod llm;
mod llm_server;
mod options;
mod postgres;
mod reference;
mod report;
mod run_folder;
mod server;
mod service;
mod snapshots;
mod spark;
mod streaming;
