//! Outputs of a segmentation: what is printed (table, JSON, CSV) and the files written to
//! `--out DIR` (clusters.json beside the report files), all written whole or not at all.

mod atomic;
pub mod batch;
pub mod campaigns;
pub mod clv;
pub mod csv_cell;
mod settings;
pub mod table;

use std::path::Path;

use anyhow::{Context, Result};

pub use atomic::{AtomicDir, Writer, keep_files_private, write_file, write_files};
pub use csv_cell::CsvWriter;
pub use settings::{OutputFormat, OutputSettings};

use rfm_core::run::SegmentRun;
use rfm_core::run_folder::{ClustersFile, Document};

/// The text printed on stdout.
pub fn render(run: &SegmentRun, format: OutputFormat) -> Result<String> {
    Ok(match format {
        OutputFormat::Table => table::render(run),
        OutputFormat::Json => run.manifest().to_json(),
        OutputFormat::Csv => table::clusters_csv(run)?,
    })
}

/// Writes clusters.json, `files` and `streamed` (relative paths, subfolders allowed) to
/// `dir` (created if missing). `streamed` files are written straight to disk by their
/// writer (the per-customer exports, which grow with the customers). All are staged under
/// temporary names and renamed into place only when every one is complete.
pub fn write_dir(
    run: &SegmentRun,
    dir: &Path,
    files: &[(String, Vec<u8>)],
    streamed: &[(String, Box<Writer<'_>>)],
) -> Result<()> {
    let doc = run.manifest().to_json();
    let written = || -> Result<()> {
        let mut out = AtomicDir::new(dir)?;
        out.stage(ClustersFile::FILE, doc.as_bytes())?;
        for (name, bytes) in files {
            out.stage(name, bytes)?;
        }
        for (name, write) in streamed {
            out.stage_with(name, write.as_ref())?;
        }
        out.commit()
    };
    written().with_context(|| format!("cannot write results to {}", dir.display()))?;
    let names = files
        .iter()
        .map(|(n, _)| n)
        .chain(streamed.iter().map(|(n, _)| n));
    prune_segment_files(dir, names)
}

/// `segments/` holds exactly this run's files: segment CSVs an earlier run into the same
/// folder left behind (other names or more clusters) are removed, so an email tool that
/// imports the folder never gets a stale list.
fn prune_segment_files<'a>(dir: &Path, names: impl Iterator<Item = &'a String>) -> Result<()> {
    let written: std::collections::HashSet<&str> =
        names.filter_map(|n| n.strip_prefix("segments/")).collect();
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
