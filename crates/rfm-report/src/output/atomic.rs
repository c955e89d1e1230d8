//! Whole-or-nothing file output: files are staged as temporaries in the target directory
//! and renamed into place together; on error or drop the temporaries are removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Results are written 0600 instead of 0644 once set (the service's data folder).
static PRIVATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, every file written is readable by its owner only.
pub fn keep_files_private() {
    PRIVATE.store(true, std::sync::atomic::Ordering::Relaxed);
}
use tempfile::NamedTempFile;

/// Writes a file's content to the writer it is given.
pub type Writer<'a> = dyn Fn(&mut dyn Write) -> Result<()> + 'a;

pub struct AtomicDir {
    dir: PathBuf,
    staged: Vec<(NamedTempFile, String)>,
}

impl AtomicDir {
    pub fn new(dir: &Path) -> Result<AtomicDir> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        Ok(AtomicDir {
            dir: dir.to_path_buf(),
            staged: Vec::new(),
        })
    }

    /// Writes `bytes` to a temporary file that will become `name` (a relative path; its
    /// folders are created).
    pub fn stage(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.stage_with(name, &|w| Ok(w.write_all(bytes)?))
    }

    /// Like [`AtomicDir::stage`], with the content written by `write` straight to the file
    /// (buffered), never held whole in memory.
    pub fn stage_with(&mut self, name: &str, write: &Writer<'_>) -> Result<()> {
        let target = self.dir.join(name);
        let folder = target.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let file_name = target
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".tmp")
            .tempfile_in(&folder)
            .with_context(|| format!("cannot write to {}", folder.display()))?;
        // Temporary files are private (0600); results are ordinary files, unless the
        // process keeps its files private (the service).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if PRIVATE.load(std::sync::atomic::Ordering::Relaxed) {
                0o600
            } else {
                0o644
            };
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot write to {}", self.dir.display()))?;
        }
        let failed = || format!("cannot write {}", self.dir.join(name).display());
        let mut buffered = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        write(&mut buffered).with_context(failed)?;
        buffered.flush().with_context(failed)?;
        drop(buffered);
        tmp.as_file().sync_all().with_context(failed)?;
        self.staged.push((tmp, name.to_string()));
        Ok(())
    }

    /// Renames every staged file into place.
    pub fn commit(self) -> Result<()> {
        for (tmp, name) in self.staged {
            let target = self.dir.join(&name);
            tmp.persist(&target)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        Ok(())
    }
}

/// Writes `files` (name, bytes) into `dir`, all or nothing.
pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    let mut out = AtomicDir::new(dir)?;
    for (name, bytes) in files {
        out.stage(name, bytes)?;
    }
    out.commit()
}

/// Writes one file atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?
        .to_string_lossy()
        .to_string();
    write_files(dir, &[(&name, bytes)])
}
