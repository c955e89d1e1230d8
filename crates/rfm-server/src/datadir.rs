//! The data folder: private to its owner (0700, files 0600) and held by one service at a
//! time through an exclusive lock on `.lock`, which names the process holding it.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Creates `dir` (and `dir/runs`) or tightens an existing one to 0700, its files to 0600;
/// files the process creates from now on are 0600 (umask 077).
pub fn make_private(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("runs"))
        .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
        unsafe { libc::umask(0o077) };
        rfm_report::output::keep_files_private();
        let tighten = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(
                || {
                    format!(
                        "{}: cannot make it private to its owner (mode {mode:o}); it holds \
                         customer data: fix its owner or permissions, or pass another --data-dir",
                        path.display()
                    )
                },
            )
        };
        tighten(dir, 0o700)?;
        tighten(&dir.join("runs"), 0o700)?;
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            if path.is_file() {
                tighten(&path, 0o600)?;
            }
        }
    }
    Ok(())
}

/// The exclusive lock on `dir/.lock`, released when dropped (or when the process ends).
pub struct Lock(#[allow(dead_code)] std::fs::File);

impl Lock {
    pub fn take(dir: &Path) -> Result<Lock> {
        let path = dir.join(".lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = (&file).take(64).read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_string()
            } else {
                format!("another rfm-agent serve (process {holder})")
            };
            bail!(
                "{}: {who} is using this data folder; stop it first, or pass another --data-dir",
                dir.display()
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(Lock(file))
    }
}

/// The run's folder: the upload, `prompts/` if given, and `out/`.
pub fn run_dir(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("runs").join(id)
}
