//! Run state in an embedded SQLite database under `--data-dir`, so a restart loses nothing;
//! runs a restart interrupted are marked failed with that reason.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Where a run is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Done,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
        }
    }

    /// Queued or running: holds a slot.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for RunStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RunStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "queued" => Ok(RunStatus::Queued),
            "running" => Ok(RunStatus::Running),
            "done" => Ok(RunStatus::Done),
            "failed" => Ok(RunStatus::Failed),
            other => Err(FromSqlError::Other(
                format!("unknown run status `{other}`").into(),
            )),
        }
    }
}

/// The database's schema, one step per version: step i takes a database at
/// `PRAGMA user_version` i to i + 1. Version 0 is a new file, or one written before the
/// version was kept (its table is the one step 0 creates).
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS runs (
     id TEXT PRIMARY KEY, status TEXT NOT NULL, created TEXT NOT NULL,
     updated TEXT NOT NULL, input_name TEXT NOT NULL, options TEXT NOT NULL,
     progress TEXT NOT NULL DEFAULT '', error TEXT,
     percent INTEGER NOT NULL DEFAULT 0
 );",
    // The most resident memory the run's process took, in MiB.
    "ALTER TABLE runs ADD COLUMN peak_mib INTEGER;",
];

/// Brings `db` to the current schema, in one transaction per step.
fn migrate(db: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        let message = format!(
            "the run database has schema version {version}, newer than this rfm-agent's {}; run the newer rfm-agent or use another --data-dir",
            MIGRATIONS.len()
        );
        let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR);
        return Err(rusqlite::Error::SqliteFailure(code, Some(message)));
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = db.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// A run as the API reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub status: RunStatus,
    pub created: String,
    pub updated: String,
    pub input_name: String,
    pub options: serde_json::Value,
    pub progress: String,
    /// 0..=100
    pub percent: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The most resident memory the run's process took, in MiB (once it has ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_mib: Option<u64>,
}

impl RunRecord {
    /// Where a page that ends with this run goes on: its creation time and id.
    pub fn cursor(&self) -> String {
        format!("{}_{}", self.created, self.id)
    }

    /// A cursor read back; `None` when it is not one.
    pub fn parse_cursor(text: &str) -> Option<(&str, &str)> {
        let (created, id) = text.split_once('_')?;
        let plain = |s: &str, extra: &[u8]| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        };
        (created.len() == 20 && plain(created, b"-:") && id.len() == 16 && plain(id, b""))
            .then_some((created, id))
    }
}

/// What [`Store::requeue`] did.
#[derive(Debug, PartialEq)]
pub enum Requeue {
    Queued,
    Missing,
    Active,
    Full,
}

pub struct Store {
    db: Mutex<Connection>,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Store {
    /// Opens (or creates) `dir/runs.sqlite3` and fails runs a previous process left running.
    pub fn open(dir: &Path) -> rusqlite::Result<Store> {
        let mut db = Connection::open(dir.join("runs.sqlite3"))?;
        db.execute_batch("PRAGMA journal_mode = WAL;")?;
        migrate(&mut db)?;
        let store = Store { db: Mutex::new(db) };
        store.fail_active("interrupted by a restart of the service")?;
        Ok(store)
    }

    /// Adds a queued run unless `limit` runs are queued or running already; false then.
    pub fn insert(
        &self,
        id: &str,
        input_name: &str,
        options: &serde_json::Value,
        limit: usize,
    ) -> rusqlite::Result<bool> {
        let t = now();
        let db = self.db.lock().unwrap();
        if Self::count_active(&db)? >= limit {
            return Ok(false);
        }
        db.execute(
            "INSERT INTO runs (id, status, created, updated, input_name, options, progress) VALUES (?1, 'queued', ?2, ?2, ?3, ?4, 'waiting for a free slot')",
            params![id, t, input_name, options.to_string()],
        )?;
        Ok(true)
    }

    /// Queues a finished run again (campaigns rerun) unless it is active or `limit` runs are.
    pub fn requeue(
        &self,
        id: &str,
        options: &serde_json::Value,
        limit: usize,
    ) -> rusqlite::Result<Requeue> {
        let db = self.db.lock().unwrap();
        let status: Option<RunStatus> = db
            .query_row("SELECT status FROM runs WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        match status {
            None => return Ok(Requeue::Missing),
            Some(s) if s.is_active() => return Ok(Requeue::Active),
            _ => {}
        }
        if Self::count_active(&db)? >= limit {
            return Ok(Requeue::Full);
        }
        db.execute(
            "UPDATE runs SET status = 'queued', progress = 'waiting for a free slot', percent = 0, error = NULL, options = ?2, updated = ?3 WHERE id = ?1",
            params![id, options.to_string(), now()],
        )?;
        Ok(Requeue::Queued)
    }

    /// Progress of an active run.
    pub fn progress(
        &self,
        id: &str,
        status: RunStatus,
        progress: &str,
        percent: u8,
    ) -> rusqlite::Result<()> {
        self.db.lock().unwrap().execute(
            "UPDATE runs SET status = ?2, progress = ?3, percent = ?4, updated = ?5 WHERE id = ?1",
            params![id, status, progress, percent, now()],
        )?;
        Ok(())
    }

    pub fn set_status(
        &self,
        id: &str,
        status: RunStatus,
        progress: &str,
        error: Option<&str>,
    ) -> rusqlite::Result<()> {
        let error = error.map(rfm_core::bounded::message);
        self.db.lock().unwrap().execute(
            "UPDATE runs SET status = ?2, progress = ?3, error = ?4, updated = ?5, percent = CASE WHEN ?2 = 'done' THEN 100 ELSE percent END WHERE id = ?1",
            params![id, status, progress, error, now()],
        )?;
        Ok(())
    }

    fn row(r: &rusqlite::Row) -> rusqlite::Result<RunRecord> {
        let options: String = r.get(5)?;
        Ok(RunRecord {
            id: r.get(0)?,
            status: r.get(1)?,
            created: r.get(2)?,
            updated: r.get(3)?,
            input_name: r.get(4)?,
            options: serde_json::from_str(&options).unwrap_or_default(),
            progress: r.get(6)?,
            error: r.get(7)?,
            percent: r.get(8)?,
            peak_mib: r.get(9)?,
        })
    }

    pub fn get(&self, id: &str) -> rusqlite::Result<Option<RunRecord>> {
        self.db
            .lock()
            .unwrap()
            .query_row(
                "SELECT id, status, created, updated, input_name, options, progress, error, percent, peak_mib FROM runs WHERE id = ?1",
                params![id],
                Self::row,
            )
            .optional()
    }

    pub fn list(&self) -> rusqlite::Result<Vec<RunRecord>> {
        self.page(usize::MAX, None)
    }

    /// At most `limit` runs, newest first, after the run `after` (its creation time and id,
    /// as [`RunRecord::cursor`] gives them).
    pub fn page(
        &self,
        limit: usize,
        after: Option<(&str, &str)>,
    ) -> rusqlite::Result<Vec<RunRecord>> {
        let db = self.db.lock().unwrap();
        let mut stmt = db.prepare(
            "SELECT id, status, created, updated, input_name, options, progress, error, percent, peak_mib FROM runs \
             WHERE ?1 IS NULL OR created < ?1 OR (created = ?1 AND id > ?2) \
             ORDER BY created DESC, id LIMIT ?3",
        )?;
        let (created, id) = after.unzip();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![created, id, limit], Self::row)?;
        rows.collect()
    }

    /// Finished (done or failed) runs, the one that finished first first (times are to the
    /// second; the order they were stored in breaks a tie).
    pub fn finished_oldest_first(&self) -> rusqlite::Result<Vec<String>> {
        let db = self.db.lock().unwrap();
        let mut stmt = db.prepare(
            "SELECT id FROM runs WHERE status IN ('done', 'failed') ORDER BY updated, rowid",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    }

    /// Records the most memory the run's process took.
    pub fn set_peak(&self, id: &str, mib: u64) -> rusqlite::Result<()> {
        self.db.lock().unwrap().execute(
            "UPDATE runs SET peak_mib = ?2 WHERE id = ?1",
            params![id, i64::try_from(mib).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    pub fn delete(&self, id: &str) -> rusqlite::Result<bool> {
        Ok(self
            .db
            .lock()
            .unwrap()
            .execute("DELETE FROM runs WHERE id = ?1", params![id])?
            > 0)
    }

    /// Marks every queued or running run failed with `reason`; returns how many.
    pub fn fail_active(&self, reason: &str) -> rusqlite::Result<usize> {
        self.db.lock().unwrap().execute(
            "UPDATE runs SET status = 'failed', error = ?1, updated = ?2 WHERE status IN ('queued', 'running')",
            params![reason, now()],
        )
    }

    /// Runs queued or running.
    pub fn active(&self) -> rusqlite::Result<usize> {
        Self::count_active(&self.db.lock().unwrap())
    }

    fn count_active(db: &Connection) -> rusqlite::Result<usize> {
        db.query_row(
            "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')",
            [],
            |r| r.get::<_, i64>(0).map(|n| n as usize),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_the_previous_version_is_migrated() {
        // What builds before the schema version wrote: the table, user_version 0.
        let dir = tempfile::tempdir().unwrap();
        let old = Connection::open(dir.path().join("runs.sqlite3")).unwrap();
        old.execute_batch(
            "CREATE TABLE runs (
                 id TEXT PRIMARY KEY, status TEXT NOT NULL, created TEXT NOT NULL,
                 updated TEXT NOT NULL, input_name TEXT NOT NULL, options TEXT NOT NULL,
                 progress TEXT NOT NULL DEFAULT '', error TEXT,
                 percent INTEGER NOT NULL DEFAULT 0
             );
             INSERT INTO runs VALUES ('old1', 'done', '2026-11-01T10:00:00Z',
                 '2026-11-01T10:01:00Z', 'x.csv', '{\"k\":4}', 'finished', NULL, 100);",
        )
        .unwrap();
        drop(old);
        let s = Store::open(dir.path()).unwrap();
        let run = s.get("old1").unwrap().unwrap();
        assert_eq!((run.status, run.percent), (RunStatus::Done, 100));
        assert_eq!(run.options["k"], 4);
        let db = s.db.lock().unwrap();
        let version: usize = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        // A database from a newer build is refused, not misread.
        db.pragma_update(None, "user_version", MIGRATIONS.len() + 1)
            .unwrap();
        drop(db);
        drop(s);
        let err = Store::open(dir.path()).err().unwrap().to_string();
        assert!(
            err.starts_with("the run database has schema version 3"),
            "{err}"
        );
    }

    #[test]
    fn runs_survive_a_reopen_and_interrupted_ones_fail() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(
            s.insert("a1", "sample.csv", &serde_json::json!({"k": 4}), 2)
                .unwrap()
        );
        assert!(s.insert("b2", "x.csv", &serde_json::json!({}), 2).unwrap());
        assert!(
            !s.insert("c3", "y.csv", &serde_json::json!({}), 2).unwrap(),
            "limit of 2 active runs"
        );
        s.set_status("b2", RunStatus::Done, "", None).unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let a = s.get("a1").unwrap().unwrap();
        assert_eq!(a.status, RunStatus::Failed);
        assert!(a.error.unwrap().contains("restart"));
        assert_eq!(s.get("b2").unwrap().unwrap().status, RunStatus::Done);
        assert_eq!(s.list().unwrap().len(), 2);
        assert_eq!(
            s.requeue("b2", &serde_json::json!({}), 2).unwrap(),
            Requeue::Queued
        );
        assert_eq!(
            s.requeue("b2", &serde_json::json!({}), 2).unwrap(),
            Requeue::Active
        );
        assert_eq!(
            s.requeue("zz", &serde_json::json!({}), 2).unwrap(),
            Requeue::Missing
        );
        assert!(s.delete("a1").unwrap());
        assert!(s.get("a1").unwrap().is_none());
    }
}
