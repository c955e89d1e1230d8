//! The engines' settings: the `[engine]` section.

use serde::{Deserialize, Serialize};

use crate::EngineKind;
use rfm_core::secret::ApiKey;

/// Where the data lives: this machine, a database (`input.path` = `postgres://USER@HOST:PORT/DB`)
/// or a Spark cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// `auto` (PostgreSQL for a postgres:// input, else local), `local`, `postgres` or `spark`.
    pub kind: EngineKind,
    /// Spark Connect's address, `sc://HOST:PORT` (else SPARK_REMOTE).
    pub url: String,
    /// The table to read (`schema.table` allowed).
    pub table: String,
    /// Or a query of the caller's choosing.
    pub query: String,
    /// Longest wait for the connection and for each statement.
    pub timeout_secs: u64,
    /// The database password; prefer the environment variable PGPASSWORD.
    pub password: ApiKey,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            kind: EngineKind::Auto,
            url: String::new(),
            table: String::new(),
            query: String::new(),
            timeout_secs: 60,
            password: ApiKey::default(),
        }
    }
}
