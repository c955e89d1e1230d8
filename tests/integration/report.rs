//! Reports: charts (PNG and SVG), report.html and report.md, exports for email tools, the
//! elbow command and `--k auto`, and segment migration with `compare`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::common::{bin, command_json, sample_csv};

const CHARTS: [&str; 5] = [
    "customer_segments",
    "cluster_boxplots",
    "segment_value",
    "predicted_value",
    "elbow",
];

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// (width, height) of a PNG, decoding every pixel.
fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // Not a blank canvas: some pixels are not white.
    assert!(buf.iter().any(|&b| b < 200), "{} is blank", path.display());
    (info.width, info.height)
}

/// Checks every file `agent --out` writes; returns the segment names.
fn check_report(out: &Path) -> Vec<String> {
    let campaigns = read_json(&out.join("campaigns.json"));
    let names: Vec<String> = campaigns["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for chart in CHARTS {
        assert_eq!(
            png_size(&out.join(format!("{chart}.png"))),
            (1200, 800),
            "{chart}"
        );
        let svg = std::fs::read_to_string(out.join(format!("{chart}.svg"))).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{chart}.svg: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(
            doc.descendants().filter(|n| n.has_tag_name("text")).count() > 5,
            "{chart}: text"
        );
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for name in &names {
        let escaped = name
            .replace('&', "&amp;")
            .replace('\'', "&#x27;")
            .replace('<', "&lt;");
        assert!(html.contains(&escaped), "report.html lacks {name}");
    }
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 5);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    for section in [
        "Segments",
        "Clusters",
        "Charts",
        "Cleaning ledger",
        "Run manifest",
    ] {
        assert!(html.contains(&format!("<h2>{section}</h2>")), "{section}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for name in &names {
        assert!(md.contains(name.as_str()), "report.md lacks {name}");
    }
    for chart in CHARTS {
        assert!(md.contains(&format!("({chart}.png)")));
    }
    // The segment files together list every kept customer exactly once.
    let all = csv_rows(&out.join("customers.csv"));
    let mut seen = BTreeMap::new();
    let files: Vec<_> = std::fs::read_dir(out.join("segments")).unwrap().collect();
    assert_eq!(files.len(), names.len());
    for f in files {
        for row in csv_rows(&f.unwrap().path()) {
            assert!(seen.insert(row[0].clone(), row).is_none(), "listed twice");
        }
    }
    assert_eq!(seen.len(), all.len());
    for row in &all {
        assert_eq!(&seen[&row[0]], row);
        assert!(names.contains(&row[1]), "segment column holds the name");
    }
    names
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "customer_id",
            "segment",
            "cluster",
            "recency",
            "frequency",
            "monetary",
            "p_alive",
            "expected_purchases",
            "expected_spend",
            "clv"
        ]
    );
    r.records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn agent_out_writes_charts_reports_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_out(dir.path(), "out", &[]);
    let names = check_report(&out);
    assert_eq!(names.len(), 4);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("£"), "currency from the settings");
    // A later run into the same folder leaves no stale segment list behind; files that are
    // not segment lists stay.
    std::fs::write(out.join("segments/notes.txt"), "mine").unwrap();
    run_out(dir.path(), "out", &["--k", "5"]);
    std::fs::remove_file(out.join("segments/notes.txt")).expect("notes.txt kept");
    assert_eq!(check_report(&out).len(), 5);
}

#[test]
#[ignore = "needs the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn the_reference_data_gets_the_whole_report() {
    let data = crate::reference::data_dir();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let parquet = Path::new(&data).join("online_retail.parquet");
    let run = bin()
        .args(["agent", "--frequency", "lines", "--k", "4", "--input"])
        .arg(&parquet)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    crate::common::assert_ok(&run);
    let names = check_report(&out);
    let set: BTreeSet<_> = names.iter().map(String::as_str).collect();
    assert_eq!(
        set,
        BTreeSet::from(["Champions", "At Risk", "Potential Loyalists", "Hibernating"])
    );
    assert_eq!(csv_rows(&out.join("customers.csv")).len(), 4339);
}

#[test]
fn elbow_reports_every_k_and_k_auto_records_its_choice() {
    let (input, extra): (String, Vec<&str>) = match std::env::var_os("RFM_AGENT_REFERENCE_DATA") {
        Some(d) => (
            Path::new(&d)
                .join("online_retail.parquet")
                .display()
                .to_string(),
            vec![],
        ),
        None => (sample_csv().display().to_string(), vec![]),
    };
    let mut args = vec!["--input", input.as_str(), "--k-range", "2..8"];
    args.extend(extra);
    let e = command_json("elbow", &args);
    let points = e["points"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    let wcss: Vec<f64> = points.iter().map(|p| p["wcss"].as_f64().unwrap()).collect();
    assert!(
        wcss.windows(2).all(|w| w[1] < w[0]),
        "WCSS decreases in k: {wcss:?}"
    );
    for p in points {
        let s = p["silhouette"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&s) && s != 0.0, "{p}");
    }
    let k = e["recommended"].as_u64().unwrap();
    assert!((2..=8).contains(&k));
    assert!(e["rule"].as_str().unwrap().starts_with("elbow"));

    let doc = command_json("segment", &[&args[..], &["--k", "auto"]].concat());
    assert_eq!(doc["params"]["k"].as_u64().unwrap(), k);
    assert_eq!(doc["clusters"].as_array().unwrap().len() as u64, k);
    assert_eq!(doc["k_choice"]["recommended"].as_u64().unwrap(), k);
    assert_eq!(doc["k_choice"]["points"], e["points"]);

    // The table says the same.
    let table = bin().arg("elbow").args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains(&format!("recommended k = {k}")), "{text}");
}

fn run_out(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let r = bin()
        .args(["agent", "--input"])
        .arg(sample_csv())
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    crate::common::assert_ok(&r);
    out
}

fn compare(a: &Path, b: &Path, out: Option<&Path>) -> Value {
    let mut cmd = bin();
    cmd.arg("compare").arg(a).arg(b).args(["--format", "json"]);
    if let Some(o) = out {
        cmd.arg("--out").arg(o);
    }
    crate::common::json_of(cmd)
}

#[test]
fn compare_matches_clusters_and_counts_migration() {
    let dir = tempfile::tempdir().unwrap();
    let full = run_out(dir.path(), "full", &[]);
    // A run with itself: every customer stays, the matrix is diagonal.
    let m = compare(&full, &full, Some(&dir.path().join("cmp")));
    let matrix = m["matrix"].as_array().unwrap();
    let customers = csv_rows(&full.join("customers.csv")).len() as u64;
    let mut diagonal = 0;
    for (i, row) in matrix.iter().enumerate() {
        for (j, v) in row.as_array().unwrap().iter().enumerate() {
            if i == j {
                diagonal += v.as_u64().unwrap();
            } else {
                assert_eq!(v, 0, "off-diagonal {i},{j}");
            }
        }
    }
    assert_eq!(diagonal, customers);
    assert_eq!(png_size(&dir.path().join("cmp/migration.png")), (1200, 800));
    assert!(dir.path().join("cmp/migration.json").is_file());

    // Two snapshots months apart: rows sum to the customers present in both.
    let early = run_out(dir.path(), "early", &["--snapshot", "2011-06-30"]);
    let m = compare(&early, &full, None);
    let ids = |p: &Path| -> BTreeSet<String> {
        csv_rows(&p.join("customers.csv"))
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    };
    let both = ids(&early).intersection(&ids(&full)).count() as u64;
    assert!(both > 500 && both < customers, "{both}");
    let total: u64 = m["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(total, both);
    assert_eq!(m["customers_in_both"].as_u64().unwrap(), both);
}

#[test]
fn compare_needs_run_folders() {
    let dir = tempfile::tempdir().unwrap();
    let err = crate::common::fails(&[
        "compare",
        dir.path().to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        err.contains("clusters.json") && err.contains("--out"),
        "{err}"
    );
}

#[test]
fn a_mapped_email_column_reaches_the_exports() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("with_email.csv");
    let mut r = csv::Reader::from_path(sample_csv()).unwrap();
    let mut w = csv::Writer::from_path(&input).unwrap();
    let mut header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let id_col = header.iter().position(|h| h == "CustomerID").unwrap();
    header.push("E-mail".into());
    w.write_record(&header).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        let mut row: Vec<String> = rec.iter().map(String::from).collect();
        let id = rec[id_col].to_string();
        row.push(if id.is_empty() {
            String::new()
        } else {
            format!("buyer.{id}@example.com")
        });
        w.write_record(&row).unwrap();
    }
    w.flush().unwrap();
    let out = dir.path().join("out");
    let run = bin()
        .args(["segment", "--columns", "email=E-mail", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    crate::common::assert_ok(&run);
    let mut r = csv::Reader::from_path(out.join("customers.csv")).unwrap();
    assert_eq!(r.headers().unwrap().get(6), Some("email"));
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        assert_eq!(rec[6], format!("buyer.{}@example.com", &rec[0]));
        n += 1;
    }
    assert_eq!(n, 3000);
    // A mapped email column that is not in the file is an error naming it.
    let err = crate::common::fails(&[
        "segment",
        "--columns",
        "email=Mail",
        "--input",
        sample_csv().to_str().unwrap(),
    ]);
    assert!(err.contains("email (`Mail`)"), "{err}");
}
