//! Runs in the background: at most `[server] max_running` at once (the rest wait their turn),
//! each reporting its progress to the run database as it goes.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Shared;
use crate::agent::Prompts;
use crate::settings::Settings;

/// What a run does.
pub enum Job {
    /// Segmentation, campaigns, charts and report from the uploaded file.
    Full,
    /// The agent again, with another backend or prompts; the segmentation is recomputed from
    /// the same upload and settings, which gives the same clusters (seeded k-means).
    Campaigns,
}

/// The run's folder: the upload, `prompts/` if given, and `out/`.
pub fn run_dir(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("runs").join(id)
}

/// Starts the job once a slot is free; returns at once.
pub fn start(state: Shared, id: String, settings: Settings, job: Job) {
    tokio::spawn(async move {
        let Ok(_permit) = state.slots.clone().acquire_owned().await else {
            return;
        };
        let first = match job {
            Job::Full => "reading the file",
            Job::Campaigns => "segmenting again",
        };
        let _ = state.store.progress(&id, "running", first, 2);
        let (st, run_id) = (state.clone(), id.clone());
        let upload = settings.input.path.clone();
        let outcome = tokio::task::spawn_blocking(move || execute(&st, &run_id, &settings))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the run stopped unexpectedly: {e}")));
        let _ = match outcome {
            Ok(()) => state.store.set_status(&id, "done", "finished", None),
            Err(e) => {
                let message = plain_error(&e, &state.data_dir, &id, &upload);
                tracing::warn!(run = %id, "run failed: {message}");
                state
                    .store
                    .set_status(&id, "failed", "stopped", Some(&message))
            }
        };
    });
}

/// The error chain in words, with the service's own paths taken out: `upload` (the stored
/// upload's path, empty for the sample) and the run folder.
fn plain_error(e: &anyhow::Error, data_dir: &Path, id: &str, upload: &str) -> String {
    let dir = run_dir(data_dir, id);
    let mut text = format!("{e:#}");
    if !upload.is_empty() {
        text = text.replace(upload, "the uploaded file");
    }
    // The command line's flags, said as the dashboard and the API say them.
    text.replace(&dir.display().to_string(), "the run folder")
        .replace(
            "Map yours with --columns ",
            "Map yours under \"Column names\" (API option `columns`): ",
        )
        .replace("; pass --delimiter", "; save it as a comma-separated CSV")
}

fn execute(state: &Shared, id: &str, settings: &Settings) -> Result<()> {
    let store_state = state.clone();
    let run_id = id.to_string();
    let _observer = crate::progress::observe(move |n, total, what| {
        // Pipeline steps fill 2..60 %, the campaigns 60..80 %, charts and report the rest.
        let percent = (58 * n.saturating_sub(1))
            .checked_div(total)
            .map_or(65, |p| (2 + p) as u8);
        let _ = store_state
            .store
            .progress(&run_id, "running", what, percent);
    });
    let dir = run_dir(&state.data_dir, id);
    let prompts_dir = dir.join("prompts");
    let prompts = if prompts_dir.join("segments.toml").exists() {
        Prompts::from_dir(&prompts_dir)?
    } else {
        Prompts::built_in()
    }
    .with_currency(&settings.output.currency)
    .with_frequency(settings.rfm.frequency);
    let (run, doc) = crate::agent::run::run(settings, &prompts, None, None)?;
    let _ = state
        .store
        .progress(id, "running", "drawing charts and writing the report", 80);
    crate::report::write_run(&run, Some(&doc), settings, &dir.join("out"))
}
