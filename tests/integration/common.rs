//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use serde_json::Value;

/// The binary under test, with settings taken only from defaults and the test's flags.
pub fn bin() -> Command {
    Command::from_std(std_bin())
}

/// The same as a plain `std::process::Command` (for spawning and signalling).
pub fn std_bin() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("rfm-agent"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RFM_AGENT__") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    // No test may reach a paid API because a developer has a key set.
    cmd.env_remove("GEMINI_API_KEY")
        .env_remove("OPENAI_API_KEY");
    cmd
}

/// The built-in sample as a CSV file, written once per test run.
pub fn sample_csv() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("sample.csv");
        std::fs::write(&path, rfm_agent::sample::generate(&Default::default())).unwrap();
        path
    })
}

/// Runs `cmd`, expects success and returns the JSON it printed.
pub fn json_of(mut cmd: Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Runs `command --format json` with `args` and returns the parsed document.
pub fn command_json(command: &str, args: &[&str]) -> Value {
    let mut cmd = bin();
    cmd.arg(command).args(args).args(["--format", "json"]);
    json_of(cmd)
}

/// Runs `segment --format json` with `args` and returns the parsed document.
pub fn segment_json(args: &[&str]) -> Value {
    command_json("segment", args)
}

/// Fails the test with the command's stderr unless it succeeded.
pub fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the binary expecting failure; returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "{args:?} should fail; stderr: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert_said_once(&stderr);
    stderr
}

/// Fails when an error line says a clause twice (an error that prints its source, and the
/// chain printing that source again). Clauses are what `: ` and `; ` separate; short ones
/// (a column name, a number) may repeat.
pub fn assert_said_once(stderr: &str) {
    for line in stderr.lines().filter(|l| l.starts_with("error:")) {
        assert_clauses_once(line);
    }
}

/// Fails when one message says a clause twice.
pub fn assert_clauses_once(line: &str) {
    {
        let clauses: Vec<&str> = line
            .split(": ")
            .flat_map(|part| part.split("; "))
            .map(str::trim)
            .filter(|c| c.len() >= 16)
            .collect();
        for (i, clause) in clauses.iter().enumerate() {
            assert!(
                !clauses[i + 1..].contains(clause),
                "`{clause}` is said twice in: {line}"
            );
        }
    }
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Cluster sizes, sorted.
pub fn sizes(doc: &Value) -> Vec<u64> {
    let mut s: Vec<u64> = doc["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect();
    s.sort();
    s
}

/// Reads customers.csv into (id → (recency, frequency, monetary, cluster)).
/// Per customer: recency, frequency, monetary and cluster, as in customers.csv.
pub type Rfm = std::collections::BTreeMap<String, (f64, f64, f64, usize)>;

pub fn customers(dir: &Path) -> Rfm {
    let mut r = csv::Reader::from_path(dir.join("customers.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, rec_, fr, mo, cl) = (
        col("customer_id"),
        col("recency"),
        col("frequency"),
        col("monetary"),
        col("cluster"),
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[id].to_string(),
                (
                    rec[rec_].parse().unwrap(),
                    rec[fr].parse().unwrap(),
                    rec[mo].parse().unwrap(),
                    rec[cl].parse().unwrap(),
                ),
            )
        })
        .collect()
}

pub fn ledger_rule(doc: &Value, rule: &str) -> Option<u64> {
    doc["ledger"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .map(|r| r["rows"].as_u64().unwrap())
}

/// `rfm-agent serve` running as its own process on a free loopback port; killed on drop.
pub struct Service {
    pub child: std::process::Child,
    /// e.g. `http://127.0.0.1:41234`
    pub base: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Service {
    /// Starts the real binary with `serve --bind 127.0.0.1:0 --data-dir DIR` plus `args` and
    /// `env`, and waits for the address it prints.
    pub fn start(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Service {
        use std::io::BufRead;
        let mut cmd = std_bin();
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env_remove("RFM_AGENT_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start rfm-agent serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line
                    .strip_prefix("rfm-agent service on ")
                    .and_then(|r| r.split_whitespace().next())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve printed no address: {}", log.lock().unwrap()));
        Service {
            child,
            base,
            stderr: log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Peak resident memory of the service so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits (up to 30 s) for the process to end; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "serve did not stop on SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops the process at once (SIGKILL), as a crash or power loss would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A multipart/form-data body: `(field, file name, bytes)`; returns (content type, body).
pub fn multipart_body(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "XyZrfmagentBoundary7e1";
    let mut body = Vec::new();
    for (name, file, data) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = file {
            body.extend(
                format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream").as_bytes(),
            );
        }
        body.extend(b"\r\n\r\n");
        body.extend(*data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// What a test needs from outside (a server `.ci/run` starts, the reference data), from the
/// environment variable `var`; without it the test fails, saying what is missing. Such tests
/// are `#[ignore = "needs …"]`: plain `cargo test` lists them as ignored, never as passed,
/// and `.ci/run` runs them all with `--include-ignored`.
pub fn needs(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("this test needs {what} in {var}; .ci/run sets it up (an ignored test runs with --include-ignored)")
    })
}

/// The URL of the real llama.cpp server that `.ci/run` starts (RFM_AGENT_LLM_SERVER).
pub fn llm_server() -> std::ffi::OsString {
    needs("RFM_AGENT_LLM_SERVER", "the llama.cpp server").into()
}

/// A minimal workbook: one sheet with `sheet_xml` as its `<sheetData>` content (inline
/// strings), plus `extra` parts.
pub fn xlsx(sheet_data: &str, extra: &[(&str, Vec<u8>)]) -> Vec<u8> {
    xlsx_with_dimension(sheet_data, extra, "")
}

/// The same, with `dimension` (e.g. `<dimension ref="A1:XFD1048576"/>`) before the data.
pub fn xlsx_with_dimension(
    sheet_data: &str,
    extra: &[(&str, Vec<u8>)],
    dimension: &str,
) -> Vec<u8> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default();
    let parts: [(&str, String); 5] = [
        ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.into()),
        ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.into()),
        ("xl/workbook.xml", r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#.into()),
        ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.into()),
        ("xl/worksheets/sheet1.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{dimension}<sheetData>{sheet_data}</sheetData></worksheet>"#)),
    ];
    for (name, text) in parts {
        zip.start_file(name, o).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    for (name, bytes) in extra {
        zip.start_file(*name, o).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Runs the service (oneshot) with one named source, `shop`, as its operator set it, and
/// starts a run on it with k = 2, as a client would: by name, never by URL. Checks that the
/// configuration lists the name without its address or `secret`, that other names and a URL
/// are refused, and that the run ends done without `secret` in it. Returns the run.
pub async fn run_on_named_source(
    source: rfm_agent::settings::SourceSettings,
    secret: &str,
) -> Value {
    use rfm_agent::server::{AppState, app};
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let address = source.url.clone();
    let mut settings = rfm_agent::settings::Settings::default();
    settings.llm.backend = rfm_agent::settings::Backend::Off;
    settings.sources.insert("shop".into(), source);
    let state = AppState::new(dir.path(), settings, None).unwrap();
    let state = std::sync::Arc::new(state.with_runner(assert_cmd::cargo::cargo_bin("rfm-agent")));
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
                serde_json::from_slice::<Value>(&body).unwrap_or_default(),
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
        let (kind, body) = multipart_body(&fields);
        axum::http::Request::post("/v1/runs")
            .header("content-type", kind)
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let (_, config) = call(get("/v1/config")).await;
    assert_eq!(config["sources"], serde_json::json!(["shop"]));
    let text = config.to_string();
    assert!(!text.contains(secret) && !text.contains(&address), "{text}");

    let (status, err) = call(post(&[("source", "elsewhere")])).await;
    assert_eq!(status, 400);
    let message = err["error"].as_str().unwrap();
    assert!(message.contains("this service has: shop"), "{err}");
    let (status, err) = call(post(&[("url", "postgres://evil@10.0.0.1/x")])).await;
    assert_eq!(status, 400, "{err}");

    let (status, started) = call(post(&[("source", "shop"), ("k", "2")])).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let mut run = Value::Null;
    for _ in 0..1200 {
        run = call(get(&format!("/v1/runs/{id}"))).await.1;
        if matches!(run["run"]["status"].as_str(), Some("done" | "failed")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(run["run"]["status"], "done", "{run}");
    assert_eq!(run["clusters"]["clusters"].as_array().unwrap().len(), 2);
    assert!(run["ledger"]["customers"].as_u64().unwrap() > 100, "{run}");
    assert!(!run.to_string().contains(secret));
    run
}

/// Runs `cmd` (an `rfm-agent` command line) with `-v` and returns its output and the peak
/// resident memory it reports at its end, in MiB (read from its own /proc entry: the
/// kernel's `ru_maxrss` of a child also counts the parent's pages it started with).
pub fn run_measured(mut cmd: std::process::Command) -> (std::process::Output, u64) {
    cmd.env("RUST_LOG", "info");
    let out = cmd.output().expect("run the command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let peak = stderr
        .lines()
        .find_map(|l| {
            l.split("peak memory ")
                .nth(1)?
                .strip_suffix(" MiB")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no peak memory reported: {stderr}"));
    (out, peak)
}
