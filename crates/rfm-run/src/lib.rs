//! rfm-run: what both front ends run. [`settings`] composes every crate's own section into
//! the settings file's shape; [`pipeline`] runs a segmentation on this machine or on an
//! engine; [`agent_run`] adds the campaigns; [`words`] says an error to the command line or
//! to the service.

pub mod agent_run;
pub mod pipeline;
pub mod settings;
pub mod words;

#[cfg(test)]
mod flag_free_tests;
