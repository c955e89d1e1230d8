//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use serde_json::Value;

/// The binary under test, with settings taken only from defaults and the test's flags.
pub fn bin() -> Command {
    Command::from_std(std_bin())
}

/// The same as a plain `std::process::Command` (for spawning and signalling).
pub fn std_bin() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("rfm-agent"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RFM_AGENT__") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    // No test may reach a paid API because a developer has a key set.
    cmd.env_remove("GEMINI_API_KEY")
        .env_remove("OPENAI_API_KEY");
    cmd
}

/// The built-in sample as a CSV file, written once per test run.
pub fn sample_csv() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("sample.csv");
        std::fs::write(&path, rfm_agent::sample::generate(&Default::default())).unwrap();
        path
    })
}

/// Runs `cmd`, expects success and returns the JSON it printed.
pub fn json_of(mut cmd: Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Runs `command --format json` with `args` and returns the parsed document.
pub fn command_json(command: &str, args: &[&str]) -> Value {
    let mut cmd = bin();
    cmd.arg(command).args(args).args(["--format", "json"]);
    json_of(cmd)
}

/// Runs `segment --format json` with `args` and returns the parsed document.
pub fn segment_json(args: &[&str]) -> Value {
    command_json("segment", args)
}

/// Fails the test with the command's stderr unless it succeeded.
pub fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the binary expecting failure; returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "{args:?} should fail; stderr: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    stderr
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Cluster sizes, sorted.
pub fn sizes(doc: &Value) -> Vec<u64> {
    let mut s: Vec<u64> = doc["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect();
    s.sort();
    s
}

/// Reads customers.csv into (id → (recency, frequency, monetary, cluster)).
pub fn customers(dir: &Path) -> std::collections::BTreeMap<String, (f64, f64, f64, usize)> {
    let mut r = csv::Reader::from_path(dir.join("customers.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, rec_, fr, mo, cl) = (
        col("customer_id"),
        col("recency"),
        col("frequency"),
        col("monetary"),
        col("cluster"),
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[id].to_string(),
                (
                    rec[rec_].parse().unwrap(),
                    rec[fr].parse().unwrap(),
                    rec[mo].parse().unwrap(),
                    rec[cl].parse().unwrap(),
                ),
            )
        })
        .collect()
}

pub fn ledger_rule(doc: &Value, rule: &str) -> Option<u64> {
    doc["ledger"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .map(|r| r["rows"].as_u64().unwrap())
}
