//! Integration tests: drive the real `rfm-agent` binary.

mod agent;
mod bad_input;
mod common;
mod formats;
mod options;
mod reference;
