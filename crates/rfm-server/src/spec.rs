//! The contract between the service and a run's own process: the spec the service writes to
//! the process's standard input (then closes it), and the events the process writes back on
//! its standard output, one JSON object a line. Nothing of it touches the disk: the spec
//! carries the run's secrets (API keys, a database password), which the process gets in no
//! other way (its environment is cleared).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use rfm_run::settings::{ApiKey, EngineEnvironment, Settings};

/// The spec's schema version; a process reading another refuses it.
pub const SCHEMA: u32 = 1;

/// Largest spec read (settings and a few paths take a few KB).
pub const MAX_SPEC: u64 = 4 << 20;

/// Longest event line read back; a longer one is cut.
pub const MAX_EVENT: usize = 16 << 10;

/// One run as its process gets it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub schema: u32,
    /// The settings with the run's options applied, input and output pointed at the run
    /// folder. Their keys are serialised empty: they travel in `secrets`.
    pub settings: Settings,
    pub secrets: Secrets,
    /// The run's folder: `prompts/` there, if given, are the run's templates.
    pub run_dir: PathBuf,
    /// The stored upload's path, said as "the uploaded file" in messages.
    pub upload: String,
    /// The first step's words, for the status.
    pub first: String,
    /// A fault to make, for the tests of the service's isolation (see [`Fault`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

/// What a run's process does wrong on purpose: the service's tests of its isolation set
/// `RFM_AGENT_RUN_FAULT` (panic, abort, hang, allocate, reserve) in the service's environment to see
/// each kind of death handled; runs of the built-in sample then strike it, uploads do not.
/// Nothing else sets it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Panics with a message that must not reach the client.
    Panic,
    /// Aborts, as a failed allocation does.
    Abort,
    /// Never ends by itself.
    Hang,
    /// Touches memory until it is stopped.
    Allocate,
    /// Asks for 8 GiB at once, more address space than a run has: the allocation fails.
    Reserve,
}

impl Fault {
    /// From `RFM_AGENT_RUN_FAULT`, if set to one of the faults.
    pub fn from_env() -> Option<Fault> {
        let name = std::env::var("RFM_AGENT_RUN_FAULT").ok()?;
        serde_json::from_value(serde_json::Value::String(name)).ok()
    }

    /// Makes the fault happen.
    pub fn strike(self) {
        match self {
            Fault::Panic => panic!("a test fault: SECRET-PANIC-TEXT"),
            Fault::Abort => std::process::abort(),
            Fault::Hang => loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            },
            Fault::Reserve => {
                let held: Vec<u8> = Vec::with_capacity(8 << 30);
                std::hint::black_box(&held);
                Fault::Hang.strike();
            }
            Fault::Allocate => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    held.push(vec![1u8; 16 << 20]);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
}

/// What the settings hold secret, resolved by the service from its settings and
/// environment, as the command line would.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    pub gemini_api_key: String,
    pub openai_api_key: String,
    pub engine_password: String,
    /// Spark Connect's address when it came from SPARK_REMOTE (it may carry a token).
    pub spark_remote: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

impl Secrets {
    /// From the settings, else the environment variables the command line reads.
    pub fn resolve(settings: &Settings) -> Secrets {
        let pick = |configured: &ApiKey, var: &str| match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => v,
            _ => configured.0.clone(),
        };
        let env = EngineEnvironment::read(&settings.engine);
        Secrets {
            gemini_api_key: pick(&settings.llm.gemini_api_key, "GEMINI_API_KEY"),
            openai_api_key: pick(&settings.llm.openai_api_key, "OPENAI_API_KEY"),
            engine_password: match settings.engine.password.is_empty() {
                true => env.password,
                false => settings.engine.password.0.clone(),
            },
            spark_remote: env.spark_remote,
        }
    }

    /// Puts them back into `settings`, where the process's code looks for them.
    pub fn restore(self, settings: &mut Settings) {
        settings.llm.gemini_api_key = ApiKey(self.gemini_api_key);
        settings.llm.openai_api_key = ApiKey(self.openai_api_key);
        settings.engine.password = ApiKey(self.engine_password);
        if !self.spark_remote.is_empty() {
            settings.engine.url = self.spark_remote;
        }
    }
}

/// What a run's process says while it works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Event {
    /// A step began.
    Progress { what: String, percent: u8 },
    /// The run folder is written.
    Done { peak_mib: u64 },
    /// The run failed for a reason the user can act on, said for the service's users.
    Failed { message: String, peak_mib: u64 },
}

impl Event {
    pub fn line(&self) -> String {
        serde_json::to_string(self).expect("events serialise") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_back_with_its_secrets_apart() {
        let mut settings = Settings::default();
        settings.llm.gemini_api_key = ApiKey("g-secret".into());
        settings.engine.password = ApiKey("pw-secret".into());
        let spec = RunSpec {
            schema: SCHEMA,
            secrets: Secrets::resolve(&settings),
            settings,
            run_dir: "/data/runs/0123456789abcdef".into(),
            upload: "/data/runs/0123456789abcdef/input.csv".into(),
            first: "reading the file".into(),
            fault: None,
        };
        let text = serde_json::to_string(&spec).unwrap();
        let back: RunSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.settings.llm.gemini_api_key.0, "",
            "keys are not in the settings"
        );
        assert!(format!("{:?}", back.secrets).contains("redacted"));
        let mut settings = back.settings;
        back.secrets.restore(&mut settings);
        if std::env::var_os("GEMINI_API_KEY").is_none() {
            assert_eq!(settings.llm.gemini_api_key.0, "g-secret");
        }
        assert_eq!(settings.engine.password.0, "pw-secret");
    }

    #[test]
    fn events_are_one_line_each() {
        for e in [
            Event::Progress {
                what: "reading\nthe file".into(),
                percent: 2,
            },
            Event::Done { peak_mib: 90 },
            Event::Failed {
                message: "x".into(),
                peak_mib: 1,
            },
        ] {
            let line = e.line();
            assert_eq!(line.matches('\n').count(), 1);
            assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        }
    }
}
