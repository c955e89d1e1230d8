//! The dashboard in real headless Chromium, driven through ChromeDriver's W3C WebDriver
//! protocol: upload the sample, watch the run, check the segment cards and charts, rewrite
//! the campaigns with an LLM that writes markup (shown as text), and compare two runs.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test says so and passes, except under CI, where it fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::common::{Service, sample_csv};
use crate::llm::{Api, Markup};

const TOKEN: &str = "browser-test-token";

/// ChromeDriver on a free port; killed on drop.
struct Driver {
    child: std::process::Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A WebDriver session.
struct Session {
    http: reqwest::Client,
    url: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Session {
    async fn new(driver: &Driver, chromium: &Path, profile: &Path) -> Session {
        rfm_agent::tls::install();
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1400,1000",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let r: Value = http
            .post(format!("{}/session", driver.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"));
        Session {
            http,
            url: format!("{}/session/{id}", driver.base),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(err) = r["value"]["error"].as_str() {
            panic!("WebDriver {path}: {err}: {}", r["value"]["message"]);
        }
        r["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element `{css}`: {v}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until `script` returns true.
    async fn wait_for(&self, what: &str, script: &str) {
        let start = Instant::now();
        loop {
            if self.js(script).await == Value::Bool(true) {
                return;
            }
            if start.elapsed() > Duration::from_secs(180) {
                let page = self
                    .js("return document.body.innerText.slice(0, 4000)")
                    .await;
                panic!(
                    "timed out waiting for {what}; the page says:\n{}",
                    page.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A screenshot of the whole page, saved as PNG.
    async fn screenshot(&self, to: &Path) {
        let height = self
            .js("return document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap();
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1400, "height": height.min(8000) + 150})),
        )
        .await;
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1400, "height": 1000})),
        )
        .await;
    }

    async fn close(mut self) {
        let _ = self.http.delete(&self.url).send().await;
        self.url.clear();
    }
}

impl Drop for Session {
    /// A test that fails part-way still ends its browser: ChromeDriver closes Chromium when
    /// the session is deleted, which a plain kill of ChromeDriver would not. Sent by hand over
    /// a socket because `Drop` cannot wait for async code.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(rest) = self.url.strip_prefix("http://") else {
            return;
        };
        let Some((host, path)) = rest.split_once('/') else {
            return;
        };
        if let Ok(mut conn) = std::net::TcpStream::connect(host) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                conn,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.read(&mut [0u8; 512]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium and chromedriver; .ci/run provides them"]
async fn dashboard_in_headless_chromium() {
    let needs = "this test needs chromium and chromedriver on PATH; .ci/run installs them";
    let chromedriver = find(&["chromedriver"]).expect(needs);
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"]).expect(needs);
    let llm = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(Api::OpenAi.path()))
        .respond_with(Markup {
            name: "<script>pw=true</script>{rule}",
            subject: Some("<b>Bold</b> offer, {{first_name}}"),
            body: "Hi {{first_name}}, <img src=x onerror=\"pw=document.title\"> see you.",
            channel: "<b><img src=x onerror=\"pw=document.title\"></b>",
        })
        .mount(&llm)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let base_url = format!("{}/v1", llm.uri());
    let cache = dir.path().join("cache");
    let svc = Service::start(
        &dir.path().join("data"),
        &["--token", TOKEN],
        &[
            ("RFM_AGENT__LLM__BACKEND", "off"),
            ("RFM_AGENT__LLM__BASE_URL", &base_url),
            ("RFM_AGENT__LLM__CACHE_DIR", cache.to_str().unwrap()),
        ],
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let driver = Driver {
        child: std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    rfm_agent::tls::install();
    let http = reqwest::Client::new();
    let start = Instant::now();
    while !http
        .get(format!("{}/status", driver.base))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = Session::new(&driver, &chromium, &dir.path().join("profile")).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));

    // The service has a token: the page asks for it first; a wrong one is refused in words.
    s.goto(&svc.base).await;
    s.type_into("#token", "not-the-token").await;
    s.click("form button[type=submit]").await;
    s.wait_for(
        "the refusal",
        "return document.querySelector('.error') !== null",
    )
    .await;
    s.type_into("#token", TOKEN).await;
    s.click("form button[type=submit]").await;

    // Upload the sample file through the form, with the rule-based agent.
    s.wait_for(
        "the form",
        "return document.querySelectorAll('#llm option').length > 0",
    )
    .await;
    assert_eq!(
        s.js("return document.getElementById('runs-empty').hidden")
            .await,
        false
    );
    s.type_into("#file", sample_csv().to_str().unwrap()).await;
    // The export the file's header is recognised as shows next to the column names.
    s.wait_for(
        "the recognised export",
        "return document.getElementById('preset-found').textContent.includes('UCI Online Retail layout')",
    )
    .await;
    s.js("document.getElementById('k').value = '4'; document.getElementById('llm').value = 'rules'; return true")
        .await;
    s.click("#run-file").await;
    s.wait_for(
        "the segment cards",
        "return document.querySelectorAll('#segments .segment').length === 4",
    )
    .await;
    // The cards are shown, with names, figures, an email and a copy button each.
    let cards = s
        .js("return [...document.querySelectorAll('#segments .segment')].map(c => ({
            name: c.querySelector('.segment-name').textContent,
            visible: c.getBoundingClientRect().width > 200 && c.getBoundingClientRect().height > 200,
            kpis: c.querySelectorAll('.kpis dd').length,
            active: [...c.querySelectorAll('.kpis dt')].some(t => t.textContent === 'Still active'),
            body: c.querySelector('.email pre').textContent,
            copy: !!c.querySelector('button.copy')}))")
        .await;
    for c in cards.as_array().unwrap() {
        assert_eq!(c["visible"], true, "{c}");
        // Five RFM figures and three from the predictive models.
        assert_eq!(c["kpis"], 8, "{c}");
        assert_eq!(c["active"], true, "{c}");
        assert_eq!(c["copy"], true, "{c}");
        assert!(
            !c["name"].as_str().unwrap().is_empty() && c["body"].as_str().unwrap().len() > 20,
            "{c}"
        );
    }
    // Every chart image has loaded (decoded at 1200 px wide) and is on screen.
    s.wait_for("the charts", "return [...document.querySelectorAll('#charts img')].every(i => i.complete && i.naturalWidth > 0)")
        .await;
    let charts = s
        .js("return [...document.querySelectorAll('#charts img')].map(i => [i.naturalWidth, i.naturalHeight, Math.round(i.getBoundingClientRect().width)])")
        .await;
    // Segments, box plots, value shares, predicted value, elbow.
    assert_eq!(charts.as_array().unwrap().len(), 5, "{charts}");
    for c in charts.as_array().unwrap() {
        assert_eq!(
            (c[0].as_u64(), c[1].as_u64()),
            (Some(1200), Some(800)),
            "{charts}"
        );
        assert!(c[2].as_u64().unwrap() > 300, "{charts}");
    }
    let ledger_rows = s
        .js("return document.querySelectorAll('#ledger tbody tr').length")
        .await;
    assert!(ledger_rows.as_u64().unwrap() >= 3, "{ledger_rows}");
    let downloads = s
        .js("return [...document.querySelectorAll('#downloads a')].map(a => a.textContent)")
        .await;
    assert!(downloads.to_string().contains("Full report"), "{downloads}");
    assert!(downloads.to_string().contains("Email list"), "{downloads}");
    s.wait_for(
        "the run list",
        "return document.querySelectorAll('#runs tbody tr').length === 1",
    )
    .await;
    s.screenshot(&shots.join("dashboard.png")).await;

    // Rewrite the campaigns with the LLM, whose answers carry markup: the content gate
    // refuses them, and the cards say why, quoting the markup as text.
    s.js("document.getElementById('rewrite-llm').value = 'openai'; return true")
        .await;
    s.click("#rewrite").await;
    s.wait_for(
        "the rewritten cards",
        "return [...document.querySelectorAll('#segments .segment')].length === 4 && \
         [...document.querySelectorAll('#segments .segment')].every(c => (c.querySelector('.note') || {}).textContent?.includes('unknown_channel'))",
    )
    .await;
    let verdict = s
        .js("return {pwned: window.pw === undefined ? null : window.pw,
            scripts: document.querySelectorAll('#segments script, #segments img, #segments b').length,
            note: document.querySelector('#segments .note').textContent,
            name: document.querySelector('#segments .segment-name').textContent}")
        .await;
    assert_eq!(
        verdict["pwned"],
        Value::Null,
        "markup from the LLM ran: {verdict}"
    );
    assert_eq!(
        verdict["scripts"], 0,
        "markup from the LLM became elements: {verdict}"
    );
    assert!(
        verdict["note"].as_str().unwrap().contains("<img src=x"),
        "{verdict}"
    );
    assert!(
        !verdict["name"].as_str().unwrap().contains("<script>"),
        "{verdict}"
    );
    s.screenshot(&shots.join("dashboard-llm-markup.png")).await;

    // A second run (the sample, 5 segments), then the compare view.
    s.js("document.getElementById('k').value = '5'; document.getElementById('llm').value = 'rules'; return true")
        .await;
    s.click("#run-sample").await;
    s.wait_for("five cards", "return document.querySelectorAll('#segments .segment').length === 5 && !document.getElementById('results').hidden")
        .await;
    s.wait_for(
        "two finished runs",
        "return document.querySelectorAll('#before option').length === 2",
    )
    .await;
    s.click("#compare-form button[type=submit]").await;
    s.wait_for(
        "the migration matrix",
        "return document.querySelectorAll('.matrix tbody tr').length > 0",
    )
    .await;
    let matrix = s
        .js("return [...document.querySelectorAll('.matrix tbody td')].map(td => Number(td.textContent.replace(/,/g, '')))")
        .await;
    let total: u64 = matrix
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    let api = async |path: String| -> Value {
        let r = http
            .get(format!("{}{path}", svc.base))
            .bearer_auth(TOKEN)
            .send();
        r.await.unwrap().json().await.unwrap()
    };
    let runs = api("/v1/runs".into()).await;
    let id = runs["runs"][0]["id"].as_str().unwrap();
    let customers = api(format!("/v1/runs/{id}")).await["ledger"]["customers"]
        .as_u64()
        .unwrap();
    assert_eq!(
        total, customers,
        "every customer is counted once in the matrix"
    );
    s.screenshot(&shots.join("dashboard-compare.png")).await;

    // A bad upload is explained in words on the page.
    s.goto(&svc.base).await;
    s.wait_for(
        "the form",
        "return document.querySelectorAll('#llm option').length > 0",
    )
    .await;
    let bad = dir.path().join("notes.txt");
    std::fs::write(&bad, "hello\nworld\n").unwrap();
    s.type_into("#file", bad.to_str().unwrap()).await;
    s.click("#run-file").await;
    s.wait_for(
        "the error",
        "return !document.getElementById('error').hidden",
    )
    .await;
    let error = s
        .js("return document.getElementById('error').textContent")
        .await;
    let error = error.as_str().unwrap();
    assert!(
        error.contains("failed") && error.contains("notes.txt"),
        "{error}"
    );
    assert!(
        !error.contains("panicked") && !error.contains("/runs/"),
        "{error}"
    );

    // Without a token (loopback only) the same page works from the start. Its limit of 1 MB
    // stops the 23 MB sample file in the page, before any upload.
    let open = Service::start(
        &dir.path().join("open"),
        &[],
        &[
            ("RFM_AGENT__LLM__BACKEND", "off"),
            ("RFM_AGENT__SERVER__MAX_UPLOAD_MB", "1"),
        ],
    );
    s.goto(&open.base).await;
    s.wait_for(
        "the form",
        "return document.querySelectorAll('#llm option').length > 0",
    )
    .await;
    assert_eq!(
        s.js("return document.getElementById('sign-out').hidden")
            .await,
        true
    );
    s.type_into("#file", sample_csv().to_str().unwrap()).await;
    s.click("#run-file").await;
    s.wait_for(
        "the size error",
        "return !document.getElementById('error').hidden",
    )
    .await;
    let error = s
        .js("return document.getElementById('error').textContent")
        .await;
    assert!(
        error.as_str().unwrap().contains("files of up to 1 MB"),
        "{error}"
    );
    let runs: serde_json::Value = reqwest::get(open.url("/v1/runs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"], serde_json::json!([]), "nothing was uploaded");
    s.click("#run-sample").await;
    s.wait_for(
        "the sample's cards",
        "return document.querySelectorAll('#segments .segment').length === 4",
    )
    .await;
    s.close().await;
    eprintln!("screenshots: {}", shots.join("dashboard*.png").display());
}
