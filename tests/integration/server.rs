//! The service in-process: `app(state)` driven with `tower::ServiceExt::oneshot`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use rfm_agent::server::{AppState, app};
use rfm_agent::settings::Settings;

use crate::common::multipart_body;
use crate::llm::{Api, KEY};

fn state_with(dir: &Path, token: Option<&str>, settings: Settings) -> Arc<AppState> {
    let state = AppState::new(dir, settings, token.map(String::from)).unwrap();
    Arc::new(state.with_runner(assert_cmd::cargo::cargo_bin("rfm-agent")))
}

fn state(dir: &Path) -> Arc<AppState> {
    let mut s = Settings::default();
    s.llm.backend = rfm_agent::settings::Backend::Off;
    state_with(dir, None, s)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
    /// The error's words, each clause said once.
    fn error(&self) -> String {
        let e = self.json()["error"].as_str().unwrap_or("").to_string();
        crate::common::assert_clauses_once(&e);
        e
    }
}

async fn call(s: &Arc<AppState>, req: Request<Body>) -> Reply {
    let resp = app(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// A form field: name, file name (for files), content.
type Field<'a> = (&'a str, Option<&'a str>, &'a [u8]);

fn upload(fields: &[Field]) -> Request<Body> {
    let (kind, body) = multipart_body(fields);
    Request::post("/v1/runs")
        .header(header::CONTENT_TYPE, kind)
        .body(Body::from(body))
        .unwrap()
}

fn post_json(uri: &str, v: Value) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

async fn start(s: &Arc<AppState>, fields: &[Field<'_>]) -> String {
    let r = call(s, upload(fields)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/v1/runs/{}", r.json()["id"].as_str().unwrap())
    );
    r.json()["id"].as_str().unwrap().to_string()
}

/// Polls until the run has finished; returns the last detail and every progress seen.
async fn wait_done(s: &Arc<AppState>, id: &str) -> (Value, Vec<(String, u64)>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let r = call(s, get(&format!("/v1/runs/{id}"))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        let run = &v["run"];
        seen.push((
            run["progress"].as_str().unwrap().to_string(),
            run["percent"].as_u64().unwrap(),
        ));
        match run["status"].as_str().unwrap() {
            "done" | "failed" => return (v, seen),
            _ => {
                assert!(
                    start.elapsed() < Duration::from_secs(180),
                    "run did not finish: {v}"
                );
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    }
}

fn names(detail: &Value) -> Vec<String> {
    detail["campaigns"]["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_run_progress_results_files_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    assert_eq!(call(&s, get("/healthz")).await.status, StatusCode::OK);
    assert_eq!(call(&s, get("/readyz")).await.status, StatusCode::OK);
    let csv = std::fs::read(crate::common::sample_csv()).unwrap();
    let id = start(
        &s,
        &[
            ("file", Some("sample.csv"), &csv),
            ("k", None, b"4"),
            ("frequency", None, b"lines"),
        ],
    )
    .await;
    let (run, seen) = wait_done(&s, &id).await;
    assert_eq!(run["run"]["status"], "done", "{run}");
    assert_eq!(run["run"]["percent"], 100);
    assert_eq!(run["run"]["input_name"], "sample.csv");
    // Progress moves forward through named steps.
    let percents: Vec<u64> = seen.iter().map(|(_, p)| *p).collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        seen.iter()
            .any(|(p, _)| p == "writing campaigns" || p.contains("report") || p.contains("RFM")),
        "{seen:?}"
    );
    // The results: ledger, clusters, campaigns, charts, files.
    assert_eq!(
        run["ledger"]["rows_in"],
        run["clusters"]["ledger"]["rows_in"]
    );
    assert!(run["ledger"]["rows_kept"].as_u64().unwrap() > 0);
    assert_eq!(run["clusters"]["params"]["frequency"], "lines");
    assert_eq!(names(&run).len(), 4);
    assert_eq!(run["charts"].as_array().unwrap().len(), 5);
    assert_eq!(run["clusters"]["predict"]["status"], "fitted");
    let files: Vec<String> = run["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "report.html",
        "customers.csv",
        "campaigns.json",
        "customer_segments.png",
    ] {
        assert!(files.contains(&want.to_string()), "{files:?}");
    }
    let segment_file = files.iter().find(|f| f.starts_with("segments/")).unwrap();
    let r = call(&s, get(&format!("/v1/runs/{id}/files/{segment_file}"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().starts_with("customer_id,"));
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let r = call(
        &s,
        get(&format!("/v1/runs/{id}/files/customer_segments.png")),
    )
    .await;
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    assert!(r.body.starts_with(b"\x89PNG"));
    let r = call(&s, get(&format!("/v1/runs/{id}/files/report.html"))).await;
    assert!(r.text().contains(&names(&run)[0]));
    let list = call(&s, get("/v1/runs")).await.json();
    assert_eq!(list["runs"].as_array().unwrap().len(), 1);
    // Traversal and unknown ids are 404, never a file outside the run's outputs.
    for uri in [
        format!("/v1/runs/{id}/files/..%2F..%2Fruns.sqlite3"),
        format!("/v1/runs/{id}/files/../input.csv"),
        format!("/v1/runs/{id}/files/segments/../../input.csv"),
        format!("/v1/runs/{id}/files/.hidden"),
        format!("/v1/runs/{id}/files/other/x.csv"),
        "/v1/runs/..%2F..%2Fetc/files/passwd".to_string(),
        "/v1/runs/0123456789ABCDEF".to_string(),
        "/v1/runs/0123456789abcdef".to_string(),
    ] {
        let r = call(&s, get(&uri)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!r.error().is_empty(), "{uri}: a 404 says what is missing");
    }
    let r = call(
        &s,
        Request::delete(format!("/v1/runs/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(!dir.path().join("runs").join(&id).exists());
    assert_eq!(
        call(&s, get(&format!("/v1/runs/{id}"))).await.status,
        StatusCode::NOT_FOUND
    );
    let r = call(
        &s,
        Request::delete(format!("/v1/runs/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_say_what_to_do_and_failed_runs_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let csv = std::fs::read(crate::common::sample_csv()).unwrap();
    let cases: Vec<(Vec<Field>, &str)> = vec![
        (vec![("file", Some("notes.exe"), b"x")], "upload a .csv"),
        (vec![("file", Some("empty.csv"), b"")], "is empty"),
        (vec![], "no file"),
        (
            vec![("sample", None, b"true"), ("file", Some("a.csv"), &csv)],
            "one of a file, sample=true or source=NAME",
        ),
        (
            vec![("sample", None, b"true"), ("k", None, b"21")],
            "between 1 and 20",
        ),
        (
            vec![("sample", None, b"true"), ("frequency", None, b"daily")],
            "invoices",
        ),
        (
            vec![("sample", None, b"true"), ("colour", None, b"red")],
            "unknown option `colour`",
        ),
        (
            vec![("sample", None, b"true"), ("openai_api_key", None, b"sk-1")],
            "cannot be set through the API",
        ),
        (
            vec![("sample", None, b"true"), ("llm", None, b"gemini")],
            "not set up on this service",
        ),
        (
            vec![("sample", None, b"true"), ("columns", None, b"shoe=Size")],
            "shoe",
        ),
    ];
    for (fields, words) in cases {
        let r = call(&s, upload(&fields)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{words}: {}", r.text());
        assert!(
            r.error().contains(words),
            "{:?} should say {words:?}",
            r.error()
        );
    }
    // No run was recorded for a refused request.
    assert!(
        call(&s, get("/v1/runs")).await.json()["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A file the pipeline rejects fails the run with the reason in words, without the
    // service's own paths.
    let id = start(
        &s,
        &[(
            "file",
            Some("shop.csv"),
            b"Client,When,Total\n1,2011-01-01,5\n",
        )],
    )
    .await;
    let (run, _) = wait_done(&s, &id).await;
    assert_eq!(run["run"]["status"], "failed");
    let error = run["run"]["error"].as_str().unwrap();
    crate::common::assert_clauses_once(error);
    assert!(error.contains("the uploaded file"), "{error}");
    assert!(
        error.contains("CustomerID") || error.contains("customer"),
        "{error}"
    );
    assert!(!error.contains(dir.path().to_str().unwrap()), "{error}");
    assert!(
        error.contains("Column names") && !error.contains("--columns"),
        "{error}"
    );
    // Unknown routes get a JSON 404 that points at the API description.
    let r = call(&s, get("/v2/nothing")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error().contains("openapi.json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn column_mapping_and_options_reach_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let csv = std::fs::read_to_string(crate::common::sample_csv()).unwrap();
    let (header, rest) = csv.split_once('\n').unwrap();
    assert!(header.contains("CustomerID") && header.contains("InvoiceDate"));
    let renamed = format!(
        "{}\n{rest}",
        header
            .replace("CustomerID", "Client")
            .replace("InvoiceDate", "Ordered At")
    );
    let id = start(
        &s,
        &[
            ("file", Some("renamed.csv"), renamed.as_bytes()),
            ("columns", None, b"customer=Client,date=Ordered At"),
            ("snapshot", None, b"2011-12-31"),
            ("k", None, b"3"),
        ],
    )
    .await;
    let (run, _) = wait_done(&s, &id).await;
    assert_eq!(run["run"]["status"], "done", "{run}");
    let params = &run["clusters"]["params"];
    assert_eq!(params["columns"]["customer"], "Client");
    assert_eq!(params["columns"]["date"], "Ordered At");
    assert_eq!(params["k"], 3);
    assert!(
        params["snapshot"]
            .as_str()
            .unwrap()
            .starts_with("2011-12-31"),
        "{params}"
    );
    assert_eq!(names(&run).len(), 3);
    assert_eq!(
        run["run"]["options"]["columns"],
        "customer=Client,date=Ordered At"
    );
}

/// The dashboard names the export a chosen file's header is recognised as, with the same
/// rules as a run; a run takes the preset and currency options.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_names_the_export_it_recognises() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let stripe = crate::exports::stripe_fixture();
    let header = stripe.lines().next().unwrap();
    let r = call(&s, post_json("/v1/columns", json!({ "header": header }))).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["preset"], "stripe", "{doc}");
    assert_eq!(doc["label"], "Stripe payments export");
    assert_eq!(doc["columns"]["customer"], "Customer ID");
    let none = call(
        &s,
        post_json("/v1/columns", json!({ "header": header, "preset": "none" })),
    )
    .await
    .json();
    assert!(
        none["error"].as_str().unwrap().contains("Column names"),
        "{none}"
    );
    let odd = call(&s, post_json("/v1/columns", json!({ "header": "a;b;c" })))
        .await
        .json();
    assert!(odd["preset"].is_null() && odd["error"].is_string(), "{odd}");
    let bad = call(&s, post_json("/v1/columns", json!({ "head": header }))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let id = start(
        &s,
        &[
            ("file", Some("unified_payments.csv"), stripe.as_bytes()),
            ("currency", None, b"usd"),
            ("k", None, b"3"),
        ],
    )
    .await;
    let (run, _) = wait_done(&s, &id).await;
    assert_eq!(run["run"]["status"], "done", "{run}");
    assert_eq!(
        run["clusters"]["input"]["preset"], "stripe",
        "{}",
        run["clusters"]["input"]
    );
    let id = start(
        &s,
        &[("file", Some("unified_payments.csv"), stripe.as_bytes())],
    )
    .await;
    let (run, _) = wait_done(&s, &id).await;
    let said = run["run"]["error"].as_str().unwrap_or_default();
    assert!(
        said.contains("EUR: 1 rows") && said.contains("\"Currency\""),
        "{run}"
    );
}

/// The dashboard's form is built from `/v1/config`: the k range it offers is the one the
/// API accepts, and the page's script hard-codes none of the choices.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_offers_what_the_api_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let config = call(&s, get("/v1/config")).await.json();
    let k = &config["choices"]["k"];
    let (min, max) = (k["min"].as_u64().unwrap(), k["max"].as_u64().unwrap());
    let mut ok = Settings::default();
    for n in [min, max] {
        let options = json!({ "k": n.to_string() });
        rfm_agent::server::options::apply(&mut ok, options.as_object().unwrap()).unwrap();
    }
    for n in [min - 1, max + 1] {
        let options = json!({ "k": n.to_string() });
        let err = rfm_agent::server::options::apply(&mut ok, options.as_object().unwrap());
        assert!(err.unwrap_err().contains("choose between"), "k = {n}");
    }
    let frequencies: Vec<&str> = config["choices"]["frequency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["value"].as_str().unwrap())
        .collect();
    assert_eq!(frequencies, ["invoices", "lines"]);
    let roles = config["choices"]["columns"].as_array().unwrap();
    assert_eq!(roles.len(), 12);
    assert_eq!(roles[0]["role"], "customer");
    let script = call(&s, get("/assets/app.js")).await;
    let text = String::from_utf8_lossy(&script.body).into_owned();
    assert!(text.contains("c.choices.k.max") && !text.contains("i <= 10"));
    assert!(!text.contains("Order lines") && !text.contains("Unit price"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_page_and_call_and_never_travels_in_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let s = state_with(dir.path(), Some("s3cret-token"), Settings::default());
    for uri in [
        "/",
        "/v1/runs",
        "/v1/config",
        "/openapi.json",
        "/v1/runs/0123456789abcdef",
        "/v1/runs/0123456789abcdef/files/report.html",
        "/v1/compare?before=a&after=b",
    ] {
        let r = call(&s, get(uri)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    // The page without a token is the sign-in form, not the dashboard.
    let page = call(&s, get("/")).await.text();
    assert!(
        page.contains("action=\"/sign-in\"") && !page.contains("app.js"),
        "{page}"
    );
    // Probes and the stylesheet need no token.
    for uri in ["/healthz", "/readyz", "/assets/app.css"] {
        assert_eq!(call(&s, get(uri)).await.status, StatusCode::OK, "{uri}");
    }
    let bearer = |uri: &str, token: &str| {
        Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        call(&s, bearer("/v1/runs", "s3cret-token")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&s, bearer("/v1/runs", "s3cret-tokeN")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Secrets in URLs are refused, even the right token.
    for uri in [
        "/v1/runs?token=s3cret-token",
        "/v1/runs?api_key=sk-1",
        "/?key=x",
        "/healthz?access_token=x",
    ] {
        let r = call(&s, bearer(uri, "s3cret-token")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.error().contains("not accepted in a URL"), "{}", r.error());
    }
    // The sign-in form: a wrong token gets the form again, the right one a cookie that
    // opens the page, the API and the files.
    let form = |token: &str| {
        Request::post("/sign-in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let r = call(&s, form("guess")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("not right"));
    let r = call(&s, form("s3cret-token")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("s3cret-token"),
        "the cookie does not hold the token in clear"
    );
    let with_cookie = |uri: &str| {
        Request::get(uri)
            .header(header::COOKIE, cookie.split(';').next().unwrap())
            .body(Body::empty())
            .unwrap()
    };
    let r = call(&s, with_cookie("/")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("/assets/app.js"));
    assert!(
        r.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(
        call(&s, with_cookie("/v1/runs")).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_other_sites_cannot_drive_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let with = |method: &str, uri: &str, headers: &[(&str, &str)]| {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    };
    // DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own Host.
    for host in ["evil.example", "evil.example:8080", "10.0.0.5:8080"] {
        let r = call(&s, with("GET", "/v1/runs", &[("host", host)])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{host}");
        assert!(r.error().contains("localhost"), "{}", r.error());
    }
    for host in [
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "LOCALHOST",
    ] {
        let r = call(&s, with("GET", "/v1/runs", &[("host", host)])).await;
        assert_eq!(r.status, StatusCode::OK, "{host}");
    }
    // A cross-site form post is refused; the dashboard's own requests pass.
    let (kind, body) = multipart_body(&[("sample", None, b"true")]);
    let post = |origin: &str| {
        Request::post("/v1/runs")
            .header("host", "127.0.0.1:8080")
            .header("origin", origin)
            .header(header::CONTENT_TYPE, kind.clone())
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let r = call(&s, post("https://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.error().contains("evil.example"), "{}", r.error());
    let r = call(&s, post("null")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        call(&s, get("/v1/runs")).await.json()["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let r = call(&s, post("http://127.0.0.1:8080")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    // With a token the token decides, whatever the name (another data folder: this one is
    // held by the service above).
    let other = tempfile::tempdir().unwrap();
    let s = state_with(other.path(), Some("tok"), Settings::default());
    let r = call(
        &s,
        with(
            "GET",
            "/v1/runs",
            &[("host", "shop.example"), ("authorization", "Bearer tok")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_response_ever_carries_an_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.llm.openai_api_key = rfm_agent::settings::ApiKey(KEY.into());
    settings.llm.gemini_api_key = rfm_agent::settings::ApiKey(KEY.into());
    settings.llm.backend = rfm_agent::settings::Backend::Off;
    let s = state_with(dir.path(), None, settings);
    let id = start(&s, &[("sample", None, b"true")]).await;
    let (run, _) = wait_done(&s, &id).await;
    assert_eq!(run["run"]["status"], "done");
    let config = call(&s, get("/v1/config")).await.json();
    let ready: Vec<&Value> = config["llm_backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["ready"])
        .collect();
    assert_eq!(
        ready,
        [&json!(true), &json!(true), &json!(true)],
        "keys are set: {config}"
    );
    let mut uris: Vec<String> = [
        "/",
        "/v1/config",
        "/v1/runs",
        "/openapi.json",
        "/assets/app.js",
    ]
    .iter()
    .map(|u| u.to_string())
    .collect();
    uris.push(format!("/v1/runs/{id}"));
    for f in run["files"].as_array().unwrap() {
        uris.push(f["url"].as_str().unwrap().to_string());
    }
    for uri in &uris {
        let r = call(&s, get(uri)).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains(KEY),
            "{uri} returned the key"
        );
    }
}

/// A mock OpenAI-compatible server that answers after `delay`.
async fn slow_llm(delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(Api::OpenAi.path()))
        .respond_with(ResponseTemplate::new(500).set_delay(delay))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_limited_and_runs_queue_then_get_429() {
    let dir = tempfile::tempdir().unwrap();
    let llm = slow_llm(Duration::from_secs(4)).await;
    let mut settings = Settings::default();
    settings.server.max_upload_mb = 1;
    settings.server.max_running = 1;
    settings.server.max_queued = 1;
    settings.llm.backend = rfm_agent::settings::Backend::Off;
    settings.llm.base_url = format!("{}/v1", llm.uri());
    settings.llm.max_attempts = 1;
    settings.llm.cache = false;
    let s = state_with(dir.path(), None, settings);
    // 413 beyond the limit, with the limit in the message.
    let big = vec![b'a'; (1 << 20) + 100_000];
    let r = call(&s, upload(&[("file", Some("big.csv"), &big)])).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.error().contains("1 MB"), "{}", r.error());
    // One run computes (held up by the slow LLM), one waits, a third is refused.
    let first = start(&s, &[("sample", None, b"true"), ("llm", None, b"openai")]).await;
    let second = start(&s, &[("sample", None, b"true")]).await;
    let r = call(&s, upload(&[("sample", None, b"true")])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.error().contains("busy"), "{}", r.error());
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    let queued = call(&s, get(&format!("/v1/runs/{second}"))).await.json();
    assert_eq!(queued["run"]["status"], "queued", "{queued}");
    assert!(
        queued["run"]["progress"]
            .as_str()
            .unwrap()
            .contains("waiting")
    );
    // A queued run can be deleted: it never runs (and a computing one is stopped, see
    // hostile.rs); a run in progress cannot be rerun.
    let r = call(
        &s,
        Request::delete(format!("/v1/runs/{second}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&s, get(&format!("/v1/runs/{second}"))).await.status,
        StatusCode::NOT_FOUND
    );
    let second = start(&s, &[("sample", None, b"true")]).await;
    let r = call(
        &s,
        post_json(
            &format!("/v1/runs/{first}/campaigns"),
            json!({"llm": "rules"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let (a, _) = wait_done(&s, &first).await;
    let (b, _) = wait_done(&s, &second).await;
    assert_eq!(
        a["run"]["status"], "done",
        "the LLM's failure falls back to the rules: {a}"
    );
    assert_eq!(a["campaigns"]["summary"]["fallbacks"], 4);
    assert_eq!(b["run"]["status"], "done");
    assert!(
        b["run"]["updated"].as_str() >= a["run"]["updated"].as_str(),
        "the queued run ran after the first"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn campaigns_rerun_with_other_prompts_keeps_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.server.allow_custom_templates = true;
    let s = state_with(dir.path(), None, settings);
    let id = start(&s, &[("sample", None, b"true"), ("k", None, b"4")]).await;
    let (before, _) = wait_done(&s, &id).await;
    let sizes = |d: &Value| -> Vec<u64> {
        d["clusters"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["size"].as_u64().unwrap())
            .collect()
    };
    let customers_before =
        std::fs::read(dir.path().join("runs").join(&id).join("out/customers.csv")).unwrap();
    let prompts = include_str!("../../prompts/segments.toml")
        .replace("Reward and retain:", "Celebrate them:");
    assert_ne!(prompts, include_str!("../../prompts/segments.toml"));
    let uri = format!("/v1/runs/{id}/campaigns");
    // Bad requests first: prompts that do not parse, unknown fields, a missing run.
    let r = call(
        &s,
        post_json(&uri, json!({"segments_toml": "[champions\n"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("segments.toml"), "{}", r.error());
    assert!(
        !r.error().contains(dir.path().to_str().unwrap()),
        "{}",
        r.error()
    );
    let r = call(&s, post_json(&uri, json!({"temperature": 2}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &s,
        post_json("/v1/runs/0123456789abcdef/campaigns", json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = call(
        &s,
        post_json(&uri, json!({"llm": "rules", "segments_toml": prompts})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let (after, _) = wait_done(&s, &id).await;
    assert_eq!(after["run"]["status"], "done", "{after}");
    assert_eq!(sizes(&after), sizes(&before));
    assert_eq!(names(&after), names(&before));
    let customers_after =
        std::fs::read(dir.path().join("runs").join(&id).join("out/customers.csv")).unwrap();
    assert_eq!(
        customers_after, customers_before,
        "every customer keeps their segment"
    );
    let strategies: Vec<&str> = after["campaigns"]["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["strategy"].as_str().unwrap())
        .collect();
    let champions = names(&after).iter().position(|n| n == "Champions").unwrap();
    assert!(
        strategies[champions].starts_with("Celebrate them:"),
        "{strategies:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_counts_every_shared_customer() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let a = start(&s, &[("sample", None, b"true"), ("k", None, b"4")]).await;
    let b = start(&s, &[("sample", None, b"true"), ("k", None, b"5")]).await;
    let (ra, _) = wait_done(&s, &a).await;
    wait_done(&s, &b).await;
    let m = call(&s, get(&format!("/v1/compare?before={a}&after={b}"))).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text());
    let m = m.json();
    let total: u64 = m["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, ra["ledger"]["customers"].as_u64().unwrap());
    assert_eq!(m["customers_in_both"].as_u64().unwrap(), total);
    assert_eq!(m["before_segments"].as_array().unwrap().len(), 4);
    assert_eq!(m["after_segments"].as_array().unwrap().len(), 5);
    let r = call(
        &s,
        get(&format!("/v1/compare?before={a}&after=0123456789abcdef")),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&s, get(&format!("/v1/compare?before={a}"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_matches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path());
    let doc = call(&s, get("/openapi.json")).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    insta::with_settings!({filters => vec![(r#""version": "[0-9.]+""#, r#""version": "[version]""#)]}, {
        insta::assert_snapshot!("openapi", serde_json::to_string_pretty(&doc).unwrap());
    });
    let paths = doc["paths"].as_object().unwrap();
    // Every documented operation exists: with an unknown id it answers its own 404, 400 or
    // 401, never the router's "no such endpoint" or 405.
    let mut operations = 0;
    for (p, item) in paths {
        let uri = p
            .replace("{id}", "0123456789abcdef")
            .replace("{path}", "report.html");
        for m in ["get", "post", "delete"] {
            if item.get(m).is_none() {
                continue;
            }
            operations += 1;
            let req = Request::builder()
                .method(m.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let r = call(&s, req).await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
            assert!(
                !r.text().contains("no such page or endpoint"),
                "{m} {uri}: not routed"
            );
        }
    }
    assert!(operations >= 13, "{operations} operations documented");
    // And every route the router serves is documented, but the dashboard's page and assets.
    let routes = rfm_agent::server::route_paths();
    assert!(routes.len() >= 13, "{routes:?}");
    for route in routes {
        if route == "/" || route.starts_with("/assets/") {
            continue;
        }
        let route = route.replace("{*path}", "{path}");
        let route = route.as_str();
        assert!(paths.contains_key(route), "{route} is not documented");
    }
}
