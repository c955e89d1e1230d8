//! Options: returns, frequency definitions, snapshot, outputs and settings layers.

use crate::common::*;

const TX: &str = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
536365,A,MUG,2,12/1/2010 8:26,5,17850,UK\n\
536365,B,JUG,1,12/1/2010 8:26,10,17850,UK\n\
536370,A,MUG,1,12/3/2010 9:00,5,17850,UK\n\
C536371,B,JUG,-1,12/4/2010 9:00,10,17850,UK\n\
536372,A,MUG,4,12/5/2010 10:00,5,12000,UK\n\
C536373,A,MUG,-4,12/6/2010 10:00,5,12000,UK\n\
536374,A,MUG,1,12/9/2010 12:00,3,13000,UK\n";

fn run_to(dir: &std::path::Path, extra: &[&str]) -> (serde_json::Value, Rfm) {
    let input = write(dir, "tx.csv", TX);
    let out = dir.join(format!(
        "out{}",
        extra.join("_").replace(['-', ' ', ':'], "")
    ));
    let mut args = vec![
        "--input",
        input.as_str(),
        "--k",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let doc = segment_json(&args);
    (doc, customers(&out))
}

#[test]
fn frequency_invoices_or_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (_, inv) = run_to(dir.path(), &[]);
    assert_eq!(inv["17850"].1, 2.0);
    let (doc, lines) = run_to(dir.path(), &["--frequency", "lines"]);
    assert_eq!(lines["17850"].1, 3.0);
    assert_eq!(doc["params"]["frequency"], "lines");
}

#[test]
fn returns_dropped_or_netted() {
    let dir = tempfile::tempdir().unwrap();
    let (drop, c) = run_to(dir.path(), &[]);
    assert_eq!(ledger_rule(&drop, "cancellation"), Some(2));
    assert_eq!(c["17850"].2, 25.0);
    assert_eq!(c["12000"].2, 20.0);
    let (net, c) = run_to(dir.path(), &["--returns", "net"]);
    assert_eq!(net["ledger"]["returns_netted"], 2);
    assert_eq!(c["17850"].2, 15.0, "the returned jug is subtracted");
    assert!(!c.contains_key("12000"), "returned everything: net value 0");
    assert_eq!(ledger_rule(&net, "net value <= 0"), Some(2));
    assert_eq!(net["ledger"]["rows_kept"], 5);
    assert_eq!(c["17850"].1, 2.0, "returns do not count as purchases");
}

#[test]
fn snapshot_sets_recency_and_leaves_out_later_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (doc, c) = run_to(dir.path(), &[]);
    assert_eq!(doc["params"]["snapshot"], "2010-12-10 12:00:00");
    assert_eq!(c["13000"].0, 1.0);
    assert_eq!(
        c["17850"].0, 7.0,
        "12/3 9:00 to 12/10 12:00 is 7 whole days"
    );
    let (doc, c) = run_to(dir.path(), &["--snapshot", "2010-12-06"]);
    assert_eq!(ledger_rule(&doc, "after snapshot"), Some(1));
    assert!(!c.contains_key("13000"));
    assert_eq!(c["12000"].0, 0.0);
    assert_eq!(doc["params"]["snapshot_source"], "given");
}

#[test]
fn out_dir_holds_complete_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("res");
    let csv = sample_csv().display().to_string();
    let doc = segment_json(&["--input", &csv, "--out", out.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cluster_boxplots.png",
            "cluster_boxplots.svg",
            "clusters.json",
            "customer_segments.png",
            "customer_segments.svg",
            "customers.csv",
            "elbow.png",
            "elbow.svg",
            "predicted_value.png",
            "predicted_value.svg",
            "report.html",
            "report.md",
            "segment_value.png",
            "segment_value.svg",
            "segments",
        ]
    );
    // Without the agent, segments are named by cluster number.
    let mut segments: Vec<String> = std::fs::read_dir(out.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    segments.sort();
    assert_eq!(
        segments,
        [
            "cluster-0.csv",
            "cluster-1.csv",
            "cluster-2.csv",
            "cluster-3.csv"
        ]
    );
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("clusters.json")).unwrap()).unwrap();
    assert_eq!(file["clusters"], doc["clusters"]);
    for key in ["version", "input", "params", "ledger", "clusters"] {
        assert!(file.get(key).is_some(), "{key}");
    }
    assert_eq!(file["input"]["sha256"].as_str().unwrap().len(), 64);
    for key in ["rows_in", "rows_kept", "customers", "removed"] {
        assert!(file["ledger"].get(key).is_some(), "{key}");
    }
    let c0 = &file["clusters"][0];
    for key in [
        "id",
        "size",
        "share",
        "revenue",
        "revenue_share",
        "recency",
        "frequency",
        "monetary",
        "centroid",
    ] {
        assert!(c0.get(key).is_some(), "{key}");
    }
    assert!(c0["recency"]["median"].is_number());
    let ledger = &file["ledger"];
    let removed: u64 = ledger["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(
        removed + ledger["rows_kept"].as_u64().unwrap(),
        ledger["rows_in"].as_u64().unwrap()
    );
    let c = customers(&out);
    assert_eq!(c.len() as u64, ledger["customers"].as_u64().unwrap());
}

#[test]
fn csv_and_table_formats() {
    let csv = sample_csv().display().to_string();
    let out = bin()
        .args(["segment", "--input", &csv, "--format", "csv", "--k", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("id,size,share,revenue"), "{text}");
    assert_eq!(text.lines().count(), 4);
}

#[test]
fn settings_layers_flags_over_env_over_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sample_csv().display().to_string();
    let cfg = write(
        dir.path(),
        "my.toml",
        "[cluster]\nk = 2\n[rfm]\nfrequency = \"lines\"\n",
    );
    let k = |doc: &serde_json::Value| doc["clusters"].as_array().unwrap().len();
    let run = |env: Option<&str>, extra: &[&str]| {
        let mut cmd = bin();
        if let Some(v) = env {
            cmd.env("RFM_AGENT__CLUSTER__K", v);
        }
        cmd.args([
            "--config", &cfg, "segment", "--input", &csv, "--format", "json",
        ])
        .args(extra);
        json_of(cmd)
    };
    let file = run(None, &[]);
    assert_eq!(k(&file), 2);
    assert_eq!(file["params"]["frequency"], "lines");
    assert_eq!(k(&run(Some("3"), &[])), 3);
    assert_eq!(k(&run(Some("3"), &["--k", "5"])), 5);
}

#[test]
fn same_clusters_on_one_thread_and_many() {
    let csv = sample_csv().display().to_string();
    let run = |threads: &str| {
        let mut cmd = bin();
        cmd.env("RAYON_NUM_THREADS", threads)
            .env("POLARS_MAX_THREADS", threads)
            .args(["segment", "--input", &csv, "--format", "json", "--k", "5"]);
        let doc = json_of(cmd);
        (doc["clusters"].clone(), doc["kmeans"]["inertia"].clone())
    };
    assert_eq!(run("1"), run("4"));
}
