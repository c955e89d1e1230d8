//! `rfm-agent clv`: the models fitted on a run's purchase histories, through the binary.

use serde_json::Value;

use crate::common::*;

#[test]
fn clv_fits_the_sample_and_checks_itself_on_a_hold_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let doc: Value = command_json(
        "clv",
        &[
            "--period",
            "week",
            "--calibration-end",
            "2011-09-30",
            "--k",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(doc["schema"], "rfm-agent/clv/1");
    assert_eq!(doc["model"]["period"], "week");
    for key in ["r", "alpha", "a", "b", "log_likelihood"] {
        assert!(
            doc["model"]["bgnbd"][key].is_f64(),
            "{key}: {}",
            doc["model"]
        );
    }
    for key in ["p", "q", "v"] {
        assert!(
            doc["model"]["gamma_gamma"][key].as_f64().unwrap() > 0.0,
            "{key}"
        );
    }
    let cal = &doc["calibration"];
    assert_eq!(cal["end"], "2011-09-30 00:00:00");
    assert!(cal["repeaters"].as_u64().unwrap() < cal["customers"].as_u64().unwrap());
    let h = &doc["holdout"];
    assert_eq!(h["start"], "2011-09-30 00:00:00");
    let (actual, predicted) = (
        h["actual_repeat_purchases"].as_u64().unwrap() as f64,
        h["predicted_repeat_purchases"].as_f64().unwrap(),
    );
    assert!(actual > 0.0 && predicted > 0.0, "{h}");
    let segments = doc["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 3);
    let summed: u64 = segments
        .iter()
        .map(|s| s["holdout_actual"].as_u64().unwrap())
        .sum();
    assert_eq!(summed as f64, actual);
    for s in segments {
        let p = s["mean_p_alive"].as_f64().unwrap();
        assert!(
            (0.0..=1.0).contains(&p) && s["clv"].as_f64().unwrap() > 0.0,
            "{s}"
        );
    }
    // predictions.csv: one row per customer of customers.csv, with the columns named.
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "customer_id,cluster,x,t_x,T,spend,p_alive,expected_purchases,expected_spend,clv"
    );
    assert_eq!(csv.lines().count(), customers(&out).len() + 1);
    let clv: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("clv.json")).unwrap()).unwrap();
    assert_eq!(clv["model"], doc["model"]);
}

#[test]
fn clv_says_why_it_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let once = single_purchases(dir.path());
    let e = fails(&["clv", "--input", &once, "--k", "2"]);
    assert!(
        e.contains("cannot fit the predictive models") && e.contains("more than one period"),
        "{e}"
    );
    let sample = sample_csv().to_str().unwrap().to_string();
    let e = fails(&["clv", "--input", &sample, "--calibration-end", "2001-01-01"]);
    assert!(
        e.contains("before the end of the calibration period"),
        "{e}"
    );
    let e = fails(&["clv", "--input", &sample, "--calibration-end", "someday"]);
    assert!(
        e.contains("--calibration-end `someday` is not a date"),
        "{e}"
    );
    let e = fails(&["clv", "--input", &sample, "--horizon=-5"]);
    assert!(e.contains("--horizon"), "{e}");
    let e = fails(&["clv", "--input", &sample, "--discount-rate", "7"]);
    assert!(e.contains("not a monthly rate"), "{e}");
}

/// A generated transaction file and what `lifetimes` 0.11.3 makes of it (expected values
/// made once by `tests/fixtures/lifetimes/make.py` in a throwaway venv, see its header):
/// the same summaries exactly, and the same parameters and predictions to the optimisers'
/// agreement, for day and week periods.
#[test]
fn clv_agrees_with_lifetimes() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lifetimes");
    let input = fixtures.join("transactions.csv");
    let params: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("params.json")).unwrap())
            .unwrap();
    for period in ["day", "week"] {
        let dir = tempfile::tempdir().unwrap();
        let doc = command_json(
            "clv",
            &[
                "--input",
                input.to_str().unwrap(),
                "--columns",
                "amount=amount",
                "--snapshot",
                "2024-01-01 00:00",
                "--period",
                period,
                "--k",
                "2",
                "--out",
                dir.path().to_str().unwrap(),
            ],
        );
        let close = |got: f64, want: f64, tol: f64, what: &str| {
            assert!(
                (got - want).abs() <= tol * want.abs().max(1e-3),
                "{period} {what}: {got} against {want}"
            );
        };
        for (model, keys) in [
            ("bgnbd", &["r", "alpha", "a", "b"][..]),
            ("gamma_gamma", &["p", "q", "v"][..]),
        ] {
            for k in keys {
                let (got, want) = (&doc["model"][model][k], &params[period][model][k]);
                close(got.as_f64().unwrap(), want.as_f64().unwrap(), 1e-4, k);
            }
        }
        let expected = csv_rows(
            &fixtures.join(format!("expected_{period}.csv")),
            "CustomerID",
        );
        let got = csv_rows(&dir.path().join("predictions.csv"), "customer_id");
        assert_eq!(got.len(), expected.len(), "{period}: customers");
        for (id, want) in &expected {
            let row = &got[id];
            for (ours, theirs) in [
                ("x", "frequency"),
                ("t_x", "recency"),
                ("T", "T"),
                ("spend", "monetary_value"),
            ] {
                close(row[ours], want[theirs], 1e-6, &format!("{id} {ours}"));
            }
            for col in ["p_alive", "expected_purchases", "expected_spend", "clv"] {
                close(row[col], want[col], 1e-4, &format!("{id} {col}"));
            }
        }
    }
}

/// A CSV's numeric columns by the id in `key`.
fn csv_rows(
    path: &std::path::Path,
    key: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let id = rec[headers.iter().position(|h| h == key).unwrap()].to_string();
            let values = headers
                .iter()
                .zip(rec.iter())
                .filter_map(|(h, v)| v.parse::<f64>().ok().map(|v| (h.to_string(), v)))
                .collect();
            (id, values)
        })
        .collect()
}

/// Every customer bought once: nothing to learn repeat buying from.
fn single_purchases(dir: &std::path::Path) -> String {
    let mut once = String::from("CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n");
    for c in 0..20 {
        once += &format!(
            "{c},{c},2011-0{}-1{} 10:00,1,{}.5\n",
            1 + c % 9,
            c % 10,
            2 + c
        );
    }
    write(dir, "once.csv", once)
}

/// The column of customers.csv named `name`, as numbers, with each row's cluster.
fn column(out: &std::path::Path, name: &str) -> Vec<(usize, f64)> {
    let mut r = csv::Reader::from_path(out.join("customers.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (c, v) = (col("cluster"), col(name));
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[c].parse().unwrap(), rec[v].parse().unwrap())
        })
        .collect()
}

/// `segment` fits the models by default: customers.csv, the segment exports, clusters.json
/// and report.html carry the predictions, and they add up across the files.
#[test]
fn segment_predicts_by_default_and_the_files_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let doc = segment_json(&["--k", "3", "--out", out.to_str().unwrap()]);
    let p = &doc["predict"];
    assert_eq!(p["status"], "fitted", "{p}");
    assert_eq!(p["model"]["horizon_days"], 90);
    let segments = p["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 3);
    let header = std::fs::read_to_string(out.join("customers.csv")).unwrap();
    let header = header.lines().next().unwrap().to_string();
    assert!(
        header.ends_with(",p_alive,expected_purchases,expected_spend,clv"),
        "{header}"
    );
    let p_alive = column(&out, "p_alive");
    assert!(p_alive.iter().all(|(_, p)| (0.0..=1.0).contains(p)));
    let clv = column(&out, "clv");
    for s in segments {
        let c = s["cluster"].as_u64().unwrap() as usize;
        let members: Vec<f64> = clv.iter().filter(|(k, _)| *k == c).map(|x| x.1).collect();
        assert_eq!(members.len() as u64, s["customers"].as_u64().unwrap());
        // Cells are rounded to cents: the sum agrees to a cent per customer.
        let summed: f64 = members.iter().sum();
        let want = s["clv"].as_f64().unwrap();
        assert!(
            (summed - want).abs() <= 0.01 * members.len() as f64,
            "{summed} against {want}"
        );
        let mean: f64 = p_alive
            .iter()
            .filter(|(k, _)| *k == c)
            .map(|x| x.1)
            .sum::<f64>()
            / members.len() as f64;
        assert!(
            (mean - s["mean_p_alive"].as_f64().unwrap()).abs() < 1e-3,
            "{s}"
        );
        assert!(s["expected_revenue"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["recent_revenue"].as_f64().unwrap() >= 0.0, "{s}");
    }
    let segment_file = std::fs::read_dir(out.join("segments"))
        .unwrap()
        .next()
        .unwrap();
    let text = std::fs::read_to_string(segment_file.unwrap().path()).unwrap();
    assert!(text.lines().next().unwrap().ends_with(",clv"), "{text}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in [
        "Predicted value by segment",
        "P(alive)",
        "Expected revenue, next 90 d",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    assert!(out.join("predicted_value.png").exists() && out.join("predicted_value.svg").exists());
}

/// `--no-predict` leaves the models out; data that cannot be fitted give a run without
/// predictions that says why.
#[test]
fn segment_without_predictions_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let doc = segment_json(&["--k", "3", "--no-predict", "--out", out.to_str().unwrap()]);
    assert!(doc.get("predict").is_none(), "{}", doc["predict"]);
    let csv = std::fs::read_to_string(out.join("customers.csv")).unwrap();
    assert!(!csv.lines().next().unwrap().contains("p_alive"));
    assert!(!out.join("predicted_value.png").exists());

    let once = single_purchases(dir.path());
    let out = bin()
        .args(["segment", "--input", &once, "--k", "2", "--format", "json"])
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["predict"]["status"], "skipped");
    let reason = doc["predict"]["reason"].as_str().unwrap();
    assert!(reason.contains("more than one period"), "{reason}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no predictions"), "{stderr}");
    let e = fails(&["clv", "--no-predict"]);
    assert!(e.contains("drop --no-predict"), "{e}");
}

/// With a calibration end, `clv --out` draws the model check, and the table shows the
/// hold-out per segment.
#[test]
fn clv_draws_the_model_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = bin()
        .args(["clv", "--calibration-end", "2011-09-30", "--k", "3"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&run);
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(
        table.contains("hold-out actual") && table.contains("hold-out predicted"),
        "{table}"
    );
    let svg = std::fs::read_to_string(out.join("clv_tracking.svg")).unwrap();
    assert!(
        svg.contains("cumulative repeat purchases") && svg.contains("calibration end 2011-09-30")
    );
    assert!(
        std::fs::metadata(out.join("clv_tracking.png"))
            .unwrap()
            .len()
            > 10_000
    );
}

/// The rule agent quotes the models' figures in every rationale.
#[test]
fn the_agent_quotes_the_predictions() {
    let doc = command_json("agent", &["--k", "4"]);
    for c in doc["campaigns"].as_array().unwrap() {
        let why = c["rationale"].as_str().unwrap();
        assert!(
            why.contains("still active,")
                && why.contains("purchases expected per customer in the next 90 days"),
            "{why}"
        );
    }
}
