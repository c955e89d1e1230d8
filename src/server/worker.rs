//! Runs in the background: at most `[server] max_running` at once (the rest wait their turn),
//! each reporting its progress to the run database as it goes.

use crate::server::store::RunStatus;
use std::path::{Path, PathBuf};

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;

use super::Shared;
use crate::agent::Prompts;
use crate::progress::Watch;
use crate::remedy::{self, FrontEnd};
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

/// Starts the job once a slot is free; returns at once. The run is a task on the service's
/// runtime: DELETE or `[server] run_timeout_secs` aborts it, and its CPU-bound parts
/// (blocking threads) stop at their next step. On the time limit the run is failed with
/// that reason and its slot freed at once.
pub fn start(state: Shared, id: String, settings: Settings, job: Job) {
    let stop = state.register(&id);
    tokio::spawn(async move {
        let Ok(permit) = state.slots.clone().acquire_owned().await else {
            return;
        };
        if stop.requested() {
            finish_deleted(&state, &id);
            return;
        }
        let first = match job {
            Job::Full => "reading the file",
            Job::Campaigns => "segmenting again",
        };
        let _ = state.store.progress(&id, RunStatus::Running, first, 2);
        let watch = Watch::new(observer(&state, &id), stop.flag.clone());
        let upload = settings.input.path.clone();
        let limit = Duration::from_secs(settings.server.run_timeout_secs.max(1));
        let (st, run_id, w) = (state.clone(), id.clone(), watch.clone());
        let mut task = tokio::spawn(async move { execute(&st, &run_id, settings, &w).await });
        // The slot is freed as soon as the run is over, stopped or out of time.
        let outcome = tokio::select! {
            joined = &mut task => Some(joined
                .unwrap_or_else(|e| Err(anyhow::anyhow!("the run stopped unexpectedly: {e}")))),
            _ = tokio::time::sleep(limit) => Some(Err(anyhow::anyhow!(
                "the run took longer than {} s and was stopped (setting [server] run_timeout_secs)",
                limit.as_secs()
            ))),
            _ = stop.wake.notified() => None,
        };
        stop.flag.store(true, Ordering::Relaxed);
        task.abort();
        drop(permit);
        state.unregister(&id);
        let deleted = state.store.get(&id).ok().flatten().is_none();
        match outcome {
            _ if deleted => {
                watch.idle().await;
                finish_deleted(&state, &id);
            }
            Some(Ok(())) => {
                let _ = state
                    .store
                    .set_status(&id, RunStatus::Done, "finished", None);
            }
            Some(Err(e)) => {
                let message = plain_error(&e, &state.data_dir, &id, &upload);
                tracing::warn!(run = %id, "run failed: {message}");
                let _ = state
                    .store
                    .set_status(&id, RunStatus::Failed, "stopped", Some(&message));
            }
            None => {}
        }
    });
}

/// Writes each step of the run to the run database as its progress.
fn observer(state: &Shared, id: &str) -> impl Fn(usize, usize, &str) + Send + Sync + 'static {
    let (state, id) = (state.clone(), id.to_string());
    move |n, total, what| {
        // Pipeline steps fill 2..60 %, the campaigns 60..80 %, charts and report the rest.
        let percent = (58 * n.saturating_sub(1))
            .checked_div(total)
            .map_or(65, |p| (2 + p) as u8);
        let _ = state.store.progress(&id, RunStatus::Running, what, percent);
    }
}

/// How a queued or computing run is told to stop (DELETE, the time limit).
#[derive(Default)]
pub struct RunStop {
    /// Read by the computation at each step.
    pub flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Wakes the run's worker.
    pub wake: tokio::sync::Notify,
}

impl RunStop {
    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// A run deleted while queued or computing: its folder goes once nothing writes to it.
fn finish_deleted(state: &Shared, id: &str) {
    state.unregister(id);
    let _ = std::fs::remove_dir_all(run_dir(&state.data_dir, id));
}

/// The error chain in words with its remedy said as the dashboard and the API say it, and
/// the service's own paths taken out: `upload` (the stored upload's path, empty for the
/// sample) and the run folder.
fn plain_error(e: &anyhow::Error, data_dir: &Path, id: &str, upload: &str) -> String {
    let dir = run_dir(data_dir, id);
    let mut text = remedy::render(e, FrontEnd::Service);
    if !upload.is_empty() {
        text = text.replace(upload, "the uploaded file");
    }
    text.replace(&dir.display().to_string(), "the run folder")
}

async fn execute(state: &Shared, id: &str, settings: Settings, watch: &Watch) -> Result<()> {
    let dir = run_dir(&state.data_dir, id);
    let prompts_dir = dir.join("prompts");
    let prompts = if prompts_dir.join("segments.toml").exists() {
        Prompts::from_dir(&prompts_dir)?
    } else {
        Prompts::built_in()
    }
    .with_currency(&settings.output.currency)
    .with_frequency(settings.rfm.frequency);
    let (run, doc) = crate::agent::run::run(&settings, &prompts, None, None, watch).await?;
    watch.checkpoint()?;
    let _ = state.store.progress(
        id,
        RunStatus::Running,
        "drawing charts and writing the report",
        80,
    );
    let out = dir.join("out");
    watch
        .blocking(move || crate::report::write_run(&run, Some(&doc), &settings, &out))
        .await?
}
