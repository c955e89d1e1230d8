//! The rule-based agent: names, campaigns.json, templates and their override.

use serde_json::Value;

use crate::common::*;

fn agent_json(args: &[&str]) -> Value {
    command_json("agent", args)
}

fn names(doc: &Value) -> Vec<String> {
    doc["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sample_gets_distinct_names_and_complete_campaigns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let csv = sample_csv().display().to_string();
    let doc = agent_json(&["--input", &csv, "--k", "6", "--out", out.to_str().unwrap()]);
    let mut n = names(&doc);
    assert_eq!(n.len(), 6);
    n.sort();
    n.dedup();
    assert_eq!(n.len(), 6, "names are unique: {:?}", names(&doc));
    assert_eq!(doc["summary"]["backend"], "rules");
    for c in doc["campaigns"].as_array().unwrap() {
        assert_eq!(c["source"], "rules");
        assert!(
            c["rationale"].as_str().unwrap().contains("Median recency"),
            "{c}"
        );
        assert!(!c["strategy"].as_str().unwrap().is_empty());
        assert!(!c["channels"].as_array().unwrap().is_empty());
        let subject = c["email"]["subject"].as_str().unwrap();
        assert!(
            subject.chars().count() <= 78 && !subject.is_empty(),
            "{subject}"
        );
        assert!(
            c["email"]["body"]
                .as_str()
                .unwrap()
                .contains("{{first_name}}")
        );
    }
    let file: Value =
        serde_json::from_slice(&std::fs::read(out.join("campaigns.json")).unwrap()).unwrap();
    assert_eq!(file["campaigns"], doc["campaigns"]);
    assert!(out.join("clusters.json").is_file() && out.join("customers.csv").is_file());
}

#[test]
fn markdown_and_table_formats() {
    let csv = sample_csv().display().to_string();
    let md = bin()
        .args(["agent", "--input", &csv, "--format", "markdown"])
        .output()
        .unwrap();
    assert!(md.status.success());
    let md = String::from_utf8(md.stdout).unwrap();
    assert_eq!(md.matches("\n## Cluster ").count(), 4, "{md}");
    let table = bin().args(["agent", "--input", &csv]).output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("Segments") && table.contains("subject:"),
        "{table}"
    );
}

#[test]
fn prompts_folder_overrides_the_templates() {
    let dir = tempfile::tempdir().unwrap();
    let built_in = std::fs::read_to_string("prompts/segments.toml").unwrap();
    let edited = built_in.replace("subject = \"", "subject = \"[{{ customers }}] ");
    write(dir.path(), "segments.toml", edited);
    let csv = sample_csv().display().to_string();
    let doc = agent_json(&["--input", &csv, "--prompts", dir.path().to_str().unwrap()]);
    for c in doc["campaigns"].as_array().unwrap() {
        let subject = c["email"]["subject"].as_str().unwrap();
        assert!(
            subject.starts_with('[')
                && subject[1..]
                    .split_once("] ")
                    .is_some_and(|(n, _)| n.parse::<u64>().is_ok()),
            "{subject}"
        );
    }
    // A broken template or a missing segment is a clear error, whether or not it is used.
    let prompts = dir.path().to_str().unwrap().to_string();
    let with_prompts = |text: String, config: Option<&str>| {
        write(dir.path(), "segments.toml", text);
        let mut cmd = bin();
        if let Some(cfg) = config {
            cmd.args(["--config", cfg]);
        }
        cmd.args(["agent", "--input", &csv, "--prompts", &prompts])
            .output()
            .unwrap()
    };
    let stderr = |out: std::process::Output| {
        assert_eq!(out.status.code(), Some(1));
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        crate::common::assert_said_once(&e);
        e
    };
    let e = stderr(with_prompts(
        built_in.replace("{{ first_name }}, we miss you", "{{ first_name "),
        None,
    ));
    assert!(
        e.contains("segments.toml: template for `at_risk.subject` does not render"),
        "{e}"
    );
    let e = stderr(with_prompts(
        built_in.replace("[lost]", "[lost_and_gone]"),
        None,
    ));
    assert!(e.contains("segment `lost` has no templates"), "{e}");
    // Copy that invents an offer is refused, unless the offer is approved in the settings.
    let offer = built_in.replace(
        "body = \"\"\"Hi {{ first_name }},",
        "body = \"\"\"Hi {{ first_name }}, take 25 % off today.",
    );
    let e = stderr(with_prompts(offer.clone(), None));
    assert!(
        e.contains("email is not grounded: body: the number 25 is not in the cluster's figures"),
        "{e}"
    );
    assert!(e.contains("[agent] offers"), "{e}");
    let cfg = write(
        dir.path(),
        "offers.toml",
        "[agent]\noffers = [\"25 % off\"]\n",
    );
    let ok = with_prompts(offer, Some(&cfg));
    crate::common::assert_ok(&ok);
    let e = fails(&["agent", "--input", &csv, "--prompts", "/nonexistent"]);
    assert!(
        e.contains("/nonexistent/segments.toml: cannot read the prompts"),
        "{e}"
    );
}

#[test]
#[ignore = "needs the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn reference_clusters_get_the_expected_names() {
    let dir = crate::reference::data_dir();
    let path = dir.join("online_retail.parquet").display().to_string();
    let doc = agent_json(&["--input", &path, "--frequency", "lines", "--k", "4"]);
    let out = bin()
        .args([
            "segment",
            "--input",
            &path,
            "--frequency",
            "lines",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let seg: Value = serde_json::from_slice(&out.stdout).unwrap();
    let size_of = |cluster: &Value| {
        seg["clusters"][cluster.as_u64().unwrap() as usize]["size"]
            .as_u64()
            .unwrap()
    };
    for c in doc["campaigns"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let size = size_of(&c["cluster"]);
        // The reference cluster this one is (closest to) by size.
        let reference = [867u64, 872, 1222, 1378]
            .into_iter()
            .min_by_key(|n| size.abs_diff(*n))
            .unwrap();
        assert!(size.abs_diff(reference) * 100 <= reference, "{size}");
        match reference {
            867 => assert_eq!(name, "Champions"),
            1222 => assert!(["At Risk", "Can't Lose Them"].contains(&name), "{name}"),
            1378 => assert!(["Lost", "Hibernating"].contains(&name), "{name}"),
            _ => assert!(
                ![
                    "Champions",
                    "At Risk",
                    "Can't Lose Them",
                    "Lost",
                    "Hibernating"
                ]
                .contains(&name),
                "{name}"
            ),
        }
    }
}
