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
    // Every customer bought once: nothing to learn repeat buying from.
    let mut once = String::from("CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n");
    for c in 0..20 {
        once += &format!(
            "{c},{c},2011-0{}-1{} 10:00,1,{}.5\n",
            1 + c % 9,
            c % 10,
            2 + c
        );
    }
    let once = write(dir.path(), "once.csv", once);
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
