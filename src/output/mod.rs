//! Outputs of a segmentation: what is printed (table, JSON, CSV) and the files written to
//! `--out DIR` (clusters.json beside the report files), all written whole or not at all.

mod atomic;
pub mod csv_cell;
mod document;
pub mod table;

use std::path::Path;

use anyhow::{Context, Result};

pub use atomic::{AtomicDir, keep_files_private, write_file, write_files};
pub use csv_cell::CsvWriter;
pub use document::{ClustersDocument, SCHEMA_VERSION};

use crate::pipeline::SegmentRun;
use crate::settings::OutputFormat;

/// The text printed on stdout.
pub fn render(run: &SegmentRun, format: OutputFormat) -> Result<String> {
    Ok(match format {
        OutputFormat::Table => table::render(run),
        OutputFormat::Json => serde_json::to_string_pretty(&ClustersDocument::new(run))? + "\n",
        OutputFormat::Csv => table::clusters_csv(run)?,
    })
}

/// Writes clusters.json and `files` (relative paths, subfolders allowed) to `dir` (created
/// if missing). All are staged under temporary names and renamed into place only when every
/// one is complete.
pub fn write_dir(run: &SegmentRun, dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let doc = serde_json::to_vec_pretty(&ClustersDocument::new(run))?;
    let mut all: Vec<(&str, &[u8])> = vec![("clusters.json", &doc)];
    all.extend(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    write_files(dir, &all).with_context(|| format!("cannot write results to {}", dir.display()))?;
    prune_segment_files(dir, files)
}

/// `segments/` holds exactly this run's files: segment CSVs an earlier run into the same
/// folder left behind (other names or more clusters) are removed, so an email tool that
/// imports the folder never gets a stale list.
fn prune_segment_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let written: std::collections::HashSet<&str> = files
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("segments/"))
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    let folder = dir.join("segments");
    for entry in
        std::fs::read_dir(&folder).with_context(|| format!("cannot read {}", folder.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".csv") && !written.contains(name.as_str()) && entry.path().is_file() {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove the stale {}", entry.path().display()))?;
        }
    }
    Ok(())
}
