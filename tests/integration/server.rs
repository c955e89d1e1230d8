//! The service (work in progress): the API in-process with `oneshot`, and over a socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use rfm_agent::server::{AppState, app, store::Store};

fn state(dir: &std::path::Path, token: Option<&str>, max_upload_bytes: usize) -> Arc<AppState> {
    Arc::new(AppState {
        data_dir: dir.to_path_buf(),
        store: Store::open(dir).unwrap(),
        settings: Default::default(),
        token: token.map(String::from),
        max_upload_bytes,
        max_active_runs: 2,
    })
}

async fn call(s: &Arc<AppState>, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = app(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    (
        status,
        axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> Request<Body> {
    let boundary = "XyZrfmagentBoundary";
    let mut body = Vec::new();
    for (name, file, data) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = file {
            body.extend(format!("; filename=\"{f}\"\r\nContent-Type: text/csv").as_bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend(*data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    Request::post("/v1/runs")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap()
}

async fn wait_done(s: &Arc<AppState>, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = call(s, get(&format!("/v1/runs/{id}"))).await;
        assert_eq!(status, StatusCode::OK);
        let v: Value = serde_json::from_slice(&body).unwrap();
        match v["run"]["status"].as_str().unwrap() {
            "done" | "failed" => return v,
            _ => {
                assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "run did not finish"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_run_read_files_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), None, 256 << 20);
    assert_eq!(call(&s, get("/healthz")).await.0, StatusCode::OK);
    assert_eq!(call(&s, get("/readyz")).await.0, StatusCode::OK);
    let csv = std::fs::read(crate::common::sample_csv()).unwrap();
    let (status, body) = call(
        &s,
        multipart(&[("file", Some("sample.csv"), &csv), ("k", None, b"4")]),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = wait_done(&s, &id).await;
    assert_eq!(run["run"]["status"], "done", "{run}");
    assert_eq!(run["campaigns"]["campaigns"].as_array().unwrap().len(), 4);
    assert!(
        run["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().ends_with("/report.html"))
    );
    let (status, html) = call(&s, get(&format!("/v1/runs/{id}/files/report.html"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&html).contains("Customer segments"));
    let (_, list) = call(&s, get("/v1/runs")).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&list).unwrap()["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Traversal and unknown ids are 404, never a file outside the run.
    for uri in [
        format!("/v1/runs/{id}/files/..%2F..%2Fruns.sqlite3"),
        format!("/v1/runs/{id}/files/.hidden"),
        "/v1/runs/..%2F..%2Fetc/files/passwd".to_string(),
        "/v1/runs/0123456789abcdef".to_string(),
    ] {
        assert_eq!(call(&s, get(&uri)).await.0, StatusCode::NOT_FOUND, "{uri}");
    }
    let del = Request::delete(format!("/v1/runs/{id}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&s, del).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&s, get(&format!("/v1/runs/{id}"))).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_required_when_set_and_uploads_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), Some("s3cret"), 1 << 20);
    assert_eq!(call(&s, get("/v1/runs")).await.0, StatusCode::UNAUTHORIZED);
    let ok = Request::get("/v1/runs")
        .header("authorization", "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&s, ok).await.0, StatusCode::OK);
    let s = state(dir.path(), None, 1 << 20);
    let big = vec![b'a'; 2 << 20];
    let (status, _) = call(&s, multipart(&[("file", Some("big.csv"), &big)])).await;
    assert!(
        status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST,
        "{status}"
    );
    let (status, body) = call(&s, multipart(&[("file", Some("notes.exe"), b"x")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("upload a .csv"));
}

#[test]
fn serve_refuses_a_public_address_without_a_token() {
    let err = crate::common::fails(&["serve", "--bind", "0.0.0.0:0"]);
    assert!(
        err.contains("--token") && err.contains("RFM_AGENT_TOKEN"),
        "{err}"
    );
}
