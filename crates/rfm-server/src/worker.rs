//! Runs in the background, each in its own process (child.rs, job.rs): at most
//! `[server] max_running` at once, each holding its memory limit (`[limits] max_memory_mb`)
//! out of the service's (`[server] max_memory_mb`) while it lives; the rest wait their turn.
//! DELETE, the time limit and a run past its memory end the process, and its slot and memory
//! are given back only once it has exited.

use crate::store::RunStatus;
use std::time::Duration;

use super::Shared;
use super::child::{self, Limits, RunProcess};
use super::datadir::run_dir;
use super::spec::{self, Event, RunSpec, Secrets};
use rfm_run::settings::Settings;

/// What a run does.
pub enum Job {
    /// Segmentation, campaigns, charts and report from the uploaded file.
    Full,
    /// The agent again, with another backend or prompts; the segmentation is recomputed from
    /// the same upload and settings, which gives the same clusters (seeded k-means).
    Campaigns,
}

/// Why the service ended a run's process.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ended {
    /// DELETE, or the service is stopping.
    Stopped,
    TimedOut,
    /// Past its memory limit, with the resident memory seen.
    OverMemory(u64),
}

/// How a run ended, for its status.
enum Outcome {
    Done,
    Failed(String),
    /// Stopped by DELETE or the service's shutdown: nothing to record here.
    Stopped,
}

/// Starts the job once a slot and its memory are free; returns at once.
pub fn start(state: Shared, id: String, settings: Settings, job: Job) {
    let stop = state.register(&id);
    tokio::spawn(async move {
        let Ok(slot) = state.slots.clone().acquire_owned().await else {
            return;
        };
        let need = run_memory_mib(&state, &settings);
        if state.memory.available_permits() < need as usize {
            let _ = (state.store).progress(&id, RunStatus::Queued, "waiting for memory", 0);
        }
        let memory = tokio::select! {
            m = state.memory.clone().acquire_many_owned(need) => m.ok(),
            _ = stop.wake.notified() => None,
        };
        let outcome = match memory {
            Some(_) if !stop.requested() => supervise(&state, &id, settings, job, &stop).await,
            _ => Outcome::Stopped,
        };
        drop((memory, slot));
        state.unregister(&id);
        let deleted = state.store.get(&id).ok().flatten().is_none();
        match outcome {
            _ if deleted => {
                let _ = std::fs::remove_dir_all(run_dir(&state.data_dir, &id));
            }
            Outcome::Done => {
                let _ = state
                    .store
                    .set_status(&id, RunStatus::Done, "finished", None);
            }
            Outcome::Failed(message) => {
                tracing::warn!(run = %id, "run failed: {message}");
                let _ = (state.store).set_status(&id, RunStatus::Failed, "stopped", Some(&message));
                super::retention::after_failure(&state, &id);
            }
            Outcome::Stopped => {}
        }
        super::retention::prune(&state);
    });
}

/// The memory a run holds while it lives, in MiB: its limit, never more than the service's.
fn run_memory_mib(state: &Shared, settings: &Settings) -> u32 {
    let total = state.settings.server.max_memory_mb.max(1);
    settings
        .limits
        .max_memory_mb
        .clamp(1, total)
        .min(u64::from(u32::MAX)) as u32
}

/// Runs the job's process to its end.
async fn supervise(
    state: &Shared,
    id: &str,
    settings: Settings,
    job: Job,
    stop: &RunStop,
) -> Outcome {
    let timeout = Duration::from_secs(settings.server.run_timeout_secs.max(1));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let limits = Limits {
        memory_bytes: u64::from(run_memory_mib(state, &settings)) << 20,
        cpu_secs: timeout.as_secs().saturating_mul(cores).saturating_add(30),
    };
    let first = match job {
        Job::Full => "reading the file",
        Job::Campaigns => "segmenting again",
    };
    let _ = state.store.progress(id, RunStatus::Running, first, 2);
    let spec = RunSpec {
        schema: spec::SCHEMA,
        // Only runs of the built-in sample, so that a test sees the next run succeed.
        fault: spec::Fault::from_env().filter(|_| settings.input.path.is_empty()),
        secrets: Secrets::resolve(&settings),
        upload: settings.input.path.clone(),
        settings,
        run_dir: run_dir(&state.data_dir, id),
        first: first.to_string(),
    };
    let mut process = match RunProcess::start(&state.runner, &spec, limits, id) {
        Ok(p) => p,
        Err(e) => {
            return Outcome::Failed(internal(
                id,
                &format!("cannot start the run's process: {e}"),
                &[],
            ));
        }
    };
    drop(spec);
    let (ended, last, seen_kib) = watch(state, id, &mut process, stop, timeout, limits).await;
    let exit = match (&mut process.exit).await {
        Ok(Ok(exit)) => exit.status,
        _ => {
            return Outcome::Failed(internal(
                id,
                "the run's process could not be waited for",
                &[],
            ));
        }
    };
    // Events written just before the end are still on their way.
    let mut last = last;
    while let Some(event) = process.events.recv().await {
        last = Some(event);
    }
    let reported = match &last {
        Some(Event::Done { peak_mib } | Event::Failed { peak_mib, .. }) => *peak_mib,
        _ => 0,
    };
    let _ = (state.store).set_peak(id, reported.max(seen_kib.div_ceil(1024)));
    outcome(
        id,
        ended,
        last,
        exit,
        limits,
        timeout,
        &process.stderr_tail(),
    )
}

/// Follows the process until it exits: its events to the run's status, its memory, DELETE
/// and the time limit. Returns why the service ended it, if it did, its last event, and the
/// most resident memory seen (KiB).
async fn watch(
    state: &Shared,
    id: &str,
    process: &mut RunProcess,
    stop: &RunStop,
    timeout: Duration,
    limits: Limits,
) -> (Option<Ended>, Option<Event>, u64) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(child::WATCH);
    let (mut ended, mut last, mut seen) = (None, None, 0);
    let limit_kib = limits.memory_bytes >> 10;
    let end = |why: Ended, process: &RunProcess, ended: &mut Option<Ended>| {
        if ended.is_none() {
            *ended = Some(why);
            process.kill();
        }
    };
    loop {
        tokio::select! {
            event = process.events.recv() => match event {
                Some(Event::Progress { what, percent }) => {
                    let _ = state.store.progress(id, RunStatus::Running, &what, percent);
                }
                Some(e) => last = Some(e),
                None => break,
            },
            _ = &mut deadline, if ended.is_none() => end(Ended::TimedOut, process, &mut ended),
            _ = stop.wake.notified(), if ended.is_none() => end(Ended::Stopped, process, &mut ended),
            _ = tick.tick() => {
                let kib = process.resident_kib().unwrap_or(0);
                seen = seen.max(kib);
                if kib > limit_kib {
                    end(Ended::OverMemory(kib), process, &mut ended);
                }
            }
        }
    }
    (ended, last, seen)
}

/// The run's outcome from how its process ended.
fn outcome(
    id: &str,
    ended: Option<Ended>,
    last: Option<Event>,
    exit: std::process::ExitStatus,
    limits: Limits,
    timeout: Duration,
    tail: &[String],
) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let limit_mib = limits.memory_bytes >> 20;
    let over_memory = || {
        Outcome::Failed(format!(
            "the run needed more than its {limit_mib} MiB of memory and was stopped; a larger \
             file needs a larger limit (setting [limits] max_memory_mb)"
        ))
    };
    match (ended, exit.signal(), last) {
        (Some(Ended::Stopped), ..) => Outcome::Stopped,
        (Some(Ended::TimedOut), ..) => Outcome::Failed(format!(
            "the run took longer than {} s and was stopped (setting [server] run_timeout_secs)",
            timeout.as_secs()
        )),
        (Some(Ended::OverMemory(_)), ..) => over_memory(),
        (None, None, Some(Event::Done { .. })) if exit.success() => Outcome::Done,
        (None, None, Some(Event::Failed { message, .. })) if exit.code() == Some(1) => {
            Outcome::Failed(message)
        }
        // An allocation past the address-space limit fails, and Rust aborts.
        (None, Some(libc::SIGABRT), _)
            if tail.iter().any(|l| l.contains("memory allocation of")) =>
        {
            over_memory()
        }
        (None, Some(libc::SIGXCPU), _) => Outcome::Failed(format!(
            "the run used more than {} s of processor time and was stopped (setting [server] run_timeout_secs)",
            limits.cpu_secs
        )),
        (None, Some(libc::SIGKILL), _) => Outcome::Failed(
            "the run's process was killed from outside the service, most likely because the \
             machine ran out of memory; try again, or lower [server] max_memory_mb"
                .into(),
        ),
        _ => Outcome::Failed(internal(
            id,
            &format!("the run's process ended with {exit}"),
            tail,
        )),
    }
}

/// "internal error" with an id for the client; the details, with that id, in the log.
fn internal(run: &str, what: &str, tail: &[String]) -> String {
    let incident = super::error::incident();
    tracing::error!(run = %run, incident = %incident, "{what}; its last words:\n{}", tail.join("\n"));
    format!("internal error (reference {incident}); the service's log has the details")
}

/// How a queued or computing run is told to stop (DELETE, the service's shutdown).
#[derive(Default)]
pub struct RunStop {
    flag: std::sync::atomic::AtomicBool,
    /// Wakes the run's supervisor.
    pub wake: tokio::sync::Notify,
}

impl RunStop {
    pub fn request(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn requested(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::Relaxed)
    }
}
