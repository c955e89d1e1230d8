//! The service under the hostile uploads and requests of issue 30, each against a real
//! `rfm-agent serve` with default settings unless a case says otherwise. Each is refused
//! with a plain reason; the service stays up and serves a normal run after it. Runs compute
//! in processes of their own, whose peak memory each run records. Payloads are made here.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::multipart_body;
use crate::craft::{self, Lie};
use crate::hostile::{Api, TOKEN, small_csv};
use crate::hostile_readers::header_row;

/// The processes whose parent is `pid`, with their resident memory in KiB.
fn children(pid: u32) -> Vec<(u32, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if parent == Some(pid) {
            let rss = rfm_agent::sysmem::resident_kib(Some(child)).unwrap_or(0);
            found.push((child, rss));
        }
    }
    found
}

/// A workbook of `entries` empty shared strings, streamed into the archive (a 260 MB part
/// for 20 million packs to a few hundred KB).
fn empty_shared_strings(entries: usize) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let base = crate::common::xlsx(&header_row(), &[]);
    let mut zip = zip::ZipWriter::new_append(std::io::Cursor::new(base)).unwrap();
    let options = SimpleFileOptions::default().large_file(true);
    zip.start_file("xl/sharedStrings.xml", options).unwrap();
    zip.write_all(br#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#)
        .unwrap();
    let block = "<si><t/></si>".repeat(100_000);
    for _ in 0..entries / 100_000 {
        zip.write_all(block.as_bytes()).unwrap();
    }
    zip.write_all(b"</sst>").unwrap();
    zip.finish().unwrap().into_inner()
}

/// Processor time the process `pid` has used so far, in clock ticks (user and system).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // After the name: state ppid … utime (field 14) stime (15), counted from 1.
    let at = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    at(14) + at(15)
}

/// The ids of the runs the service lists (its first page).
fn run_ids(api: &Api) -> Vec<String> {
    let list: Value = (api.req(reqwest::Method::GET, "/v1/runs"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    (list["runs"].as_array().unwrap().iter())
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

/// Every run's recorded peak, in MiB.
fn run_peaks(api: &Api) -> Vec<u64> {
    let list: Value = (api.req(reqwest::Method::GET, "/v1/runs?limit=1000"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    (list["runs"].as_array().unwrap().iter())
        .filter_map(|r| r["peak_mib"].as_u64())
        .collect()
}

#[test]
fn hostile_uploads_fail_plainly_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let sst = r#"<?xml version="1.0"?><sst xmlns="x" uniqueCount="100000000000000"><si><t>x</t></si></sst>"#;
    let declares = crate::common::xlsx(&header_row(), &[("xl/sharedStrings.xml", sst.into())]);
    assert!(declares.len() < 4096);
    let columns = craft::COLUMNS.as_bytes();
    let long = craft::parquet(100_000, &[vec![b'x'; 100_000]], Lie::default());
    let expands = craft::parquet(20_000, &[vec![b'z'; 60_000]], Lie::default());
    let ids: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("{}", 12000 + i).into_bytes())
        .collect();
    let lies = Lie {
        page_values: Some(i32::MAX),
        ..Lie::default()
    };
    let lying = craft::parquet(1000, &ids, lies);
    let empties = empty_shared_strings(20_000_000);
    /// (what, file name, bytes, columns option, what the refusal says)
    type Case<'a> = (&'a str, &'a str, &'a [u8], &'a [u8], &'a str);
    let cases: [Case; 5] = [
        (
            "XLSX declaring 10^14 strings",
            "a.xlsx",
            &declares,
            b"",
            "declares 100000000000000 strings",
        ),
        (
            "XLSX of 20 million empty strings",
            "b.xlsx",
            &empties,
            b"",
            "max_chunk_mb",
        ),
        (
            "Parquet with a 100 KB dictionary value",
            "c.parquet",
            &long,
            columns,
            "max_field_kb",
        ),
        (
            "Parquet expanding to 1.2 GB",
            "d.parquet",
            &expands,
            columns,
            "max_chunk_mb",
        ),
        (
            "Parquet page header declaring 2^31 values",
            "e.parquet",
            &lying,
            columns,
            "declare more than",
        ),
    ];
    for (what, name, bytes, columns, says) in cases {
        let mut fields = vec![("file", Some(name), bytes), ("llm", None, &b"rules"[..])];
        if !columns.is_empty() {
            fields.push(("columns", None, columns));
        }
        api.failed_with(what, &fields, says);
    }
    let service_mib = api.svc.peak_rss_kib() >> 10;
    let runs_mib = run_peaks(&api).into_iter().max().unwrap_or(0);
    assert!(runs_mib > 0, "every run records its peak");
    assert!(
        service_mib + runs_mib < 1024,
        "the service took {service_mib} MiB and its largest run {runs_mib} MiB"
    );
}

/// The most run processes of the service `pid` seen at once, and the most memory the
/// service and they held together (KiB), sampled every 10 ms until `done`.
fn sample_processes(
    pid: u32,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(usize, u64)> {
    std::thread::spawn(move || {
        let (mut most, mut kib) = (0, 0);
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let kids = children(pid);
            most = most.max(kids.len());
            let own = rfm_agent::sysmem::resident_kib(Some(pid)).unwrap_or(0);
            kib = kib.max(own + kids.iter().map(|(_, k)| k).sum::<u64>());
            std::thread::sleep(Duration::from_millis(10));
        }
        (most, kib)
    })
}

/// Starts a run and waits until it computes; returns its id.
fn running(api: &Api, fields: &[(&str, Option<&str>, &[u8])]) -> String {
    let (status, text) = api.upload(fields);
    assert_eq!(status, 202, "{text}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    loop {
        let path = format!("/v1/runs/{id}");
        let v: Value = api
            .req(reqwest::Method::GET, &path)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["run"]["status"] == "running" {
            return id;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{v}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn delete_ends_the_run_process_before_its_slot_is_free() {
    let dir = tempfile::tempdir().unwrap();
    // A payload that takes a while to parse: 1.5 million rows of 300 customers.
    let mut csv = small_csv(1).lines().next().unwrap().to_string() + "\n";
    for i in 0..1_500_000u32 {
        let (m, d, c) = (1 + i % 9, 1 + i % 9, 100000 + i % 300);
        csv += &format!(
            "{},A,Thing,1,2011-0{m}-0{d} 10:00,1.5,{c},UK\n",
            536000 + i / 3
        );
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(csv.as_bytes()).unwrap();
    let slow = gz.finish().unwrap();
    drop(csv);
    let api = Api::start(dir.path(), &[("RFM_AGENT__SERVER__MAX_RUNNING", "2")]);
    let pid = api.svc.child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_processes(pid, done.clone());
    for _ in 0..20 {
        let fields = [
            ("file", Some("slow.csv.gz"), &slow[..]),
            ("llm", None, b"rules"),
        ];
        let id = running(&api, &fields);
        let r = api
            .req(reqwest::Method::DELETE, &format!("/v1/runs/{id}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }
    let started = Instant::now();
    while !children(pid).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "run processes outlived DELETE"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (most, kib) = sampler.join().unwrap();
    assert!(
        most <= 2,
        "at most max_running = 2 run processes, seen {most}"
    );
    assert!(
        kib < 1 << 20,
        "service and runs together: {} MiB",
        kib >> 10
    );
    // Nothing goes on computing for the deleted runs: the service is idle.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let busy = cpu_ticks(pid) - before;
    assert!(
        busy < 30,
        "the service used {busy} ticks of 100 in the second after"
    );
    assert_eq!(run_ids(&api), Vec::<String>::new());
    api.still_serves("20 deleted runs");
}

/// A run's process has its limits (memory from `[limits] max_memory_mb`, 2048 MiB, plus 4 GiB
/// of address space; no core dumps), its own process group, and no secret of the service's
/// in its environment.
fn confined(pid: u32) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let limit = |name: &str| {
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        limit("Max address space"),
        ((2048u64 << 20) + (4 << 30)).to_string(),
        "{limits}"
    );
    assert_eq!(limit("Max core file size"), "0", "{limits}");
    assert_ne!(limit("Max cpu time"), "unlimited", "{limits}");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains(TOKEN) && !environ.contains("RFM_AGENT_TOKEN"),
        "{environ}"
    );
    assert!(
        !environ.contains("RFM_AGENT_RUN_FAULT"),
        "the spec carries what a run needs"
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let group = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert_eq!(group, pid.to_string(), "its own process group");
}

/// Runs of the built-in sample strike `fault`; file uploads run as usual.
fn faulty(dir: &std::path::Path, fault: &str, env: &[(&str, &str)]) -> Api {
    let mut all = vec![("RFM_AGENT_RUN_FAULT", fault)];
    all.extend_from_slice(env);
    Api::start(dir, &all)
}

fn sample_run(api: &Api) -> Value {
    api.run(&[("sample", None, b"true"), ("llm", None, b"rules")])
}

#[test]
fn a_run_past_its_time_or_memory_is_stopped_and_the_next_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    // Past its time: the process is ended, not left running.
    let api = faulty(
        dir.path(),
        "hang",
        &[("RFM_AGENT__SERVER__RUN_TIMEOUT_SECS", "3")],
    );
    let v = sample_run(&api);
    assert!(
        v["run"]["error"]
            .as_str()
            .unwrap()
            .contains("took longer than 3 s"),
        "{v}"
    );
    assert!(
        children(api.svc.child.id()).is_empty(),
        "the process ended with its run"
    );
    api.still_serves("a run past its time");
    drop(api);
    // Past its memory limit (the service reads the process's memory every 100 ms).
    let api = faulty(
        dir.path(),
        "allocate",
        &[("RFM_AGENT__LIMITS__MAX_MEMORY_MB", "150")],
    );
    let v = sample_run(&api);
    let error = v["run"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("needed more than its 150 MiB"), "{v}");
    assert!(error.contains("max_memory_mb"), "{error}");
    assert!(v["run"]["peak_mib"].as_u64().unwrap() >= 150, "{v}");
    api.still_serves("a run past its memory");
    drop(api);
    // One allocation past its address space fails at once (not overcommitted).
    let api = faulty(dir.path(), "reserve", &[]);
    let v = sample_run(&api);
    let error = v["run"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("needed more than its 2048 MiB"), "{v}");
    api.still_serves("an allocation past the address space");
}

/// A run waits for memory: with room for one run's limit, a second run stays queued, saying
/// so, until the first has ended and given its memory back.
#[test]
fn runs_wait_for_memory_and_start_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let api = faulty(
        dir.path(),
        "hang",
        &[
            ("RFM_AGENT__SERVER__MAX_MEMORY_MB", "2048"),
            ("RFM_AGENT__SERVER__MAX_RUNNING", "2"),
        ],
    );
    let first = running(&api, &[("sample", None, b"true"), ("llm", None, b"rules")]);
    let fields = [("file", Some("ok.csv"), small_csv(20).into_bytes())];
    let (status, text) = api.upload(&[(fields[0].0, fields[0].1, &fields[0].2[..])]);
    assert_eq!(status, 202, "{text}");
    let second = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(1500));
    let v: Value = (api.req(reqwest::Method::GET, &format!("/v1/runs/{second}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["run"]["status"], "queued", "{v}");
    assert_eq!(v["run"]["progress"], "waiting for memory", "{v}");
    assert_eq!(children(api.svc.child.id()).len(), 1, "one run process");
    let r = api
        .req(reqwest::Method::DELETE, &format!("/v1/runs/{first}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(api.wait(&second)["run"]["status"], "done");
}

#[test]
fn a_run_killed_from_outside_fails_plainly_and_the_next_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    // The kernel's out-of-memory killer, an operator: SIGKILL.
    let api = faulty(dir.path(), "hang", &[]);
    let id = running(&api, &[("sample", None, b"true"), ("llm", None, b"rules")]);
    let started = Instant::now();
    let victim = loop {
        if let Some((pid, _)) = children(api.svc.child.id()).first() {
            break *pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no run process"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    confined(victim);
    std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    let v = api.wait(&id);
    assert_eq!(v["run"]["status"], "failed", "{v}");
    assert!(
        v["run"]["error"]
            .as_str()
            .unwrap()
            .contains("killed from outside"),
        "{v}"
    );
    api.still_serves("a run killed by SIGKILL");
}

/// A panic and an abort: an internal error with a reference; the panic's words only in the
/// service's log.
#[test]
fn a_run_that_panics_or_aborts_is_an_internal_error_with_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    for fault in ["panic", "abort"] {
        let api = faulty(dir.path(), fault, &[]);
        let v = sample_run(&api);
        let error = v["run"]["error"].as_str().unwrap_or_default().to_string();
        assert!(
            error.starts_with("internal error (reference "),
            "{fault}: {v}"
        );
        assert!(!v.to_string().contains("SECRET-PANIC-TEXT"), "{v}");
        let list = api
            .req(reqwest::Method::GET, "/v1/runs")
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            !list.contains("SECRET-PANIC-TEXT") && !list.contains("panicked"),
            "{list}"
        );
        let reference = error
            .split("reference ")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap();
        let log = api.svc.stderr.lock().unwrap().clone();
        assert!(
            log.contains(reference),
            "the log names the reference: {log}"
        );
        if fault == "panic" {
            assert!(
                log.contains("SECRET-PANIC-TEXT"),
                "the log has the details: {log}"
            );
        }
        api.still_serves(fault);
    }
}

#[test]
fn the_right_token_is_never_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let bearer = |token: &str, forwarded: Option<&str>| {
        let mut r = api.http.get(api.svc.url("/v1/runs")).bearer_auth(token);
        if let Some(f) = forwarded {
            r = r.header("x-forwarded-for", f);
        }
        r.send().unwrap().status().as_u16()
    };
    let wrong: Vec<u16> = (0..20).map(|_| bearer("wrong-guess", None)).collect();
    assert!(wrong[..10].iter().all(|s| *s == 401), "{wrong:?}");
    assert!(
        wrong[10..].iter().all(|s| *s == 429),
        "throttled past 10 a minute: {wrong:?}"
    );
    assert_eq!(
        bearer(TOKEN, None),
        200,
        "the right token after 20 wrong ones"
    );
    assert!(
        sign_in(&api).contains("rfm_agent_session="),
        "the sign-in form, right token"
    );
    assert_eq!(bearer("wrong-guess", None), 429);
    // An untrusted client's X-Forwarded-For changes nothing.
    assert_eq!(bearer("wrong-guess", Some("203.0.113.7")), 429);
    drop(api);
    // Behind a trusted proxy, each client is throttled on its own.
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        &[("RFM_AGENT__SERVER__TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8")],
    );
    let status = |token: &str, client: &str| {
        (api.http.get(api.svc.url("/v1/runs")))
            .bearer_auth(token)
            .header("x-forwarded-for", format!("198.51.100.1, {client}"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    for _ in 0..12 {
        status("wrong-guess", "203.0.113.1");
    }
    assert_eq!(status("wrong-guess", "203.0.113.1"), 429);
    assert_eq!(
        status("wrong-guess", "203.0.113.2"),
        401,
        "another client is not throttled"
    );
    assert_eq!(status(TOKEN, "203.0.113.1"), 200);
}

/// A client that shows redirects rather than following them.
fn no_redirects() -> reqwest::blocking::Client {
    rfm_agent::tls::install();
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The sign-in cookie of `api`'s service.
fn sign_in(api: &Api) -> String {
    let r = (no_redirects().post(api.svc.url("/sign-in")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    r.headers()["set-cookie"].to_str().unwrap().to_string()
}

#[test]
fn sessions_are_kept_by_the_service_and_end_at_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let set = sign_in(&api);
    let hex: String = TOKEN.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!set.contains(TOKEN) && !set.contains(&hex), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let http = no_redirects();
    let with_cookie = |method: reqwest::Method, path: &str| {
        http.request(method, api.svc.url(path))
            .header("cookie", &cookie)
            .send()
            .unwrap()
    };
    assert_eq!(
        with_cookie(reqwest::Method::GET, "/v1/runs")
            .status()
            .as_u16(),
        200
    );
    let r = with_cookie(reqwest::Method::POST, "/sign-out");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        with_cookie(reqwest::Method::GET, "/v1/runs")
            .status()
            .as_u16(),
        401,
        "the old cookie is worthless after sign-out"
    );
    // A restart ends every session.
    let cookie = sign_in(&api).split(';').next().unwrap().to_string();
    drop(api);
    let api = Api::start(dir.path(), &[]);
    let r = (no_redirects().get(api.svc.url("/v1/runs")))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "sessions end with the service");
    drop(api);
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        &[("RFM_AGENT__SERVER__PUBLIC_URL", "https://rfm.example.com")],
    );
    assert!(
        sign_in(&api).contains("; Secure"),
        "https public_url: a Secure cookie"
    );
}

#[test]
fn requests_from_other_sites_and_odd_targets_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let v = api.run(&[("sample", None, b"true"), ("llm", None, b"rules")]);
    let id = v["run"]["id"].as_str().unwrap().to_string();
    let cookie = sign_in(&api).split(';').next().unwrap().to_string();
    let delete = |header: (&str, &str)| {
        (api.http.delete(api.svc.url(&format!("/v1/runs/{id}"))))
            .header("cookie", &cookie)
            .header(header.0, header.1)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        delete(("origin", "https://evil.example.com")),
        403,
        "a foreign Origin"
    );
    assert_eq!(delete(("sec-fetch-site", "cross-site")), 403);
    assert_eq!(
        delete(("sec-fetch-site", "same-site")),
        403,
        "a sibling subdomain"
    );
    assert_eq!(
        delete(("origin", &api.svc.base)),
        204,
        "the service's own page"
    );
    for query in [
        "%74oken=x",
        "TOKEN=x",
        "to%6Ben=x",
        "api-key=x",
        "%2574oken=x",
        "a=1&Access_Token=x",
    ] {
        let r = api
            .req(reqwest::Method::GET, &format!("/v1/runs?{query}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "?{query}");
    }
    let raw = |request: &str| {
        let mut s = TcpStream::connect(api.svc.base.trim_start_matches("http://")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut got = vec![0u8; 4096];
        let n = s.read(&mut got).unwrap_or(0);
        String::from_utf8_lossy(&got[..n]).to_string()
    };
    let host = api.svc.base.trim_start_matches("http://").to_string();
    let answer = raw(&format!(
        "GET http://evil.example/v1/runs HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    ));
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "absolute-form: {answer}"
    );
    let answer = raw(&format!(
        "POST /v1/runs HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 10000000000\r\n\
         Expect: 100-continue\r\n\r\n"
    ));
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "413 before any 100 Continue: {answer}"
    );
    api.still_serves("odd requests");
}

#[test]
fn form_fields_are_bounded_while_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let many: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            (
                ["k", "frequency", "llm", "predict"][i % 4].to_string(),
                b"2".to_vec(),
            )
        })
        .collect();
    let fields: Vec<(&str, Option<&str>, &[u8])> = many
        .iter()
        .map(|(n, v)| (n.as_str(), None, &v[..]))
        .collect();
    let (status, text) = api.upload(&fields);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("a field twice") || text.contains("more than 32 fields"),
        "{text}"
    );
    // An unknown name is refused at its header: the value behind it is never kept, and 16
    // such bodies of 60 MB at once leave the service small.
    let value = vec![b'v'; 60 << 20];
    let (kind, body) = multipart_body(&[("unknown", None, &value)]);
    let body = std::sync::Arc::new(body);
    let before = api.svc.peak_rss_kib();
    let sends: Vec<_> = (0..16)
        .map(|_| {
            let (url, kind, body) = (api.svc.url("/v1/runs"), kind.clone(), body.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()
                    .unwrap();
                let r = http
                    .post(url)
                    .bearer_auth(TOKEN)
                    .header("content-type", kind)
                    .body((*body).clone())
                    .send()
                    .unwrap();
                (r.status().as_u16(), r.text().unwrap())
            })
        })
        .collect();
    for s in sends {
        let (status, text) = s.join().unwrap();
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("unknown option `unknown`"), "{text}");
    }
    let grew = api.svc.peak_rss_kib().saturating_sub(before) >> 10;
    assert!(grew < 200, "the service grew by {grew} MiB");
    api.still_serves("16 bodies of unknown fields");
}

#[test]
fn stored_runs_are_bounded_and_listed_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[("RFM_AGENT__SERVER__KEEP_RUNS", "3")]);
    let mut ids = Vec::new();
    for _ in 0..4 {
        let v = api.run(&[
            ("file", Some("ok.csv"), small_csv(20).as_bytes()),
            ("k", None, b"2"),
            ("llm", None, b"rules"),
        ]);
        ids.push(v["run"]["id"].as_str().unwrap().to_string());
        std::thread::sleep(Duration::from_millis(1100));
    }
    let bad = api.run(&[
        (
            "file",
            Some("bad.csv"),
            b"not,a,transactions,file\n1,2,3,4\n",
        ),
        ("llm", None, b"rules"),
    ]);
    assert_eq!(bad["run"]["status"], "failed");
    let bad_id = bad["run"]["id"].as_str().unwrap();
    let upload = dir.path().join("runs").join(bad_id).join("input.csv");
    assert!(
        !upload.exists(),
        "a failed run keeps its error, not its upload"
    );
    let list = |query: &str| -> Value {
        api.req(reqwest::Method::GET, &format!("/v1/runs{query}"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let started = Instant::now();
    loop {
        let runs = list("")["runs"].as_array().unwrap().len();
        if runs == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{runs} runs kept"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !dir.path().join("runs").join(&ids[0]).exists(),
        "the oldest went, with its folder"
    );
    let first = list("?limit=2");
    assert_eq!(first["runs"].as_array().unwrap().len(), 2);
    assert_eq!(first["runs"][0]["id"], bad_id, "newest first");
    let next = first["next"].as_str().unwrap();
    let second = list(&format!("?limit=2&after={next}"));
    assert_eq!(second["runs"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null());
    for query in ["?limit=0", "?limit=5000", "?after=nonsense"] {
        let r = api
            .req(reqwest::Method::GET, &format!("/v1/runs{query}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{query}");
    }
}

#[test]
fn stored_runs_stay_within_their_disk_limit() {
    let dir = tempfile::tempdir().unwrap();
    // A kilobyte: every finished run but the newest goes, with its folder.
    let api = Api::start(
        dir.path(),
        &[("RFM_AGENT__SERVER__MAX_STORE_GB", "0.000001")],
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        let fields = [
            ("file", Some("ok.csv"), small_csv(20).into_bytes()),
            ("k", None, b"2".to_vec()),
        ];
        let fields: Vec<(&str, Option<&str>, &[u8])> =
            fields.iter().map(|(n, f, v)| (*n, *f, &v[..])).collect();
        let v = api.run(&fields);
        assert_eq!(v["run"]["status"], "done", "{v}");
        ids.push(v["run"]["id"].as_str().unwrap().to_string());
    }
    let started = Instant::now();
    loop {
        let kept = run_ids(&api);
        if kept == [ids[2].clone()] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "kept {kept:?} of {ids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.path().join("runs").join(&ids[0]).exists());
    assert!(
        dir.path()
            .join("runs")
            .join(&ids[2])
            .join("out")
            .join("report.html")
            .exists()
    );
}

#[test]
fn a_run_holding_more_customers_than_its_memory_is_refused_by_count() {
    // 200,000 customers under a 64 MiB state budget (the least there is): refused as they
    // come, naming max_memory_mb, well before the process grows to hold them.
    let mut csv = small_csv(1).lines().next().unwrap().to_string() + "\n";
    for i in 0..200_000u32 {
        csv += &format!(
            "{},A,Thing,1,2011-01-02 10:00,1.5,{},UK\n",
            536000 + i,
            100000 + i
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = crate::common::write(dir.path(), "many.csv", csv);
    let mut cmd = crate::common::std_bin();
    cmd.args(["segment", "--no-predict", "--input", &path])
        .env("RFM_AGENT__LIMITS__MAX_MEMORY_MB", "256");
    let (out, peak) = crate::common::run_measured(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("customers and") && stderr.contains("max_memory_mb"),
        "{stderr}"
    );
    assert!(peak < 256, "peak {peak} MiB");
}
