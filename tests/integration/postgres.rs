//! The PostgreSQL engine against a real server: `.ci/run` starts one on loopback with the
//! reference data in the table `retail` and passes its URL (no password) in
//! RFM_AGENT_POSTGRES and the password in RFM_AGENT_POSTGRES_PASSWORD.

use std::process::Output;

use crate::common::{missing_outside_ci, sizes, std_bin};
use crate::reference::{check_ledger, data_dir};

/// The server's URL and password, when `.ci/run` started one.
fn server() -> Option<(String, String)> {
    match (
        std::env::var("RFM_AGENT_POSTGRES"),
        std::env::var("RFM_AGENT_POSTGRES_PASSWORD"),
    ) {
        (Ok(url), Ok(password)) => Some((url, password)),
        _ => {
            missing_outside_ci("a PostgreSQL server (RFM_AGENT_POSTGRES)");
            None
        }
    }
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
fn the_reference_table_gives_the_same_segments_as_the_file() {
    let (Some((url, password)), Some(data)) = (server(), data_dir()) else {
        return;
    };
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
        let local = json(&run(
            &[
                &["segment", "--input", &file][..],
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
}

/// The message of a run that must fail: exit 1, nothing written, no password in it.
fn refused(args: &[&str], password: &str, out_dir: &std::path::Path) -> String {
    let out = run(
        &[args, &["--out", out_dir.to_str().unwrap()]].concat(),
        password,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!out_dir.exists(), "{args:?} wrote {}", out_dir.display());
    assert!(
        !password.is_empty() && !stderr.contains(password),
        "{stderr}"
    );
    stderr
}

#[test]
fn database_errors_name_the_engine_the_host_and_what_to_do() {
    let Some((url, password)) = server() else {
        return;
    };
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
fn the_password_file_is_read_and_a_slow_query_times_out() {
    let Some((url, password)) = server() else {
        return;
    };
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

/// The service reads a source its operator named; a client names it, never a URL.
#[tokio::test(flavor = "multi_thread")]
async fn the_service_runs_on_a_named_source() {
    use rfm_agent::server::{AppState, app};
    use tower::ServiceExt;
    let Some((url, password)) = server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut settings = rfm_agent::settings::Settings::default();
    settings.llm.backend = rfm_agent::settings::Backend::Off;
    settings.sources.insert(
        "shop".into(),
        rfm_agent::settings::SourceSettings {
            url,
            query: "SELECT * FROM retail WHERE customerid < 12700".into(),
            password: rfm_agent::settings::ApiKey(password.clone()),
            ..Default::default()
        },
    );
    let state = std::sync::Arc::new(AppState::new(dir.path(), settings, None).unwrap());
    let call = |req: axum::http::Request<axum::body::Body>| {
        let state = state.clone();
        async move {
            let resp = app(state).oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default(),
            )
        }
    };
    let get = |uri: &str| {
        axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let post = |fields: &[(&str, &str)]| {
        let fields: Vec<(&str, Option<&str>, &[u8])> = fields
            .iter()
            .map(|(k, v)| (*k, None, v.as_bytes()))
            .collect();
        let (kind, body) = crate::common::multipart_body(&fields);
        axum::http::Request::post("/v1/runs")
            .header("content-type", kind)
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let (_, config) = call(get("/v1/config")).await;
    assert_eq!(config["sources"], serde_json::json!(["shop"]));
    assert!(!config.to_string().contains(&password) && !config.to_string().contains("postgres://"));

    let (status, err) = call(post(&[("source", "elsewhere")])).await;
    assert_eq!(status, 400);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("this service has: shop"),
        "{err}"
    );
    let (status, err) = call(post(&[("url", "postgres://evil@10.0.0.1/x")])).await;
    assert_eq!(status, 400, "{err}");

    let (status, started) = call(post(&[("source", "shop"), ("k", "2")])).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let mut run = serde_json::Value::Null;
    for _ in 0..600 {
        run = call(get(&format!("/v1/runs/{id}"))).await.1;
        if matches!(run["run"]["status"].as_str(), Some("done" | "failed")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(run["run"]["status"], "done", "{run}");
    assert_eq!(run["clusters"]["input"]["format"], "postgres");
    assert_eq!(run["clusters"]["clusters"].as_array().unwrap().len(), 2);
    assert!(run["ledger"]["customers"].as_u64().unwrap() > 100, "{run}");
    assert!(!run.to_string().contains(&password));
}
