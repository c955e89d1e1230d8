//! The service as users run it: the real binary on a loopback socket, driven over HTTP with
//! reqwest: every endpoint and status, restart persistence, and a bounded load.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Service, multipart_body, sample_csv};

const TOKEN: &str = "t0ken-for-tests-only";

fn client() -> reqwest::Client {
    rfm_agent::tls::install();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

struct Api {
    svc: Service,
    http: reqwest::Client,
    token: Option<&'static str>,
}

impl Api {
    fn req(&self, m: reqwest::Method, p: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(m, self.svc.url(p));
        match self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn get(&self, p: &str) -> (StatusCode, Vec<u8>) {
        let r = self.req(reqwest::Method::GET, p).send().await.unwrap();
        (r.status(), r.bytes().await.unwrap().to_vec())
    }

    async fn json(&self, p: &str) -> Value {
        let (status, body) = self.get(p).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{p}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap()
    }

    async fn upload(&self, fields: &[(&str, Option<&str>, &[u8])]) -> (StatusCode, Value) {
        let (kind, body) = multipart_body(fields);
        let r = self
            .req(reqwest::Method::POST, "/v1/runs")
            .header("content-type", kind)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn start(&self, fields: &[(&str, Option<&str>, &[u8])]) -> String {
        let (status, v) = self.upload(fields).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Asks for run `id`'s campaigns to be written again by `llm`.
    async fn rerun(&self, id: &str, llm: &str) -> StatusCode {
        self.req(reqwest::Method::POST, &format!("/v1/runs/{id}/campaigns"))
            .json(&json!({ "llm": llm }))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Waits until run `id` is waiting on the LLM.
    async fn wait_for_llm(&self, id: &str) {
        let start = Instant::now();
        loop {
            let v = self.json(&format!("/v1/runs/{id}")).await;
            if v["run"]["progress"] == "writing campaigns" {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "{v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait(&self, id: &str, until: &[&str]) -> Value {
        let start = Instant::now();
        loop {
            let v = self.json(&format!("/v1/runs/{id}")).await;
            if until.contains(&v["run"]["status"].as_str().unwrap()) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(240),
                "run {id} stuck: {v}\nservice log:\n{}",
                self.svc.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An upload refused before it is read (413 over the limit, whoever sends it; 401 without
/// the token) gets its answer, not a connection reset, however much of the body was still
/// on its way.
#[tokio::test(flavor = "multi_thread")]
async fn refused_uploads_are_answered_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(
        &dir.path().join("data"),
        &["--token", TOKEN],
        &[("RFM_AGENT__SERVER__MAX_UPLOAD_MB", "8")],
    );
    let api = Api {
        svc,
        http: client(),
        token: Some(TOKEN),
    };
    let big = vec![b'x'; 48 << 20];
    let within = vec![b'x'; 6 << 20];
    let bare = client();
    for attempt in 0..4 {
        let (status, v) = api.upload(&[("file", Some("big.csv"), &big)]).await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "attempt {attempt}: {v}"
        );
        assert!(
            v["error"].as_str().unwrap().contains("limit of 8 MB"),
            "{v}"
        );
        let (kind, body) = multipart_body(&[("file", Some("big.csv"), &within)]);
        let r = bare
            .post(api.svc.url("/v1/runs"))
            .header("content-type", kind)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("attempt {attempt} without a token: {e:?}"));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // Nothing of the refused uploads was kept.
    let runs = dir.path().join("data").join("runs");
    let left: Vec<_> = std::fs::read_dir(&runs).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(api.json("/v1/runs").await["runs"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_and_status_over_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start(
        &data,
        &["--token", TOKEN],
        &[
            ("RFM_AGENT__SERVER__MAX_UPLOAD_MB", "8"),
            ("RFM_AGENT__LLM__BACKEND", "off"),
        ],
    );
    let api = Api {
        svc,
        http: client(),
        token: Some(TOKEN),
    };
    // The data folder it created holds customer data: its owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");

    // Probes need no token; everything else does.
    let bare = client();
    for (p, want) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/", 401),
        ("/v1/runs", 401),
        ("/openapi.json", 401),
    ] {
        let r = bare.get(api.svc.url(p)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{p}");
    }
    let r = bare
        .get(api.svc.url("/v1/runs"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("Bearer"));
    // The sign-in form sets a cookie that opens the dashboard.
    let r = bare
        .post(api.svc.url("/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = bare
        .get(api.svc.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Try the built-in sample")
    );
    for asset in ["/assets/app.js", "/assets/app.css"] {
        assert_eq!(api.get(asset).await.0, StatusCode::OK, "{asset}");
    }
    assert_eq!(api.get("/assets/nothing.js").await.0, StatusCode::NOT_FOUND);
    let doc = api.json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let config = api.json("/v1/config").await;
    assert_eq!(config["limits"]["max_upload_mb"], 8);
    assert_eq!(config["token_required"], true);

    // 202, then status with progress, then results.
    let gz = dir.path().join("sample.csv.gz");
    crate::common::bin()
        .args(["sample", "--out"])
        .arg(&gz)
        .assert()
        .success();
    let gz = std::fs::read(&gz).unwrap();
    assert!(gz.len() < 8 << 20);
    let (status, v) = api
        .upload(&[("file", Some("big.csv"), &vec![b'x'; 9 << 20])])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (status, v) = api.upload(&[("file", Some("shop.pdf"), b"%PDF")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let first = api
        .start(&[("file", Some("Sample.CSV.GZ"), &gz), ("k", None, b"4")])
        .await;
    let second = api
        .start(&[("sample", None, b"true"), ("k", None, b"auto")])
        .await;
    let run = api.wait(&first, &["done", "failed"]).await;
    assert_eq!(run["run"]["status"], "done", "{run}");
    let auto = api.wait(&second, &["done", "failed"]).await;
    assert_eq!(auto["run"]["status"], "done", "{auto}");
    assert!(
        auto["clusters"]["k_choice"]["recommended"]
            .as_u64()
            .is_some(),
        "{}",
        auto["clusters"]["k_choice"]
    );
    let runs = api.json("/v1/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2);
    for f in run["files"].as_array().unwrap() {
        let (status, body) = api.get(f["url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{f}");
        assert_eq!(body.len() as u64, f["bytes"].as_u64().unwrap(), "{f}");
    }
    assert_eq!(
        api.get(&format!("/v1/runs/{first}/files/nothing.png"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("/v1/runs/{first}/files/%2E%2E/input.csv"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/v1/runs/ffffffffffffffff").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/v1/runs?api_key=x").await.0,
        StatusCode::BAD_REQUEST
    );

    let m = api
        .json(&format!("/v1/compare?before={first}&after={second}"))
        .await;
    assert!(m["customers_in_both"].as_u64().unwrap() > 0);

    assert_eq!(api.rerun(&first, "rules").await, StatusCode::ACCEPTED);
    let again = api.wait(&first, &["done", "failed"]).await;
    assert_eq!(again["run"]["status"], "done");
    assert_eq!(
        api.rerun(&first, "gemini").await,
        StatusCode::BAD_REQUEST,
        "no Gemini key on this service"
    );

    let r = api
        .req(reqwest::Method::DELETE, &format!("/v1/runs/{second}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = api
        .req(reqwest::Method::DELETE, &format!("/v1/runs/{second}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        api.json("/v1/runs").await["runs"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
async fn the_reference_data_uploaded_gives_the_reference_segments() {
    let data = crate::reference::data_dir();
    let dir = tempfile::tempdir().unwrap();
    let api = Api {
        svc: Service::start(dir.path(), &[], &[("RFM_AGENT__LLM__BACKEND", "off")]),
        http: client(),
        token: None,
    };
    let parquet = std::fs::read(data.join("online_retail.parquet")).unwrap();
    let id = api
        .start(&[
            ("file", Some("online_retail.parquet"), &parquet),
            ("frequency", None, b"lines"),
            ("k", None, b"4"),
        ])
        .await;
    let v = api.wait(&id, &["done", "failed"]).await;
    assert_eq!(v["run"]["status"], "done", "{v}");
    crate::reference::check_ledger(&v["clusters"], "service, parquet");
    crate::reference::check_clusters(&v["clusters"], "service, parquet");
    let mut named: Vec<(u64, String)> = v["clusters"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["id"].as_u64().unwrap();
            let name = v["campaigns"]["campaigns"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["cluster"].as_u64() == Some(id))
                .unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string();
            (c["size"].as_u64().unwrap(), name)
        })
        .collect();
    named.sort();
    let names: Vec<&str> = named.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Champions", "Potential Loyalists", "At Risk", "Hibernating"],
        "{named:?}"
    );
}

/// A mock OpenAI-compatible server that never answers in time.
async fn stalled_llm() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(500).set_delay(Duration::from_secs(120)))
        .mount(&server)
        .await;
    server
}

/// Settings for a service whose LLM is `stalled_llm` at `base`: runs use the rules unless
/// they ask for `llm=openai`, which then waits.
fn stalled_env(base: &str) -> [(&'static str, &str); 3] {
    [
        ("RFM_AGENT__LLM__BASE_URL", base),
        ("RFM_AGENT__LLM__BACKEND", "off"),
        ("RFM_AGENT__LLM__CACHE", "false"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_finished_runs_and_fails_interrupted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let llm = stalled_llm().await;
    let base = format!("{}/v1", llm.uri());
    let mut env = stalled_env(&base).to_vec();
    env.extend([
        ("RFM_AGENT__SERVER__MAX_RUNNING", "1"),
        ("RFM_AGENT__SERVER__MAX_QUEUED", "0"),
    ]);
    let api = Api {
        svc: Service::start(dir.path(), &[], &env),
        http: client(),
        token: None,
    };
    let done = api.start(&[("sample", None, b"true")]).await;
    let finished = api.wait(&done, &["done", "failed"]).await;
    assert_eq!(finished["run"]["status"], "done");
    let stuck = api
        .start(&[("sample", None, b"true"), ("llm", None, b"openai")])
        .await;
    // Wait until it is waiting on the LLM, then stop the service hard.
    api.wait_for_llm(&stuck).await;
    // Meanwhile the one slot is taken and no queue is allowed: 429; a running run cannot be
    // rerun: 409.
    let (status, v) = api.upload(&[("sample", None, b"true")]).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "{v}: {}",
        api.json("/v1/runs").await
    );
    let r = api
        .req(
            reqwest::Method::POST,
            &format!("/v1/runs/{stuck}/campaigns"),
        )
        .json(&serde_json::json!({"llm": "rules"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    api.svc.kill();

    let api = Api {
        svc: Service::start(dir.path(), &[], &env),
        http: client(),
        token: None,
    };
    let runs = api.json("/v1/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2, "{runs}");
    let kept = api.json(&format!("/v1/runs/{done}")).await;
    assert_eq!(kept["run"]["status"], "done");
    assert_eq!(kept["campaigns"], finished["campaigns"]);
    let (status, png) = api
        .get(&format!("/v1/runs/{done}/files/customer_segments.png"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(png.starts_with(b"\x89PNG"));
    let lost = api.json(&format!("/v1/runs/{stuck}")).await;
    assert_eq!(lost["run"]["status"], "failed", "{lost}");
    assert!(
        lost["run"]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted by a restart"),
        "{lost}"
    );
    // Its campaigns can be written again after the restart.
    assert_eq!(api.rerun(&stuck, "rules").await, StatusCode::ACCEPTED);
    let redone = api.wait(&stuck, &["done", "failed"]).await;
    assert_eq!(redone["run"]["status"], "done", "{redone}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_cleanly_and_says_which_runs_were_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let llm = stalled_llm().await;
    let base = format!("{}/v1", llm.uri());
    let env = stalled_env(&base);
    let mut api = Api {
        svc: Service::start(dir.path(), &["-v"], &env),
        http: client(),
        token: None,
    };
    let stuck = api
        .start(&[("sample", None, b"true"), ("llm", None, b"openai")])
        .await;
    api.wait_for_llm(&stuck).await;
    let status = api.svc.terminate();
    assert!(status.success(), "{status:?}");
    let log = api.svc.stderr.lock().unwrap().clone();
    assert!(log.contains("1 unfinished run(s) marked failed"), "{log}");
    // -v logs each request: method, path and status.
    assert!(log.contains(&format!("GET /v1/runs/{stuck} 200")), "{log}");
    drop(api);
    let api = Api {
        svc: Service::start(dir.path(), &[], &env),
        http: client(),
        token: None,
    };
    let v = api.json(&format!("/v1/runs/{stuck}")).await;
    assert_eq!(v["run"]["status"], "failed");
    assert_eq!(v["run"]["error"], "stopped when the service was shut down");
}

#[tokio::test(flavor = "multi_thread")]
async fn load_of_reads_and_uploads_completes_without_errors() {
    const READS: usize = 2_000;
    const CONCURRENCY: usize = 50;
    const UPLOADS: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let api = std::sync::Arc::new(Api {
        svc: Service::start(dir.path(), &[], &[("RFM_AGENT__LLM__BACKEND", "off")]),
        http: client(),
        token: None,
    });
    let seed = api.start(&[("sample", None, b"true")]).await;
    api.wait(&seed, &["done"]).await;
    let idle_kib = api.svc.peak_rss_kib();
    let reads = [
        "/v1/runs".to_string(),
        format!("/v1/runs/{seed}"),
        format!("/v1/runs/{seed}/files/customer_segments.png"),
        format!("/v1/runs/{seed}/files/customers.csv"),
        "/healthz".to_string(),
        "/".to_string(),
    ];
    let csv = std::sync::Arc::new(std::fs::read(sample_csv()).unwrap());
    // The reads alone first, then again with 10 uploads at once.
    let alone = Instant::now();
    let errors = read_load(&api, &reads, READS, CONCURRENCY).await;
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let alone_secs = alone.elapsed().as_secs_f64();
    let started = Instant::now();
    // 10 uploads at once, alongside the reads.
    let uploads: Vec<_> = (0..UPLOADS)
        .map(|_| {
            let (api, csv) = (api.clone(), csv.clone());
            tokio::spawn(async move {
                let (status, v) = api.upload(&[("file", Some("sample.csv"), &csv)]).await;
                (status, v["id"].as_str().map(String::from))
            })
        })
        .collect();
    let mut errors = read_load(&api, &reads, READS, CONCURRENCY).await;
    let reads_secs = started.elapsed().as_secs_f64();
    let mut ids = Vec::new();
    for u in uploads {
        let (status, id) = u.await.unwrap();
        if status != StatusCode::ACCEPTED {
            errors.push(format!("upload: {status}"));
        }
        ids.extend(id);
    }
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    for id in &ids {
        let v = api.wait(id, &["done", "failed"]).await;
        assert_eq!(v["run"]["status"], "done", "{v}");
    }
    let all_secs = started.elapsed().as_secs_f64();
    let peak = api.svc.peak_rss_kib();
    println!(
        "load: {READS} reads at concurrency {CONCURRENCY} alone: {alone_secs:.2} s ({:.0} reads/s); \
         with {UPLOADS} concurrent uploads: {reads_secs:.2} s ({:.0} reads/s); all {UPLOADS} runs \
         done after {all_secs:.1} s; peak RSS {:.0} MiB (after one run: {:.0} MiB)",
        READS as f64 / alone_secs,
        READS as f64 / reads_secs,
        peak as f64 / 1024.0,
        idle_kib as f64 / 1024.0
    );
    // Generous bounds (about a tenth of what a test build does here: 5,000 reads/s alone,
    // 2,000 with the uploads, 450 MiB): they catch a serialised or leaking service, not noise.
    assert!(
        READS as f64 / alone_secs > 500.0,
        "{alone_secs:.2} s for {READS} reads"
    );
    assert!(
        READS as f64 / reads_secs > 200.0,
        "{reads_secs:.2} s with uploads"
    );
    assert!(all_secs < 180.0, "the {UPLOADS} runs took {all_secs:.0} s");
    assert!(peak < 1536 * 1024, "peak RSS {} MiB", peak / 1024);
}

/// `total` GETs spread over `reads`, `concurrency` at a time; returns the failures.
async fn read_load(
    api: &std::sync::Arc<Api>,
    reads: &[String],
    total: usize,
    concurrency: usize,
) -> Vec<String> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (api, next, reads) = (api.clone(), next.clone(), reads.to_vec());
            tokio::spawn(async move {
                let mut errors = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        return errors;
                    }
                    let p = &reads[i % reads.len()];
                    match api.req(reqwest::Method::GET, p).send().await {
                        Ok(r) if r.status().is_success() => {
                            if let Err(e) = r.bytes().await {
                                errors.push(format!("{p}: {e}"));
                            }
                        }
                        Ok(r) => errors.push(format!("{p}: {}", r.status())),
                        Err(e) => errors.push(format!("{p}: {e}")),
                    }
                }
            })
        })
        .collect();
    let mut errors = Vec::new();
    for w in workers {
        errors.extend(w.await.unwrap());
    }
    errors
}

/// `rfm-agent healthcheck`, the container's HEALTHCHECK: 0 while the service answers
/// `/healthz`, 1 with the address and what to check once it is gone.
#[test]
fn healthcheck_says_whether_the_service_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut svc = Service::start(dir.path(), &[], &[]);
    let check = |base: &str| {
        crate::common::std_bin()
            .args(["healthcheck", "--timeout", "5", "--url", base])
            .output()
            .unwrap()
    };
    let up = check(&svc.base);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(svc.terminate().success());
    let down = check(&svc.base);
    assert_eq!(down.status.code(), Some(1));
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        err.contains("/healthz") && err.contains("is the service running"),
        "{err}"
    );
    // Anything but `ok` from a server is not healthy either.
    let other = Service::start(dir.path(), &[], &[]);
    let wrong = check(&format!("{}/v1", other.base));
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}
