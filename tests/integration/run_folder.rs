//! The run folder's contract read back from what the outputs write.

use std::path::Path;

use rfm_agent::run_folder::*;
use rfm_agent::settings::Settings;

fn sample_run() -> rfm_agent::run::SegmentRun {
    let mut s = Settings::default();
    s.cluster.k = rfm_agent::settings::KChoice::Fixed(3);
    rfm_agent::pipeline::run_segment(&s).unwrap()
}

#[test]
fn a_written_folder_reads_back_as_written() {
    let run = sample_run();
    let dir = tempfile::tempdir().unwrap();
    rfm_agent::output::write_dir(&run, dir.path(), &[], &[]).unwrap();
    let folder = RunFolder::open(dir.path()).unwrap();
    assert_eq!(folder.clusters, run.manifest());
    assert_eq!(folder.clusters.schema, SCHEMA);
    assert_eq!(folder.clusters.clusters.len(), 3);
    assert!(folder.campaigns.is_none());
    let err = anyhow::Error::new(folder.campaigns("batch").unwrap_err());
    let cli = rfm_agent::words::render(&err, rfm_agent::words::FrontEnd::Cli);
    assert!(
        cli.contains("batch needs the campaigns the agent writes; write the folder with `rfm-agent agent --out DIR`"),
        "{cli}"
    );
    let service = rfm_agent::words::render(&err, rfm_agent::words::FrontEnd::Service);
    assert!(!service.contains("--"), "{service}");
}

/// clusters.json with its `schema` field replaced (or removed, for `None`).
fn with_schema(dir: &Path, schema: Option<u32>) {
    let run = sample_run();
    let mut v = serde_json::to_value(run.manifest()).unwrap();
    match schema {
        Some(n) => v["schema"] = n.into(),
        None => {
            v.as_object_mut().unwrap().remove("schema");
        }
    }
    std::fs::write(dir.join("clusters.json"), v.to_string()).unwrap();
}

#[test]
fn another_schema_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    with_schema(dir.path(), Some(SCHEMA + 1));
    let err = RunFolder::open(dir.path()).unwrap_err();
    assert!(matches!(err, FolderError::Schema { found, .. } if found == SCHEMA + 1));
    let msg = err.to_string();
    assert!(
        msg.contains("clusters.json: written with schema 2"),
        "{msg}"
    );
    assert!(msg.contains("use the newer rfm-agent"), "{msg}");

    with_schema(dir.path(), Some(0));
    let msg = RunFolder::open(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("rerun that run with this rfm-agent"), "{msg}");

    with_schema(dir.path(), None);
    let msg = RunFolder::open(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("not an rfm-agent clusters.json (no `schema` field)"),
        "{msg}"
    );
}

#[test]
fn documents_from_before_the_schema_field_read_as_schema_one() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = rfm_core::cluster::elbow::ElbowResult {
        points: vec![],
        recommended: 3,
        rule: "r".into(),
        silhouette_sample: 10,
        fit_sample: 10,
    };
    let mut v = serde_json::to_value(ElbowFile::new(sweep.clone())).unwrap();
    v.as_object_mut().unwrap().remove("schema");
    std::fs::write(dir.path().join("elbow.json"), v.to_string()).unwrap();
    let back: ElbowFile = read(dir.path(), None).unwrap();
    assert_eq!((back.schema, &back.body), (1, &sweep));
}

#[test]
fn a_file_that_is_not_ours_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clusters.json"),
        b"{\"schema\": 1, \"x\": 2}",
    )
    .unwrap();
    let msg = RunFolder::open(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("not an rfm-agent clusters.json (missing field"),
        "{msg}"
    );
    let msg = RunFolder::open(&dir.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("clusters.json: cannot read it"), "{msg}");
}
