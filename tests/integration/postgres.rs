//! The PostgreSQL engine against a real server: `.ci/run` starts one on loopback with the
//! reference data in the table `retail` and passes its URL (no password) in
//! RFM_AGENT_POSTGRES and the password in RFM_AGENT_POSTGRES_PASSWORD.

use std::process::Output;

use crate::common::{needs, sizes, std_bin};
use crate::reference::{check_ledger, data_dir};

/// The server's URL and password, when `.ci/run` started one.
fn server() -> (String, String) {
    (
        needs("RFM_AGENT_POSTGRES", "a PostgreSQL server"),
        needs(
            "RFM_AGENT_POSTGRES_PASSWORD",
            "the PostgreSQL server's password",
        ),
    )
}

fn run(args: &[&str], password: &str) -> Output {
    std_bin()
        .args(args)
        .env("PGPASSWORD", password)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs PostgreSQL (RFM_AGENT_POSTGRES) and the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn the_reference_table_gives_the_same_segments_as_the_file() {
    let ((url, password), data) = (server(), data_dir());
    let dir = tempfile::tempdir().unwrap();
    let file = data.join("online_retail.csv.gz").display().to_string();
    for frequency in ["lines", "invoices"] {
        let (from_db, from_file) = (dir.path().join("db"), dir.path().join("file"));
        let common = [
            "--frequency",
            frequency,
            "--k",
            "4",
            "--format",
            "json",
            "--out",
        ];
        let db = run(
            &[
                &["segment", "--input", &url, "--table", "retail"][..],
                &common,
                &[from_db.to_str().unwrap()],
            ]
            .concat(),
            &password,
        );
        let stderr = String::from_utf8_lossy(&db.stderr).into_owned();
        assert!(!stderr.contains(&password), "{stderr}");
        let db = json(&db);
        // The engines return no purchase histories: the models are skipped, and said so.
        let reason = db["predict"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("not purchase histories"),
            "{}",
            db["predict"]
        );
        let local = json(&run(
            &[
                &["segment", "--no-predict", "--input", &file][..],
                &common,
                &[from_file.to_str().unwrap()],
            ]
            .concat(),
            "",
        ));
        check_ledger(&db, "postgres");
        assert_eq!(db["input"]["format"], "postgres");
        assert_eq!(sizes(&db), sizes(&local), "{frequency}");
        if frequency == "lines" {
            assert_eq!(sizes(&db), [867, 872, 1222, 1378]);
        }
        let read = |d: &std::path::Path| std::fs::read_to_string(d.join("customers.csv")).unwrap();
        assert_eq!(
            read(&from_db),
            read(&from_file),
            "customers.csv, {frequency}"
        );
        assert!(
            db["ledger"]["note"]
                .as_str()
                .unwrap()
                .contains("no example rows")
        );
    }
    net_returns_and_a_snapshot_give_the_same_ledger(&url, &password, &file);
    let reference = json(&run(
        &[
            "segment",
            "--no-predict",
            "--input",
            &file,
            "--format",
            "json",
        ],
        "",
    ));
    let query = format!(
        "SELECT * FROM retail UNION ALL {}",
        crate::reference::DATED_AFTER_THE_RUN
    );
    let args = [
        "segment", "--input", &url, "--query", &query, "--format", "json",
    ];
    crate::reference::check_dated_after_the_run(&json(&run(&args, &password)), &reference);
}

/// Returns netted (some customers' returns cancel their purchases to exactly 0), free items
/// dropped and an explicit snapshot: the same ledger, rule by rule, and customers as the file.
fn net_returns_and_a_snapshot_give_the_same_ledger(url: &str, password: &str, file: &str) {
    let options = [
        "--returns",
        "net",
        "--drop-zero-price",
        "--snapshot",
        "2011-06-01",
        "--k",
        "3",
        "--format",
        "json",
    ];
    let db = json(&run(
        &[
            &["segment", "--input", url, "--table", "retail"][..],
            &options,
        ]
        .concat(),
        password,
    ));
    let local = json(&run(
        &[&["segment", "--input", file][..], &options].concat(),
        "",
    ));
    let rules = |d: &serde_json::Value| -> Vec<(String, u64)> {
        d["ledger"]["removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["rule"].as_str().unwrap().into(),
                    r["rows"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(rules(&db), rules(&local));
    for key in ["rows_kept", "customers", "returns_netted"] {
        assert_eq!(db["ledger"][key], local["ledger"][key], "{key}");
    }
    assert_eq!(sizes(&db), sizes(&local));
    // Customer 13762 returned all it bought before the snapshot: net value exactly 0.
    assert_eq!(
        crate::common::ledger_rule(&local, "net value <= 0"),
        Some(257)
    );
}

/// The message of a run that must fail: exit 1, nothing written, no password in it.
fn refused(args: &[&str], password: &str, out_dir: &std::path::Path) -> String {
    let out = run(
        &[args, &["--out", out_dir.to_str().unwrap()]].concat(),
        password,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    crate::common::assert_said_once(&stderr);
    assert!(!out_dir.exists(), "{args:?} wrote {}", out_dir.display());
    assert!(
        !password.is_empty() && !stderr.contains(password),
        "{stderr}"
    );
    stderr
}

#[test]
#[ignore = "needs PostgreSQL (RFM_AGENT_POSTGRES); .ci/run provides them"]
fn database_errors_name_the_engine_the_host_and_what_to_do() {
    let (url, password) = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let host = url.trim_start_matches("postgres://");
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();

    // A port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = url.replace(&format!(":{port}/"), &format!(":{closed}/"));
    let e = refused(
        &["segment", "--input", &nowhere, "--table", "retail"],
        &password,
        &out,
    );
    assert!(
        e.contains(&format!("127.0.0.1:{closed}")) && e.contains("cannot connect"),
        "{e}"
    );

    let e = refused(
        &["segment", "--input", &url, "--table", "retail"],
        "not-the-password",
        &out,
    );
    assert!(
        e.contains(host) && e.contains("password authentication failed"),
        "{e}"
    );
    assert!(!e.contains("not-the-password"), "{e}");

    let e = refused(
        &["segment", "--input", &url, "--table", "no_such_table"],
        &password,
        &out,
    );
    assert!(e.contains("\"no_such_table\" does not exist"), "{e}");

    // A password in the URL is refused, and not repeated.
    let with_secret = url.replace("postgres@", "postgres:url-secret@");
    let e = refused(
        &["segment", "--input", &with_secret, "--table", "retail"],
        &password,
        &out,
    );
    assert!(e.contains("PGPASSWORD") && !e.contains("url-secret"), "{e}");

    // A missing column and a number stored as text: named, with what to do.
    let no_customer = "SELECT invoiceno, invoicedate, quantity, unitprice FROM retail";
    let e = refused(
        &["segment", "--input", &url, "--query", no_customer],
        &password,
        &out,
    );
    assert!(
        e.contains("required column(s) missing: customer") && e.contains("--columns"),
        "{e}"
    );
    let text_quantity = "SELECT customerid, invoiceno, invoicedate, quantity::text AS quantity, \
                         unitprice FROM retail";
    let e = refused(
        &["segment", "--input", &url, "--query", text_quantity],
        &password,
        &out,
    );
    assert!(
        e.contains("column `quantity` has type text, not a number"),
        "{e}"
    );

    // Dates stored as text: the column is named, with the cast to write.
    let query = "SELECT customerid, invoiceno, to_char(invoicedate, 'MM/DD/YYYY HH24:MI') AS invoicedate, \
                 quantity, unitprice FROM retail";
    let e = refused(
        &["segment", "--input", &url, "--query", query],
        &password,
        &out,
    );
    assert!(
        e.contains("column `invoicedate` has type text") && e.contains("cast it in --query"),
        "{e}"
    );
}

#[test]
#[ignore = "needs PostgreSQL (RFM_AGENT_POSTGRES); .ci/run provides them"]
fn the_password_file_is_read_and_a_slow_query_times_out() {
    let (url, password) = server();
    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join("pgpass");
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{port}:postgres:postgres:{password}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let some = "SELECT * FROM retail WHERE customerid < 12500";
    let out = std_bin()
        .args([
            "segment", "--input", &url, "--query", some, "--k", "2", "--format", "json",
        ])
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", &pgpass)
        .output()
        .unwrap();
    let doc = json(&out);
    assert!(doc["ledger"]["customers"].as_u64().unwrap() > 50, "{doc}");

    let slow = "SELECT * FROM retail WHERE pg_sleep(0.01) IS NOT NULL";
    let e = refused(
        &[
            "segment",
            "--input",
            &url,
            "--query",
            slow,
            "--engine-timeout",
            "1",
        ],
        &password,
        &dir.path().join("out"),
    );
    assert!(e.contains("statement timeout"), "{e}");
}

/// `sslmode` in the URL, as libpq: the query below has rows only on an encrypted connection.
/// `prefer` (the default) and `require` encrypt without checking the certificate;
/// `verify-full` checks it against PGSSLROOTCERT and the host name, `verify-ca` the CA only.
#[test]
#[ignore = "needs PostgreSQL (RFM_AGENT_POSTGRES); .ci/run provides them"]
fn sslmode_encrypts_and_verify_modes_check_the_certificate() {
    let (url, password) = server();
    let ca = needs(
        "RFM_AGENT_POSTGRES_CA",
        "the test PostgreSQL's CA certificate",
    );
    let tls_only = "SELECT r.* FROM retail r, pg_stat_ssl s \
                    WHERE s.pid = pg_backend_pid() AND s.ssl AND r.customerid < 12700";
    let with = |url: &str, root: Option<&str>| {
        let mut cmd = std_bin();
        cmd.args(["segment", "--input", url, "--query", tls_only])
            .args(["--k", "2", "--format", "json"])
            .env("PGPASSWORD", &password)
            .env_remove("PGSSLROOTCERT");
        if let Some(root) = root {
            cmd.env("PGSSLROOTCERT", root);
        }
        cmd.output().unwrap()
    };
    let customers = |out: &Output| json(out)["ledger"]["customers"].as_u64().unwrap();
    // The certificate is for 127.0.0.1; `localhost` is the same server under another name.
    let by_name = url.replace("127.0.0.1", "localhost");
    for (url, root) in [
        (url.clone(), None),
        (format!("{url}?sslmode=require"), None),
        (format!("{url}?sslmode=verify-full"), Some(ca.as_str())),
        (format!("{by_name}?sslmode=verify-ca"), Some(ca.as_str())),
    ] {
        assert!(customers(&with(&url, root)) > 50, "{url}");
    }
    let failed = |out: Output| {
        assert_eq!(out.status.code(), Some(1));
        let e = String::from_utf8_lossy(&out.stderr).into_owned();
        crate::common::assert_said_once(&e);
        e
    };
    let e = failed(with(&format!("{url}?sslmode=verify-full"), None));
    assert!(
        e.contains("UnknownIssuer") && e.contains("PGSSLROOTCERT"),
        "{e}"
    );
    let e = failed(with(&format!("{by_name}?sslmode=verify-full"), Some(&ca)));
    assert!(e.contains("not valid for name \"localhost\""), "{e}");
    let e = failed(with(&format!("{url}?sslmode=disable"), None));
    assert!(e.contains("no row has a date"), "{e}");
    let e = failed(with(&format!("{url}?sslmode=sometimes"), None));
    assert!(e.contains("verify-full"), "{e}");
}

/// The service reads a source its operator named; a client names it, never a URL.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL (RFM_AGENT_POSTGRES); .ci/run provides them"]
async fn the_service_runs_on_a_named_source() {
    let (url, password) = server();
    let source = rfm_agent::settings::SourceSettings {
        url,
        query: "SELECT * FROM retail WHERE customerid < 12700".into(),
        password: rfm_agent::settings::ApiKey(password.clone()),
        ..Default::default()
    };
    let run = crate::common::run_on_named_source(source, &password).await;
    assert_eq!(run["clusters"]["input"]["format"], "postgres");
}
