//! Snapshots (insta) of the texts people read: every `--help`, the `segment` table, and
//! `report.md` of the built-in sample (the OpenAPI document's snapshot is in server.rs).
//! Review a change in the diff like code; `INSTA_UPDATE=always cargo test` rewrites them.

use crate::common::*;

/// Stdout of a successful run of the binary.
fn stdout(args: &[&str]) -> String {
    let out = std_bin().args(args).output().unwrap();
    assert_ok(&out);
    String::from_utf8(out.stdout).unwrap()
}

/// Settings that hide what changes from run to run: the version and temporary folders.
fn filtered() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(env!("CARGO_PKG_VERSION")), "[version]");
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[tmp]");
    s
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

#[test]
fn help_texts() {
    let _guard = filtered().bind_to_scope();
    insta::assert_snapshot!("help", stdout(&["--help"]));
    for command in [
        "segment",
        "agent",
        "sample",
        "convert",
        "elbow",
        "clv",
        "compare",
        "batch",
        "serve",
        "healthcheck",
    ] {
        insta::assert_snapshot!(format!("help_{command}"), stdout(&[command, "--help"]));
    }
}

#[test]
fn segment_table_and_report_of_the_sample() {
    let _guard = filtered().bind_to_scope();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let table = stdout(&["segment", "--out", &out.display().to_string()]);
    insta::assert_snapshot!("segment_table", table);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    insta::assert_snapshot!("report_md", report);
}
