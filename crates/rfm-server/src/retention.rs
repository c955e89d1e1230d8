//! Stored runs within bounds: at most `[server] keep_runs` finished runs, and all runs within
//! `[server] max_store_gb` on disk; the runs that finished first go first (queued and running
//! ones are never removed, nor the run that finished last, so that its results can be read
//! however small the limits). A failed run keeps its error, not its upload.

use std::path::Path;

use super::Shared;
use super::datadir::run_dir;

/// A failed run's upload goes at once: its error says what was wrong with it.
pub fn after_failure(state: &Shared, id: &str) {
    let dir = run_dir(&state.data_dir, id);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("input.") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Removes the oldest finished runs past the limits, off the async threads.
pub fn prune(state: &Shared) {
    let state = state.clone();
    tokio::task::spawn_blocking(move || prune_now(&state));
}

/// Removes the oldest finished runs past the limits; returns how many.
pub fn prune_now(state: &Shared) -> usize {
    let Ok(mut finished) = state.store.finished_oldest_first() else {
        return 0;
    };
    // The run that finished last stays.
    finished.pop();
    let server = &state.settings.server;
    let mut excess = (finished.len() + 1).saturating_sub(server.keep_runs.max(1));
    let limit = (server.max_store_gb.max(0.0) * 1e9) as u64;
    let mut stored = size(&state.data_dir.join("runs"));
    let mut removed = 0;
    for id in finished {
        if excess == 0 && stored <= limit {
            break;
        }
        let dir = run_dir(&state.data_dir, &id);
        let bytes = size(&dir);
        let _ = state.store.delete(&id);
        let _ = std::fs::remove_dir_all(&dir);
        if !dir.exists() {
            stored = stored.saturating_sub(bytes);
            excess = excess.saturating_sub(1);
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            "removed the {removed} oldest finished run(s) ([server] keep_runs, max_store_gb)"
        );
    }
    removed
}

/// Bytes of the files below `dir` (symbolic links are not followed).
fn size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
