//! The batch output: one JSON object per finished item, appended and flushed as each
//! finishes. On resume, the keys already written are skipped, and a last line cut short by a
//! crash or kill is removed so the file stays valid JSONL.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// What an existing output file already holds.
#[derive(Debug, Default)]
pub struct Resume {
    pub done: HashSet<String>,
    /// Bytes of a cut-off last line that were removed.
    pub truncated: u64,
}

/// Reads `path` (if it exists), drops a partial last line, and lists the finished keys.
pub fn resume(path: &Path) -> Result<Resume> {
    let Ok(file) = File::open(path) else {
        return Ok(Resume::default());
    };
    let mut reader = BufReader::new(file);
    let mut good_end = 0u64;
    let mut pos = 0u64;
    let mut line = Vec::new();
    let mut done = HashSet::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        number += 1;
        pos += n as u64;
        let complete = line.ends_with(b"\n");
        let parsed = serde_json::from_slice::<serde_json::Value>(&line);
        match (complete, parsed) {
            (true, Ok(v)) => {
                let key = v["key"].as_str().with_context(|| {
                    format!(
                        "{}: line {number} has no \"key\"; is this a batch output file?",
                        path.display()
                    )
                })?;
                done.insert(key.to_string());
                good_end = pos;
            }
            (false, _) => break, // cut short: dropped below
            (true, Err(e)) => anyhow::bail!(
                "{}: line {number} is not JSON ({e}); move the file away or fix that line",
                path.display()
            ),
        }
    }
    let len = std::fs::metadata(path)?.len();
    if len > good_end {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(good_end)
            .with_context(|| format!("cannot repair {}", path.display()))?;
        tracing::warn!(
            "{}: removed an unfinished last line ({} bytes); that item will be written again",
            path.display(),
            len - good_end
        );
    }
    Ok(Resume {
        done,
        truncated: len - good_end,
    })
}

/// Appends finished items.
pub struct Writer {
    file: File,
}

impl Writer {
    pub fn open(path: &Path) -> Result<Writer> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.seek(SeekFrom::End(0))?;
        Ok(Writer { file })
    }

    /// Writes one line and flushes it to the file.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        // One write call per line: a kill leaves either the whole line or a cut-off tail
        // that `resume` removes.
        self.file.write_all(&line)?;
        self.file.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cut_off_last_line_is_removed_and_finished_keys_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut w = Writer::open(&path).unwrap();
        w.write(&json!({"key": "a/email/en/x/1"})).unwrap();
        w.write(&json!({"key": "a/sms/en/x/1"})).unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"key\": \"a/push/en").unwrap();
        let r = resume(&path).unwrap();
        assert_eq!(r.done.len(), 2);
        assert!(r.done.contains("a/sms/en/x/1"));
        assert_eq!(r.truncated, 18);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
        // Appending after the repair gives valid JSONL.
        let mut w = Writer::open(&path).unwrap();
        w.write(&json!({"key": "a/push/en/x/1"})).unwrap();
        assert_eq!(resume(&path).unwrap().done.len(), 3);
    }

    #[test]
    fn a_missing_file_is_an_empty_start_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            resume(&dir.path().join("none.jsonl"))
                .unwrap()
                .done
                .is_empty()
        );
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "not json\n").unwrap();
        let e = resume(&bad).unwrap_err().to_string();
        assert!(e.contains("line 1 is not JSON"), "{e}");
    }
}
