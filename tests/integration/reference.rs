//! The real UCI Online Retail data (read from RFM_AGENT_REFERENCE_DATA, which .ci/run sets):
//! ledger figures and the reference clusters, from Parquet, gzipped CSV, XLSX and a
//! Latin-1 CSV with decimal customer ids.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::*;

/// (customers, mean recency, mean frequency in lines, mean monetary), from shared/data/README.md.
const REFERENCE: [(f64, f64, f64, f64); 4] = [
    (867.0, 12.91, 283.11, 7042.88),
    (872.0, 19.89, 38.75, 612.06),
    (1222.0, 96.35, 80.25, 1522.39),
    (1378.0, 185.17, 14.96, 298.37),
];

/// The folder of the reference data (`online_retail.parquet`, `online_retail.csv.gz`).
pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(needs("RFM_AGENT_REFERENCE_DATA", "the reference data"))
}

pub(crate) fn check_ledger(doc: &Value, what: &str) {
    let l = &doc["ledger"];
    assert_eq!(l["rows_in"], 541_909, "{what}");
    assert_eq!(l["rows_kept"], 397_924, "{what}");
    assert_eq!(l["customers"], 4_339, "{what}");
    assert_eq!(
        ledger_rule(doc, "missing customer"),
        Some(135_080),
        "{what}"
    );
}

pub(crate) fn check_clusters(doc: &Value, what: &str) {
    let mut got: Vec<(f64, f64, f64, f64)> = doc["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["size"].as_f64().unwrap(),
                c["recency"]["mean"].as_f64().unwrap(),
                c["frequency"]["mean"].as_f64().unwrap(),
                c["monetary"]["mean"].as_f64().unwrap(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(got.len(), REFERENCE.len(), "{what}: {got:?}");
    for (g, r) in got.iter().zip(REFERENCE) {
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b;
        assert!(close(g.0, r.0, 0.01), "{what}: size {g:?} vs {r:?}");
        assert!(close(g.1, r.1, 0.02), "{what}: recency {g:?} vs {r:?}");
        assert!(close(g.2, r.2, 0.02), "{what}: frequency {g:?} vs {r:?}");
        assert!(close(g.3, r.3, 0.02), "{what}: monetary {g:?} vs {r:?}");
    }
}

#[test]
#[ignore = "needs the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn parquet_and_gzipped_csv_reproduce_the_reference() {
    let dir = data_dir();
    for name in ["online_retail.parquet", "online_retail.csv.gz"] {
        let path = dir.join(name).display().to_string();
        let doc = segment_json(&["--input", &path, "--frequency", "lines", "--k", "4"]);
        check_ledger(&doc, name);
        check_clusters(&doc, name);
        assert_eq!(ledger_rule(&doc, "cancellation"), Some(8_905), "{name}");
        // The usual definition (distinct invoices) runs on the same rows.
        let inv = segment_json(&["--input", &path]);
        check_ledger(&inv, name);
        assert_eq!(inv["params"]["frequency"], "invoices");
    }
}

#[test]
#[ignore = "needs the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn xlsx_and_latin1_copies_reproduce_the_reference() {
    let dir = data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let parquet = dir.join("online_retail.parquet").display().to_string();
    let xlsx = tmp.path().join("Online Retail.xlsx").display().to_string();
    let latin = tmp
        .path()
        .join("online_retail_latin1.csv")
        .display()
        .to_string();
    bin()
        .args(["convert", "--input", &parquet, "--out", &xlsx])
        .assert()
        .success();
    bin()
        .args([
            "convert",
            "--input",
            &parquet,
            "--out",
            &latin,
            "--latin1",
            "--float-ids",
        ])
        .assert()
        .success();
    let raw = std::fs::read(&latin).unwrap();
    assert!(
        std::str::from_utf8(&raw).is_err(),
        "the copy really is Latin-1"
    );
    assert!(String::from_utf8_lossy(&raw).contains(",17850.0,"));

    let doc = segment_json(&["--input", &xlsx, "--frequency", "lines"]);
    assert_eq!(doc["input"]["sheet"], "Online Retail");
    check_ledger(&doc, "xlsx");
    check_clusters(&doc, "xlsx");
    let doc = segment_json(&["--input", &latin, "--frequency", "lines"]);
    assert_eq!(doc["input"]["encoding"], "latin-1");
    check_ledger(&doc, "latin-1");
    check_clusters(&doc, "latin-1");
}

/// The row the engines' tests add to the reference data through `--query`: a purchase dated
/// 31 December 9999, a typo that must not move the snapshot (issue 30).
pub(crate) const DATED_AFTER_THE_RUN: &str =
    "SELECT '999999', 'X', 'x', 1, timestamp '9999-12-31 10:00:00', 1.5, 17850.0, 'UK'";

/// `doc` read the reference data plus [`DATED_AFTER_THE_RUN`]: that row alone is set aside,
/// by its own ledger line, and the snapshot and kept rows are those of `reference`.
pub(crate) fn check_dated_after_the_run(doc: &Value, reference: &Value) {
    assert_eq!(
        ledger_rule(doc, "dated after the run"),
        Some(1),
        "{}",
        doc["ledger"]
    );
    assert_eq!(doc["params"]["snapshot"], reference["params"]["snapshot"]);
    assert_eq!(doc["ledger"]["rows_kept"], reference["ledger"]["rows_kept"]);
    assert_eq!(doc["ledger"]["customers"], reference["ledger"]["customers"]);
}
