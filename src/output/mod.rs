//! Outputs of a segmentation: what is printed (table, JSON, CSV) and the files written to
//! `--out DIR` (customers.csv, clusters.json), each written whole or not at all.

mod atomic;
mod document;
mod table;

use std::path::Path;

use anyhow::{Context, Result};

pub use atomic::{AtomicDir, write_file};
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

/// Writes customers.csv, clusters.json and any `extra` files to `dir` (created if
/// missing). All are staged under temporary names and renamed into place only when every
/// one is complete.
pub fn write_dir(run: &SegmentRun, dir: &Path, extra: &[(&str, Vec<u8>)]) -> Result<()> {
    let mut out = AtomicDir::new(dir)?;
    out.stage("customers.csv", &customers_csv(run)?)?;
    let doc = serde_json::to_vec_pretty(&ClustersDocument::new(run))?;
    out.stage("clusters.json", &doc)?;
    for (name, bytes) in extra {
        out.stage(name, bytes)?;
    }
    out.commit()
        .with_context(|| format!("cannot write results to {}", dir.display()))
}

/// One row per customer: id, R, F, M and cluster.
pub fn customers_csv(run: &SegmentRun) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["customer_id", "recency", "frequency", "monetary", "cluster"])?;
    let r = &run.rfm;
    for i in 0..r.len() {
        w.write_record([
            r.customer_ids[i].as_str(),
            &r.recency[i].to_string(),
            &r.frequency[i].to_string(),
            &format!("{:.2}", r.monetary[i]),
            &run.segmentation.labels[i].to_string(),
        ])?;
    }
    Ok(w.into_inner()?)
}
