//! What the engines take from the environment when the settings leave it empty, as libpq and
//! PySpark do: the database password from PGPASSWORD, Spark Connect's address (which may carry
//! a token) from SPARK_REMOTE. The front ends read it, each once: the command line into its
//! settings, the service into the secrets it hands each run's process; the pipeline only
//! reads the settings.

use rfm_core::secret::ApiKey;
use rfm_engines::EngineSettings;

/// The environment's values for what `[engine]` leaves empty (empty strings otherwise).
#[derive(Default)]
pub struct EngineEnvironment {
    pub password: String,
    pub spark_remote: String,
}

impl EngineEnvironment {
    /// Reads PGPASSWORD when `engine` has no password, SPARK_REMOTE when it has no address.
    pub fn read(engine: &EngineSettings) -> EngineEnvironment {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        EngineEnvironment {
            password: match engine.password.is_empty() {
                true => var("PGPASSWORD"),
                false => String::new(),
            },
            spark_remote: match engine.url.trim().is_empty() {
                true => var("SPARK_REMOTE"),
                false => String::new(),
            },
        }
    }

    /// Fills what `engine` leaves empty.
    pub fn fill(self, engine: &mut EngineSettings) {
        if engine.password.is_empty() {
            engine.password = ApiKey(self.password);
        }
        if engine.url.trim().is_empty() && !self.spark_remote.is_empty() {
            engine.url = self.spark_remote;
        }
    }
}

impl std::fmt::Debug for EngineEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineEnvironment(<redacted>)")
    }
}
