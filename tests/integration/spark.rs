//! The Spark engine against real Spark Connect servers: `.ci/run` starts one on `local[2]`
//! (RFM_AGENT_SPARK) and one on a standalone master and worker (RFM_AGENT_SPARK_CLUSTER),
//! both on loopback and both asking for the token in RFM_AGENT_SPARK_TOKEN.

use std::path::Path;
use std::process::Output;

use crate::common::{needs, sizes, std_bin};
use crate::reference::{check_ledger, data_dir};

/// `sc://…/;token=…` for the server in `var`, and the token, when `.ci/run` started it.
fn server(var: &str) -> (String, String) {
    let url = needs(var, "a Spark Connect server");
    let token = needs("RFM_AGENT_SPARK_TOKEN", "the Spark Connect server's token");
    (format!("{url}/;token={token}"), token)
}

/// The binary on Spark, the address (with its token) in SPARK_REMOTE as a user would set it.
fn run(remote: &str, args: &[&str]) -> Output {
    std_bin()
        .args(["segment", "--engine", "spark"])
        .args(args)
        .env("SPARK_REMOTE", remote)
        .output()
        .unwrap()
}

fn json(out: &Output, token: &str) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(token), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn customers_csv(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("customers.csv")).unwrap()
}

/// The local engine's result for the reference file: the document and customers.csv
/// (without the predictive models, which need histories the engines do not return).
fn local(file: &Path, frequency: &str, out: &Path) -> (serde_json::Value, String) {
    let o = std_bin()
        .args(["segment", "--no-predict", "--input", file.to_str().unwrap()])
        .args(["--frequency", frequency, "--k", "4", "--format", "json"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    (json(&o, "\u{0}"), customers_csv(out))
}

/// `args` on Spark give the local result: the same ledger counts, clusters and customers.csv.
fn same_as_local(remote: &str, token: &str, args: &[&str], local: &(serde_json::Value, String)) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let frequency = local.0["params"]["frequency"].as_str().unwrap().to_string();
    let all = [
        args,
        &["--frequency", &frequency, "--k", "4", "--format", "json"],
        &["--out", out.to_str().unwrap()],
    ]
    .concat();
    let doc = json(&run(remote, &all), token);
    check_ledger(&doc, &format!("{args:?}"));
    assert_eq!(sizes(&doc), sizes(&local.0), "{args:?} {frequency}");
    if frequency == "lines" {
        assert_eq!(sizes(&doc), [867, 872, 1222, 1378], "{args:?}");
    }
    assert!(
        customers_csv(&out) == local.1,
        "{args:?} {frequency}: customers.csv differs"
    );
    let note = doc["ledger"]["note"].as_str().unwrap();
    assert!(note.contains("no example rows"), "{note}");
    let reason = doc["predict"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not purchase histories"),
        "{}",
        doc["predict"]
    );
    assert!(
        doc["input"]["path"]
            .as_str()
            .unwrap()
            .starts_with("spark sc://127.0.0.1:")
    );
}

/// The reference Parquet and CSV files, read by the cluster, give the local result.
fn files_same_as_local(
    remote: &str,
    token: &str,
    data: &Path,
    reference: &(serde_json::Value, String),
) {
    for name in ["online_retail.parquet", "online_retail.csv.gz"] {
        let file = data.join(name).display().to_string();
        same_as_local(remote, token, &["--input", &file], reference);
    }
}

#[test]
#[ignore = "needs Spark Connect (RFM_AGENT_SPARK) and the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn parquet_csv_and_a_catalog_table_on_spark_give_the_reference_segments() {
    let ((remote, token), data) = (server("RFM_AGENT_SPARK"), data_dir());
    let parquet = data.join("online_retail.parquet");
    let csv = data.join("online_retail.csv.gz");
    let dir = tempfile::tempdir().unwrap();
    for frequency in ["lines", "invoices"] {
        let reference = local(&csv, frequency, &dir.path().join(frequency));
        files_same_as_local(&remote, &token, &data, &reference);
        if frequency == "lines" {
            // A table in the server's catalog, made here as an operator would.
            let table = format!(
                "CREATE TABLE IF NOT EXISTS rfm_retail USING parquet LOCATION '{}'",
                parquet.display()
            );
            sql(&remote, &table);
            same_as_local(&remote, &token, &["--table", "rfm_retail"], &reference);
            let query = format!(
                "SELECT InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, \
                 CustomerID, Country FROM rfm_retail UNION ALL {}",
                crate::reference::DATED_AFTER_THE_RUN
            );
            let args = [
                "--query",
                &query,
                "--format",
                "json",
                "--frequency",
                "lines",
                "--k",
                "4",
            ];
            let doc = json(&run(&remote, &args), &token);
            crate::reference::check_dated_after_the_run(&doc, &reference.0);
        }
    }
}

/// One statement through the Spark Connect client (off the test's async threads).
fn sql(remote: &str, statement: &str) -> Vec<String> {
    let spark = spark_connect::SparkSessionBuilder::new()
        .remote(remote)
        .get_or_create()
        .unwrap();
    let batches = spark
        .sql(statement)
        .unwrap()
        .collect_record_batches()
        .unwrap();
    let mut out = Vec::new();
    for b in batches {
        use arrow::array::AsArray;
        if b.num_columns() == 0 {
            continue;
        }
        let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        out.extend(c.as_string::<i32>().iter().flatten().map(String::from));
    }
    out
}

#[test]
#[ignore = "needs Spark Connect (RFM_AGENT_SPARK) and the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn a_standalone_cluster_runs_the_job_on_its_executors_with_the_same_result() {
    let ((remote, token), data) = (server("RFM_AGENT_SPARK_CLUSTER"), data_dir());
    // The tasks run in executor processes started by the worker, not in the server.
    let where_ = sql(
        &remote,
        "SELECT DISTINCT reflect('java.lang.System', 'getProperty', 'sun.java.command') \
         FROM range(0, 8, 1, 4)",
    );
    assert!(
        where_
            .iter()
            .all(|c| c.contains("CoarseGrainedExecutorBackend")),
        "{where_:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let csv = data.join("online_retail.csv.gz");
    let reference = local(&csv, "lines", dir.path());
    files_same_as_local(&remote, &token, &data, &reference);
}

/// The message of a run that must fail: exit 1, nothing written, no token in it.
fn refused(remote: &str, token: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = run(
        remote,
        &[args, &["--out", out_dir.to_str().unwrap()]].concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    crate::common::assert_said_once(&stderr);
    assert!(!out_dir.exists(), "{args:?} wrote {}", out_dir.display());
    assert!(!stderr.contains(token), "{stderr}");
    assert!(stderr.lines().count() <= 3, "{stderr}");
    stderr
}

#[test]
#[ignore = "needs Spark Connect (RFM_AGENT_SPARK) and the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn spark_errors_name_the_engine_the_host_and_what_to_do() {
    let ((remote, token), data) = (server("RFM_AGENT_SPARK"), data_dir());
    let parquet = data.join("online_retail.parquet").display().to_string();
    let input = ["--input", parquet.as_str()];
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = remote
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let nowhere = remote.replace(&format!(":{port}/"), &format!(":{closed}/"));
    let e = refused(&nowhere, &token, &input);
    assert!(
        e.contains(&format!("spark sc://127.0.0.1:{closed}: cannot connect")),
        "{e}"
    );

    let wrong = remote.replace(&token, "not-the-token");
    let e = refused(&wrong, &token, &input);
    assert!(
        e.contains("refused the credentials") && e.contains("SPARK_REMOTE"),
        "{e}"
    );
    assert!(!e.contains("not-the-token"), "{e}");

    let e = refused(&remote, &token, &["--table", "no_such_table"]);
    assert!(
        e.contains("TABLE_OR_VIEW_NOT_FOUND") && e.contains("no_such_table"),
        "{e}"
    );

    let text_date = format!(
        "SELECT CustomerID, InvoiceNo, CAST(InvoiceDate AS STRING) AS InvoiceDate, Quantity, \
         UnitPrice FROM parquet.`{parquet}`"
    );
    let e = refused(&remote, &token, &["--query", &text_date]);
    assert!(
        e.contains("column `InvoiceDate` has type string") && e.contains("to_timestamp("),
        "{e}"
    );

    // A query slower than --engine-timeout is stopped.
    let slow = format!(
        "SELECT * FROM parquet.`{parquet}` WHERE reflect('java.lang.Thread', 'sleep', CAST(1 AS BIGINT)) IS NOT NULL"
    );
    let e = refused(
        &remote,
        &token,
        &["--query", &slow, "--engine-timeout", "2"],
    );
    assert!(
        e.contains("no answer within 2 s") && e.contains("--engine-timeout"),
        "{e}"
    );

    // The token never goes on the command line.
    let out = std_bin()
        .args(["segment", "--engine", "spark", "--spark-remote", &remote])
        .args(input)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    crate::common::assert_said_once(&e);
    assert!(e.contains("SPARK_REMOTE") && !e.contains(&token), "{e}");
}

/// The service runs on a Spark source its operator named.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Spark Connect (RFM_AGENT_SPARK) and the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
async fn the_service_runs_on_a_named_spark_source() {
    let ((remote, token), data) = (server("RFM_AGENT_SPARK"), data_dir());
    let source = rfm_agent::settings::SourceSettings {
        engine: rfm_agent::engine::EngineKind::Spark,
        url: remote,
        path: data.join("online_retail.parquet").display().to_string(),
        ..Default::default()
    };
    let run = crate::common::run_on_named_source(source, &token).await;
    assert_eq!(run["clusters"]["input"]["format"], "parquet");
}
