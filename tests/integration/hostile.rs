//! Hostile and oversized input (issue 11): every case gets a clear refusal naming the limit
//! or the rule, and never takes the service down. Inputs are built here; nothing large is
//! committed. The service cases run against one real `serve` with small limits, and after
//! each case the service must still answer and finish a normal run.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rfm_agent::sample::HEADER;
use serde_json::Value;

use crate::common::{Service, bin, fails, multipart_body, std_bin, write, xlsx};

pub(crate) const TOKEN: &str = "hostile-test-token-0123456789";

// ---------------------------------------------------------------------------------------
// Inputs

fn cell(r: &str, text: &str) -> String {
    format!(r#"<c r="{r}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

const COLS: [&str; 8] = ["A", "B", "C", "D", "E", "F", "G", "H"];

/// The UCI header as a sheet's first row.
fn header_row() -> String {
    let cells: String = COLS
        .iter()
        .zip(HEADER)
        .map(|(c, h)| cell(&format!("{c}1"), h))
        .collect();
    format!("<row r=\"1\">{cells}</row>")
}

/// A workbook with the UCI header and `rows` data rows.
fn xlsx_rows(rows: usize) -> Vec<u8> {
    let cols = COLS;
    let mut data = header_row();
    for r in 2..rows + 2 {
        let v = [
            &*format!("{}", 500000 + r),
            "X",
            "Thing",
            "1",
            "2011-01-01 10:00",
            "1.5",
            &*format!("{}", 10000 + r % 50),
            "UK",
        ];
        data += &format!("<row r=\"{r}\">");
        for (c, x) in cols.iter().zip(v) {
            data += &cell(&format!("{c}{r}"), x);
        }
        data += "</row>";
    }
    xlsx(&data, &[])
}

/// The same archive with every part's uncompressed size (local header and central
/// directory) rewritten as 1,024 bytes: a part that lies about what it inflates to.
fn understate_sizes(mut zip: Vec<u8>) -> Vec<u8> {
    let mut i = 0;
    while i + 30 < zip.len() {
        let at = match &zip[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => Some(i + 22),
            [0x50, 0x4b, 0x01, 0x02] => Some(i + 24),
            _ => None,
        };
        if let Some(at) = at
            && u32::from_le_bytes(zip[at..at + 4].try_into().unwrap()) > 1024
        {
            zip[at..at + 4].copy_from_slice(&1024u32.to_le_bytes());
        }
        i += 1;
    }
    zip
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid small CSV with `n` customers.
pub(crate) fn small_csv(n: usize) -> String {
    let mut s = String::from(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
    );
    for i in 0..n * 3 {
        s += &format!(
            "{},A,Thing,{},2011-0{}-1{} 10:00,{}.5,{},UK\n",
            536000 + i,
            1 + i % 5,
            1 + i % 9,
            i % 10,
            1 + i % 7,
            12000 + i % n
        );
    }
    s
}

/// `n` valid rows of about 60 KB each (a long description): many bytes in few rows, so that
/// the size limit is the one reached first.
fn wide_rows(n: usize) -> Vec<u8> {
    let mut s = small_csv(1);
    s.truncate(s.find('\n').unwrap() + 1);
    let long = "x".repeat(60_000);
    for i in 0..n {
        s += &format!(
            "{},A,{long},1,2011-01-01 10:00,1.5,{},UK\n",
            536000 + i,
            12000 + i % 7
        );
    }
    s.into_bytes()
}

/// `rfm-agent ARGS` with the environment `env`, expected to fail with exit 1.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = bin();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail with 1: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.len() < 2200,
        "the message is bounded: {} bytes",
        stderr.len()
    );
    stderr
}

// ---------------------------------------------------------------------------------------
// The command line

#[test]
fn cli_refuses_every_input_limit_class() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let huge_col = write(
        d,
        "huge-col.xlsx",
        xlsx(
            &format!("<row r=\"1\">{}</row>", cell("LXQEASV1", "x")),
            &[],
        ),
    );
    let col_2000 = write(
        d,
        "col-2000.xlsx",
        xlsx(
            &header_row().replace("</row>", &format!("{}</row>", cell("BXX1", "x"))),
            &[],
        ),
    );
    let wide = write(
        d,
        "wide.xlsx",
        xlsx(&format!("<row r=\"1\">{}</row>", cell("BZZZ1", "x")), &[]),
    );
    let tall = write(d, "tall.xlsx", xlsx_rows(150));
    let bomb_part = xlsx("", &[("xl/sharedStrings.xml", vec![b'a'; 3 << 20])]);
    let liar = write(d, "liar.xlsx", understate_sizes(bomb_part.clone()));
    let xlsx_bomb = write(d, "bomb.xlsx", bomb_part);
    let long_row = format!("<row r=\"2\">{}</row>", cell("G2", &"y".repeat(70_000)));
    let long_cell = write(d, "long-cell.xlsx", xlsx(&(header_row() + &long_row), &[]));
    let gz = write(d, "bomb.csv.gz", gzip(&wide_rows(60)));
    let mut rows = small_csv(40);
    rows.push_str(&small_csv(40)[rows.find('\n').unwrap() + 1..]);
    let many_rows = write(d, "rows.csv", &rows);
    let wide_csv = write(
        d,
        "wide.csv",
        format!(
            "{}\n{}\n",
            (0..2000)
                .map(|i| format!("c{i}"))
                .collect::<Vec<_>>()
                .join(","),
            vec!["1"; 2000].join(",")
        ),
    );
    let long_header = write(
        d,
        "long-header.csv",
        format!("{}\n1\n", "h".repeat(100_000)),
    );
    let long_field = write(
        d,
        "long-field.csv",
        format!(
            "{}1,A,\"{}\",1,2011-01-01 10:00,1,12345,UK\n",
            &small_csv(1)[..small_csv(1).find('\n').unwrap() + 1],
            "z".repeat(100_000)
        ),
    );
    let big = write(d, "big.csv", small_csv(60).repeat(400));
    // (what, input, environment, what the message says)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "XLSX cell reference at column 4 billion",
            vec![&huge_col],
            vec![],
            "beyond the 16384 columns a sheet has",
        ),
        (
            "XLSX header cell at column 2,000",
            vec![&col_2000],
            vec![],
            "max_columns",
        ),
        (
            "XLSX column beyond Excel's 16,384",
            vec![&wide],
            vec![("RFM_AGENT__LIMITS__MAX_COLUMNS", "100000")],
            "beyond the 16384 columns a sheet has",
        ),
        (
            "XLSX rows over max_rows",
            vec![&tall],
            vec![("RFM_AGENT__LIMITS__MAX_ROWS", "100")],
            "max_rows",
        ),
        (
            "XLSX part that declares 1 KB and inflates to 3 MB",
            vec![&liar],
            vec![("RFM_AGENT__LIMITS__MAX_INPUT_MB", "2")],
            "larger than its declared uncompressed size",
        ),
        (
            "XLSX part that inflates past the limit",
            vec![&xlsx_bomb],
            vec![("RFM_AGENT__LIMITS__MAX_INPUT_MB", "2")],
            "max_input_mb",
        ),
        (
            "XLSX cell over max_field_kb",
            vec![&long_cell],
            vec![],
            "max_field_kb",
        ),
        (
            "gzip that inflates past the limit",
            vec![&gz],
            vec![("RFM_AGENT__LIMITS__MAX_INPUT_MB", "2")],
            "max_input_mb",
        ),
        (
            "CSV rows over max_rows",
            vec![&many_rows],
            vec![("RFM_AGENT__LIMITS__MAX_ROWS", "100")],
            "max_rows",
        ),
        (
            "CSV columns over max_columns",
            vec![&wide_csv],
            vec![],
            "max_columns",
        ),
        (
            "CSV header line over max_field_kb",
            vec![&long_header],
            vec![],
            "the header line",
        ),
        (
            "CSV field over max_field_kb",
            vec![&long_field],
            vec![],
            "line 2, column `Description`",
        ),
        (
            "CSV file over max_input_mb",
            vec![&big],
            vec![("RFM_AGENT__LIMITS__MAX_INPUT_MB", "1")],
            "max_input_mb",
        ),
    ];
    for (what, input, env, says) in cases {
        let mut args = vec!["segment", "--input"];
        args.extend(input);
        let e = refused(&args, &env);
        assert!(e.contains(says), "{what}: {e}");
        let limit = ["max_", "the header line", "line 2, column"]
            .iter()
            .any(|p| says.starts_with(p));
        assert!(
            !limit || e.contains("raise `[limits] max_"),
            "{what} names the setting: {e}"
        );
    }
}

#[test]
fn cli_refuses_parquet_limits_from_the_footer() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("sample.parquet");
    let out = bin().args(["sample", "--out"]).arg(&pq).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pq = pq.display().to_string();
    for (env, says) in [
        (("RFM_AGENT__LIMITS__MAX_ROWS", "1000"), "max_rows"),
        (("RFM_AGENT__LIMITS__MAX_INPUT_MB", "1"), "max_input_mb"),
        (("RFM_AGENT__LIMITS__MAX_COLUMNS", "3"), "max_columns"),
    ] {
        let e = refused(&["segment", "--input", &pq], &[env]);
        assert!(e.contains(says), "{says}: {e}");
    }
}

#[test]
fn cli_errors_list_a_handful_of_names() {
    let dir = tempfile::tempdir().unwrap();
    let header: Vec<String> = (0..900)
        .map(|i| format!("column_with_a_long_name_{i}"))
        .collect();
    let f = write(
        dir.path(),
        "names.csv",
        format!("{}\n{}\n", header.join(","), vec!["1"; 900].join(",")),
    );
    let e = fails(&["segment", "--input", &f]);
    assert!(e.contains("… and 888 more") && e.len() < 2200, "{e}");
}

#[test]
fn cli_exports_neutralise_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = small_csv(30);
    for (i, id) in [
        "=HYPERLINK(\"\"http://x\"\";\"\"y\"\")",
        "@SUM(1+1)",
        "+1+1",
        "-1+2",
    ]
    .iter()
    .enumerate()
    {
        csv += &format!(
            "{},A,Thing,2,2011-02-0{} 10:00,3.5,\"{id}\",UK\n",
            600000 + i,
            i + 1
        );
    }
    let f = write(dir.path(), "tx.csv", csv);
    let out_dir = dir.path().join("out");
    let out = bin()
        .args(["segment", "--input", &f, "--k", "2", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let customers = std::fs::read_to_string(out_dir.join("customers.csv")).unwrap();
    for want in [
        "\"'=HYPERLINK(\"\"http://x\"\";\"\"y\"\")\"",
        "'@SUM(1+1)",
        "'+1+1",
        "'-1+2",
    ] {
        assert!(customers.contains(want), "{want} in customers.csv");
    }
    let mut segments = String::new();
    for e in std::fs::read_dir(out_dir.join("segments")).unwrap() {
        segments += &std::fs::read_to_string(e.unwrap().path()).unwrap();
    }
    assert!(
        segments.contains("'@SUM(1+1)") && !segments.contains(",@SUM"),
        "segments/*.csv too"
    );
    assert!(
        customers.lines().any(|l| l.starts_with("12000,")),
        "numbers stay numbers"
    );
}

#[test]
fn cli_user_templates_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let built_in = rfm_agent::agent::prompts::built_in_text("segments.toml");
    let sample = crate::common::sample_csv().display().to_string();
    for (what, replace_with, says) in [
        (
            "a nested loop",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "fuel",
        ),
        ("string repetition", "{{ 'x' * 100000000 }}", "`*`"),
        (
            "doubling through set",
            "{% set a = 'xx' %}{% set b = a ~ a %}{{ b }}",
            "set",
        ),
    ] {
        let prompts = dir.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(&prompts).unwrap();
        let text = built_in.replace("{{ first_name }}", replace_with);
        assert_ne!(text, built_in);
        std::fs::write(prompts.join("segments.toml"), text).unwrap();
        let started = Instant::now();
        let e = refused(
            &[
                "agent",
                "--input",
                &sample,
                "--prompts",
                prompts.to_str().unwrap(),
            ],
            &[],
        );
        assert!(e.contains(says), "{what}: {e}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn serve_refuses_empty_and_short_tokens_and_a_shared_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let e = refused(&["serve", "--data-dir", data], &[("RFM_AGENT_TOKEN", "")]);
    assert!(e.contains("token is empty"), "{e}");
    let e = refused(&["serve", "--data-dir", data, "--token", "  "], &[]);
    assert!(e.contains("token is empty"), "{e}");
    let e = refused(
        &["serve", "--data-dir", data, "--bind", "0.0.0.0:0"],
        &[("RFM_AGENT_TOKEN", "short")],
    );
    assert!(e.contains("at least 16"), "{e}");
    let first = Service::start(Path::new(data), &[], &[]);
    let e = refused(&["serve", "--bind", "127.0.0.1:0", "--data-dir", data], &[]);
    assert!(
        e.contains("is using this data folder") && e.contains(&first.child.id().to_string()),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn serve_makes_an_existing_data_dir_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("notes.txt"), "x").unwrap();
    std::fs::set_permissions(
        data.join("notes.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let svc = Service::start(&data, &[], &[]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("notes.txt")), 0o600);
    assert_eq!(mode(&data.join("runs.sqlite3")), 0o600);
    drop(svc);
}

// ---------------------------------------------------------------------------------------
// The service

/// The service as its own process, driven over HTTP with the token.
pub(crate) struct Api {
    pub(crate) svc: Service,
    pub(crate) http: reqwest::blocking::Client,
}

impl Api {
    pub(crate) fn start(data: &Path, env: &[(&str, &str)]) -> Api {
        let mut all = vec![("RFM_AGENT_TOKEN", TOKEN)];
        all.extend_from_slice(env);
        rfm_agent::tls::install();
        Api {
            svc: Service::start(data, &[], &all),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    pub(crate) fn req(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(method, self.svc.url(path))
            .bearer_auth(TOKEN)
    }

    pub(crate) fn upload(&self, fields: &[(&str, Option<&str>, &[u8])]) -> (u16, String) {
        let (kind, body) = multipart_body(fields);
        let r = self
            .req(reqwest::Method::POST, "/v1/runs")
            .header("content-type", kind)
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// Uploads and waits for the run to end; returns its final status document.
    pub(crate) fn run(&self, fields: &[(&str, Option<&str>, &[u8])]) -> Value {
        let (status, text) = self.upload(fields);
        assert_eq!(status, 202, "{text}");
        let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.wait(&id)
    }

    pub(crate) fn wait(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let v: Value = self
                .req(reqwest::Method::GET, &format!("/v1/runs/{id}"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            if matches!(v["run"]["status"].as_str(), Some("done" | "failed")) {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "run {id} never ended: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The service is up and a normal run finishes.
    pub(crate) fn still_serves(&self, after: &str) {
        let r = self.http.get(self.svc.url("/healthz")).send();
        assert!(
            r.is_ok_and(|r| r.status() == 200),
            "after {after}: /healthz"
        );
        let v = self.run(&[
            ("file", Some("ok.csv"), small_csv(20).as_bytes()),
            ("k", None, b"2"),
            ("llm", None, b"rules"),
        ]);
        assert_eq!(v["run"]["status"], "done", "after {after}: {v}");
    }

    pub(crate) fn failed_with(
        &self,
        what: &str,
        fields: &[(&str, Option<&str>, &[u8])],
        says: &str,
    ) {
        let v = self.run(fields);
        assert_eq!(v["run"]["status"], "failed", "{what}: {v}");
        let error = v["run"]["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{what}: {error}");
        assert!(error.len() <= 2048, "{what}: bounded message");
        self.still_serves(what);
    }
}

#[test]
fn service_refuses_hostile_uploads_and_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        &[
            ("RFM_AGENT__LIMITS__MAX_INPUT_MB", "4"),
            ("RFM_AGENT__LIMITS__MAX_ROWS", "2000"),
            ("RFM_AGENT__SERVER__MAX_UPLOAD_MB", "8"),
        ],
    );
    let huge_col = xlsx(
        &format!("<row r=\"1\">{}</row>", cell("LXQEASV1", "x")),
        &[],
    );
    api.failed_with(
        "XLSX with a column 4 billion wide",
        &[("file", Some("a.xlsx"), &huge_col)],
        "beyond the 16384 columns a sheet has",
    );
    api.failed_with(
        "XLSX with 5,000 rows",
        &[("file", Some("b.xlsx"), &xlsx_rows(5000))],
        "max_rows",
    );
    let bomb = gzip(&wide_rows(340));
    api.failed_with(
        "gzip bomb",
        &[("file", Some("c.csv.gz"), &bomb)],
        "max_input_mb",
    );
    let sample = tempfile::tempdir().unwrap();
    let pq = sample.path().join("s.parquet");
    assert!(
        bin()
            .args(["sample", "--out"])
            .arg(&pq)
            .output()
            .unwrap()
            .status
            .success()
    );
    api.failed_with(
        "Parquet with 300,000 rows",
        &[("file", Some("d.parquet"), &std::fs::read(&pq).unwrap())],
        "max_rows",
    );
    let names: Vec<String> = (0..5000).map(|i| format!("col{i}")).collect();
    let wide = format!("{}\n{}\n", names.join(","), vec!["1"; 5000].join(","));
    api.failed_with(
        "CSV with 5,000 unknown columns",
        &[("file", Some("e.csv"), wide.as_bytes())],
        "max_columns",
    );
    let list: Value = api
        .req(reqwest::Method::GET, "/v1/runs")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        list.to_string().len() < 64 << 10,
        "the run list stays small"
    );
}

#[test]
fn service_bounds_echoes_and_answers_json() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let long_name = format!("{}.csv", "n".repeat(1 << 20));
    let (status, text) = api.upload(&[("file", Some(&long_name), b"x")]);
    assert_eq!(status, 400, "{}", &text[..text.len().min(300)]);
    assert!(text.len() < 2200, "file name echo: {} bytes", text.len());
    api.still_serves("a 1 MB file name");
    let huge = vec![b'k'; 150 << 10];
    let (status, text) = api.upload(&[("sample", None, b"true"), ("columns", None, &huge)]);
    assert_eq!(status, 400);
    assert!(
        text.len() < 2200 && text.contains("longer than 4096"),
        "option echo: {}",
        &text[..text.len().min(300)]
    );
    api.still_serves("a 150 KB option value");
    // Malformed multipart, wrong media type, bad JSON: all JSON errors.
    for (kind, body, path, want) in [
        (
            "multipart/form-data; boundary=zzz",
            b"--zzz\r\nnot a part".to_vec(),
            "/v1/runs",
            400,
        ),
        ("text/plain", b"hello".to_vec(), "/v1/runs", 400),
        (
            "text/plain",
            b"{}".to_vec(),
            "/v1/runs/0123456789abcdef/campaigns",
            415,
        ),
        (
            "application/json",
            b"{not json".to_vec(),
            "/v1/runs/0123456789abcdef/campaigns",
            400,
        ),
    ] {
        let r = api
            .req(reqwest::Method::POST, path)
            .header("content-type", kind)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{kind} {path}");
        let v: Value = r
            .json()
            .unwrap_or_else(|e| panic!("{kind} {path}: not JSON: {e}"));
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        api.still_serves(kind);
    }
    // A method a route does not have: 405, in JSON too.
    let r = api.req(reqwest::Method::PUT, "/v1/runs").send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.json::<Value>().unwrap()["error"].is_string());
}

#[test]
fn service_limits_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        &[("RFM_AGENT__SERVER__SIGN_IN_ATTEMPTS_PER_MINUTE", "5")],
    );
    // A large sign-in body is refused after a few KB, not buffered.
    let r = api
        .http
        .post(api.svc.url("/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 8 << 20])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert!(r.json::<Value>().unwrap()["error"].is_string());
    let sign_in = |token: &str| {
        api.http
            .post(api.svc.url("/sign-in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .unwrap()
    };
    for _ in 0..5 {
        assert_eq!(sign_in("wrong-guess").status().as_u16(), 401);
    }
    let r = sign_in("wrong-guess");
    assert_eq!(
        r.status().as_u16(),
        429,
        "wrong guesses wait once the attempts are used up"
    );
    assert!(r.headers().contains_key("retry-after"));
    let bearer = |token: &str| {
        (api.http.get(api.svc.url("/v1/runs")))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        bearer("another-wrong-guess"),
        429,
        "bearer guesses count too"
    );
    // The limit is per address: a client on another loopback address is served as usual.
    rfm_agent::tls::install();
    let other = reqwest::blocking::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let api = Api {
        svc: api.svc,
        http: other,
    };
    api.still_serves("sign-in attempts from another address");
}

/// Reads from `s` until the server closes it; returns what came and how long it took.
fn until_closed(mut s: TcpStream, limit: Duration) -> (String, Duration) {
    s.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).to_string(), started.elapsed())
}

#[test]
fn service_closes_slow_and_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        &[
            ("RFM_AGENT__SERVER__HEADER_TIMEOUT_SECS", "2"),
            ("RFM_AGENT__SERVER__BODY_TIMEOUT_SECS", "2"),
            ("RFM_AGENT__SERVER__MAX_CONNECTIONS", "8"),
        ],
    );
    let addr = api.svc.base.trim_start_matches("http://").to_string();
    // Silent, half a header, and a stalled upload: all closed within a few seconds.
    let silent = TcpStream::connect(&addr).unwrap();
    let (_, took) = until_closed(silent, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(8),
        "a silent connection lived {took:?}"
    );
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.")
        .unwrap();
    let (_, took) = until_closed(half, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(8),
        "half a header lived {took:?}"
    );
    let mut stalled = TcpStream::connect(&addr).unwrap();
    let (kind, _) = multipart_body(&[]);
    write!(stalled, "POST /v1/runs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: {kind}\r\nContent-Length: 1000000\r\n\r\n--XyZrfm").unwrap();
    let (answer, took) = until_closed(stalled, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(10),
        "a stalled upload lived {took:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // HTTP/2 with prior knowledge (no Host header to check) is not served at all.
    rfm_agent::tls::install();
    let h2 = reqwest::blocking::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = h2.get(api.svc.url("/v1/runs")).bearer_auth(TOKEN).send();
    assert!(r.is_err(), "h2c was answered: {:?}", r.map(|r| r.status()));
    // More idle connections than the limit: they are closed in time and requests get through.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let started = Instant::now();
    let r = api.http.get(api.svc.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "waited {:?}",
        started.elapsed()
    );
    drop(idle);
    api.still_serves("slow connections");
    assert!(
        !api.svc
            .stderr
            .lock()
            .unwrap()
            .contains("Too many open files")
    );
}

/// A TCP server that accepts and never answers: an LLM that hangs.
fn hanging_llm() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    (l, url)
}

#[test]
fn service_times_out_and_cancels_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (_llm, url) = hanging_llm();
    let api = Api::start(
        dir.path(),
        &[
            ("RFM_AGENT__SERVER__MAX_RUNNING", "1"),
            ("RFM_AGENT__SERVER__RUN_TIMEOUT_SECS", "4"),
            ("RFM_AGENT__LLM__BASE_URL", &url),
            ("RFM_AGENT__LLM__TIMEOUT_SECS", "120"),
            ("RFM_AGENT__LLM__MAX_ATTEMPTS", "1"),
            ("OPENAI_API_KEY", "sk-test-not-a-real-key"),
        ],
    );
    let csv = small_csv(20);
    let fields = |llm: &'static [u8]| {
        vec![
            ("file", Some("t.csv"), csv.as_bytes()),
            ("k", None, &b"2"[..]),
            ("llm", None, llm),
        ]
    };
    // Out of time: failed with the reason, and the slot is free for the next run.
    let started = Instant::now();
    let v = api.run(&fields(b"openai"));
    assert_eq!(v["run"]["status"], "failed", "{v}");
    assert!(
        v["run"]["error"]
            .as_str()
            .unwrap()
            .contains("run_timeout_secs"),
        "{v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    api.still_serves("a run out of time");
    // DELETE of a computing run and of a queued one: both gone, the slot free at once.
    let (_, a) = api.upload(&fields(b"openai"));
    let a = serde_json::from_str::<Value>(&a).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, b) = api.upload(&fields(b"rules"));
    let b = serde_json::from_str::<Value>(&b).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(500));
    for id in [&b, &a] {
        let r = api
            .req(reqwest::Method::DELETE, &format!("/v1/runs/{id}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "{id}");
        let r = api
            .req(reqwest::Method::GET, &format!("/v1/runs/{id}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    let started = Instant::now();
    api.still_serves("deleting running and queued runs");
    assert!(started.elapsed() < Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !dir.path().join("runs").join(&b).exists(),
        "the queued run's folder is removed"
    );
}

#[test]
fn service_gates_and_bounds_custom_templates() {
    let dir = tempfile::tempdir().unwrap();
    let built_in = rfm_agent::agent::prompts::built_in_text("segments.toml");
    let looping = built_in.replace(
        "{{ first_name }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    );
    let repeat = built_in.replace(
        "{{ first_name }}",
        "{% for i in range(1000) %}{{ 'x' * 100000000 }}{% endfor %}",
    );
    {
        let api = Api::start(dir.path(), &[]);
        let v = api.run(&[
            ("file", Some("t.csv"), small_csv(20).as_bytes()),
            ("k", None, b"2"),
        ]);
        let id = v["run"]["id"].as_str().unwrap().to_string();
        let r = api
            .req(reqwest::Method::POST, &format!("/v1/runs/{id}/campaigns"))
            .json(&serde_json::json!({"segments_toml": looping}))
            .send()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            403,
            "custom templates are off by default"
        );
    }
    let api = Api::start(
        dir.path(),
        &[("RFM_AGENT__SERVER__ALLOW_CUSTOM_TEMPLATES", "true")],
    );
    let list: Value = api
        .req(reqwest::Method::GET, "/v1/runs")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = list["runs"][0]["id"].as_str().unwrap().to_string();
    let r = api
        .req(reqwest::Method::POST, &format!("/v1/runs/{id}/campaigns"))
        .json(&serde_json::json!({"segments_toml": repeat}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("`*`"));
    let r = api
        .req(reqwest::Method::POST, &format!("/v1/runs/{id}/campaigns"))
        .json(&serde_json::json!({"segments_toml": looping}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v = api.wait(&id);
    assert_eq!(v["run"]["status"], "failed", "{v}");
    assert!(v["run"]["error"].as_str().unwrap().contains("fuel"), "{v}");
    api.still_serves("a looping template");
}

#[test]
fn service_exports_are_private_and_safe() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let mut csv = small_csv(20);
    csv += "700000,A,Thing,2,2011-02-01 10:00,3.5,=HYPERLINK(1),UK\n";
    let v = api.run(&[("file", Some("t.csv"), csv.as_bytes()), ("k", None, b"2")]);
    assert_eq!(v["run"]["status"], "done", "{v}");
    let id = v["run"]["id"].as_str().unwrap();
    let text = api
        .req(
            reqwest::Method::GET,
            &format!("/v1/runs/{id}/files/customers.csv"),
        )
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains("'=HYPERLINK(1)") && !text.contains(",=HYPERLINK"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let f = dir
            .path()
            .join("runs")
            .join(id)
            .join("out")
            .join("customers.csv");
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let _ = std_bin;
}

#[test]
fn service_closes_connections_that_stop_reading() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        &[
            ("RFM_AGENT__SERVER__BODY_TIMEOUT_SECS", "2"),
            ("RFM_AGENT__SERVER__HEADER_TIMEOUT_SECS", "30"),
        ],
    );
    let v = api.run(&[
        ("file", Some("t.csv"), small_csv(20).as_bytes()),
        ("k", None, b"2"),
        ("llm", None, b"rules"),
    ]);
    let path = format!(
        "/v1/runs/{}/files/report.html",
        v["run"]["id"].as_str().unwrap()
    );
    let size = api
        .req(reqwest::Method::GET, &path)
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .len();
    // Forty pipelined requests for the report, and nothing read: megabytes the kernel's
    // buffers cannot hold, so the service's writes stall.
    let addr = api.svc.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    let one =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    s.write_all(one.repeat(40).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut got, mut buf) = (0usize, vec![0u8; 1 << 16]);
    let ended = loop {
        match s.read(&mut buf) {
            Ok(0) => break "closed",
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
            Err(e) => {
                use std::io::ErrorKind::{TimedOut, WouldBlock};
                break if matches!(e.kind(), WouldBlock | TimedOut) {
                    "still open"
                } else {
                    "error"
                };
            }
        }
    };
    assert_ne!(
        ended, "still open",
        "the service kept a connection nobody reads ({got} bytes)"
    );
    assert!(
        got < 40 * size,
        "{got} of {} bytes: the answer was cut",
        40 * size
    );
    api.still_serves("a client that stopped reading");
}
