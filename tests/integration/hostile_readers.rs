//! Hostile input to the readers (issue 30): counts and sizes a file declares, values that a
//! dictionary or a shared-strings table repeats on every row, and files cut into thousands of
//! row groups. Each is refused by the command line with a message that names the file, the
//! rule and the setting, exit status 1 (never an abort), in bounded memory: the process's
//! peak resident memory is read from the kernel (wait4). Payloads are made here.

use std::path::Path;

use crate::common::{assert_ok, run_measured, std_bin, write, xlsx};
use crate::craft::{self, Lie};

/// A refusal by `segment --input FILE`: exit 1, no panic or abort, a bounded message that
/// says `says`, and a peak of at most `peak_mib`.
fn refused(input: &str, extra: &[&str], env: &[(&str, &str)], says: &str, peak_mib: u64) {
    let mut cmd = std_bin();
    cmd.args(["segment", "--no-predict", "--input", input])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (out, peak_kib) = run_measured(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{input}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.len() < 2200, "bounded: {} bytes", stderr.len());
    assert!(
        stderr.contains(says),
        "{input}: expected `{says}` in: {stderr}"
    );
    assert!(
        peak_kib < peak_mib << 10,
        "{input}: peak {} MiB, over {peak_mib} MiB",
        peak_kib >> 10
    );
}

const NS: &str = r#"xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main""#;

pub(crate) fn header_row() -> String {
    let cells: String = (rfm_agent::sample::HEADER.iter().enumerate())
        .map(|(i, h)| {
            let col = (b'A' + i as u8) as char;
            format!(r#"<c r="{col}1" t="inlineStr"><is><t>{h}</t></is></c>"#)
        })
        .collect();
    format!(r#"<row r="1">{cells}</row>"#)
}

fn shared_strings(attrs: &str, items: &str) -> Vec<u8> {
    format!(r#"<?xml version="1.0"?><sst {NS} {attrs}>{items}</sst>"#).into_bytes()
}

#[test]
fn xlsx_declared_shared_string_counts_are_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    for count in [
        "100000000000000",
        "900000000000000000",
        "99999999999999999999999",
    ] {
        let sst = shared_strings(&format!(r#"uniqueCount="{count}""#), "<si><t>x</t></si>");
        let book = xlsx(&header_row(), &[("xl/sharedStrings.xml", sst)]);
        assert!(book.len() < 4096, "a file of a few KB: {}", book.len());
        let path = write(dir.path(), &format!("declares-{}.xlsx", count.len()), book);
        refused(&path, &[], &[], "declares", 100);
    }
    // A count a little above the truth, as some writers leave it, is harmless.
    let sst = shared_strings(r#"uniqueCount="5""#, "<si><t>17850</t></si>");
    let rows = r#"<row r="2"><c r="A2"><v>536365</v></c><c r="B2" t="s"><v>0</v></c><c r="C2" t="s"><v>0</v></c><c r="D2"><v>2</v></c><c r="E2" t="inlineStr"><is><t>2011-01-01 10:00</t></is></c><c r="F2"><v>1.5</v></c><c r="G2" t="s"><v>0</v></c><c r="H2" t="s"><v>0</v></c></row>"#;
    let book = xlsx(&(header_row() + rows), &[("xl/sharedStrings.xml", sst)]);
    let path = write(dir.path(), "overstated-a-little.xlsx", book);
    let out = std_bin()
        .args(["segment", "--no-predict", "--k", "1", "--input", &path])
        .output()
        .unwrap();
    assert_ok(&out);
}

#[test]
fn xlsx_shared_strings_are_charged_by_entries_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // 3 million empty entries: 39 MB of XML, about 100 KB packed, 120 MB held by calamine.
    let sst = shared_strings("", &"<si><t/></si>".repeat(3_000_000));
    let path = write(
        dir.path(),
        "empties.xlsx",
        xlsx(&header_row(), &[("xl/sharedStrings.xml", sst)]),
    );
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    let env = [("RFM_AGENT__LIMITS__MAX_CHUNK_MB", "64")];
    refused(&path, &[], &env, "max_chunk_mb", 100);
    refused(
        &path,
        &[],
        &env,
        "the workbook's bytes, its shared strings",
        100,
    );
}

#[test]
fn xlsx_cells_that_repeat_a_shared_string_are_charged() {
    let dir = tempfile::tempdir().unwrap();
    // One 60 KB string (under the field limit) in five columns of 3,000 rows: 900 MB if every
    // cell held its own copy.
    let sst = shared_strings(
        r#"uniqueCount="1""#,
        &format!("<si><t>{}</t></si>", "y".repeat(60_000)),
    );
    let mut rows = header_row();
    for r in 2..3002 {
        let s = |c: char| format!(r#"<c r="{c}{r}" t="s"><v>0</v></c>"#);
        rows += &format!(
            r#"<row r="{r}">{}{}{}<c r="D{r}"><v>1</v></c><c r="E{r}"><v>40000</v></c><c r="F{r}"><v>1.5</v></c>{}{}</row>"#,
            s('A'),
            s('B'),
            s('C'),
            s('G'),
            s('H')
        );
    }
    let path = write(
        dir.path(),
        "repeats.xlsx",
        xlsx(&rows, &[("xl/sharedStrings.xml", sst)]),
    );
    refused(
        &path,
        &[],
        &[("RFM_AGENT__LIMITS__MAX_CHUNK_MB", "64")],
        "max_chunk_mb",
        200,
    );
}

fn crafted(dir: &Path, name: &str, rows: usize, dictionary: &[Vec<u8>], lie: Lie) -> String {
    write(dir, name, craft::parquet(rows, dictionary, lie))
}

/// `n` customer ids as dictionary values.
fn ids(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{}", 12000 + i).into_bytes())
        .collect()
}

#[test]
fn crafted_parquet_reads_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = crafted(dir.path(), "true.parquet", 400, &ids(40), Lie::default());
    let out = std_bin()
        .args([
            "segment",
            "--no-predict",
            "--k",
            "2",
            "--format",
            "json",
            "--columns",
            craft::COLUMNS,
            "--input",
            &path,
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ledger"]["customers"], 40, "{}", doc["ledger"]);
    assert_eq!(doc["ledger"]["rows_in"], 400);
}

#[test]
fn parquet_dictionary_values_are_held_to_the_field_limit() {
    let dir = tempfile::tempdir().unwrap();
    let columns = ["--columns", craft::COLUMNS];
    // A 100 KB customer id on each of 100,000 rows: a file of about 400 KB, 10 GB decoded.
    let path = crafted(
        dir.path(),
        "long.parquet",
        100_000,
        &[vec![b'x'; 100_000]],
        Lie::default(),
    );
    assert!(std::fs::metadata(&path).unwrap().len() < 2 << 20);
    refused(&path, &columns, &[], "max_field_kb", 100);
    refused(&path, &columns, &[], "column `c`", 100);
    // Three 10 MB values.
    let three: Vec<Vec<u8>> = (0..3).map(|i| vec![b'a' + i; 10 << 20]).collect();
    let path = crafted(dir.path(), "three.parquet", 3, &three, Lie::default());
    refused(&path, &columns, &[], "max_field_kb", 200);
}

#[test]
fn parquet_dictionary_expansion_is_charged() {
    let dir = tempfile::tempdir().unwrap();
    // 60 KB (under the field limit) on each of 20,000 rows: 1.2 GB of text once decoded.
    let path = crafted(
        dir.path(),
        "expands.parquet",
        20_000,
        &[vec![b'z'; 60_000]],
        Lie::default(),
    );
    refused(
        &path,
        &["--columns", craft::COLUMNS],
        &[],
        "text, decoded,",
        150,
    );
    refused(
        &path,
        &["--columns", craft::COLUMNS],
        &[],
        "max_chunk_mb",
        150,
    );
}

#[test]
fn parquet_page_headers_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ids(10);
    let lie = |set: fn(&mut Lie)| {
        let mut lie = Lie::default();
        set(&mut lie);
        lie
    };
    const MAX: Option<i32> = Some(i32::MAX);
    let wide = [("RFM_AGENT__LIMITS__MAX_FIELD_KB", "100000000")];
    let none: &[(&str, &str)] = &[];
    for (name, lie, env, says) in [
        (
            "values",
            lie(|l| l.page_values = MAX),
            none,
            "declare more than the chunk's 1000 values",
        ),
        ("inflated", lie(|l| l.inflated = MAX), none, "max_field_kb"),
        (
            "inflated-wide",
            lie(|l| l.inflated = MAX),
            &wide[..],
            "need more than the 512 MiB",
        ),
        (
            "dict-values",
            lie(|l| l.dict_values = MAX),
            none,
            "a dictionary page declares 2147483647 values",
        ),
        (
            "dict-inflated",
            lie(|l| l.dict_inflated = MAX),
            none,
            "max_field_kb",
        ),
        (
            "negative",
            lie(|l| l.inflated = Some(-5)),
            none,
            "negative size",
        ),
    ] {
        let path = crafted(dir.path(), &format!("{name}.parquet"), 1000, &ids, lie);
        refused(&path, &["--columns", craft::COLUMNS], env, says, 100);
    }
}

/// The best of three runs, in seconds.
fn best_of_three(path: &str) -> f64 {
    (0..3)
        .map(|_| {
            let started = std::time::Instant::now();
            let out = std_bin()
                .args([
                    "segment",
                    "--no-predict",
                    "--k",
                    "2",
                    "--columns",
                    craft::COLUMNS,
                    "--input",
                    path,
                ])
                .output()
                .unwrap();
            assert_ok(&out);
            started.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// Not a speed target (those are in bench/): the growth of the time with the number of row
/// groups. Reading each group once copied the whole footer, so ten times the groups took
/// about sixty times as long (2,000 groups 0.5 s, 16,000 groups 20 s); linear, it is ten
/// times at most.
#[test]
fn parquet_time_grows_linearly_with_row_groups() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = |groups: usize| {
        let rows = groups * 10;
        let mut df = df!(
            "c" => (0..rows).map(|i| format!("{}", 12000 + i % 500)).collect::<Vec<_>>(),
            "d" => (0..rows).map(|i| format!("2011-0{}-01 10:00", 1 + i % 9)).collect::<Vec<_>>(),
            "a" => (0..rows).map(|i| 1.5 + (i % 7) as f64).collect::<Vec<_>>(),
        )
        .unwrap();
        let path = dir.path().join(format!("groups-{groups}.parquet"));
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .with_row_group_size(Some(10))
            .finish(&mut df)
            .unwrap();
        path.display().to_string()
    };
    let (few, many) = (best_of_three(&file(1_600)), best_of_three(&file(16_000)));
    assert!(
        many < 25.0 * few,
        "16,000 row groups took {many:.2} s, 1,600 took {few:.2} s: more than linear"
    );
}

/// One row dated 31 December 9999 (or a day after the run) moved the snapshot, and so every
/// customer's recency, without a word. Now such rows are set aside by their own ledger line
/// and the snapshot comes from the rest; with an explicit snapshot they are after it.
#[test]
fn dates_after_the_run_do_not_move_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(crate::common::sample_csv()).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(3);
    let rows = [
        "999998,X,typo,1,12/31/9999 10:00,1.5,17850,United Kingdom".to_string(),
        format!(
            "999999,X,later,1,{},1.5,13047,United Kingdom",
            later.format("%m/%d/%Y %H:%M")
        ),
    ];
    let path = write(
        dir.path(),
        "typo.csv",
        format!("{sample}{}\n", rows.join("\n")),
    );
    let segment = |input: &str, extra: &[&str]| {
        let out = std_bin()
            .args([
                "segment",
                "--no-predict",
                "--format",
                "json",
                "--input",
                input,
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_ok(&out);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let clean = segment(crate::common::sample_csv().to_str().unwrap(), &[]);
    let typo = segment(&path, &[]);
    assert_eq!(
        crate::common::ledger_rule(&typo, "dated after the run"),
        Some(2)
    );
    assert_eq!(typo["params"]["snapshot"], clean["params"]["snapshot"]);
    assert_eq!(typo["ledger"]["rows_kept"], clean["ledger"]["rows_kept"]);
    assert_eq!(
        typo["clusters"], clean["clusters"],
        "the same customers and figures"
    );
    let given = segment(&path, &["--snapshot", "2011-12-01"]);
    assert_eq!(
        crate::common::ledger_rule(&given, "after snapshot").map(|n| n >= 2),
        Some(true)
    );
    assert_eq!(
        crate::common::ledger_rule(&given, "dated after the run"),
        None
    );
}

/// Ctrl-C reaches the work: the pass stops at its next piece, the command says so and
/// exits 130, and nothing is written (before, the signal's default ended the process
/// wherever it was).
#[test]
fn ctrl_c_stops_a_long_read_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = crate::hostile::small_csv(1)
        .lines()
        .next()
        .unwrap()
        .to_string()
        + "\n";
    for i in 0..3_000_000u32 {
        let (m, c) = (1 + i % 9, 100000 + i % 5000);
        csv += &format!(
            "{},A,Thing,1,2011-0{m}-0{m} 10:00,1.5,{c},UK\n",
            536000 + i / 3
        );
    }
    let path = write(dir.path(), "long.csv", csv);
    let out = dir.path().join("out");
    let mut child = std_bin()
        .args(["segment", "--input", &path, "--out"])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let signalled = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let waited = signalled.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped (interrupted)"), "{stderr}");
    assert!(
        waited < std::time::Duration::from_secs(5),
        "stopped after {waited:?}"
    );
    assert!(!out.join("customers.csv").exists(), "nothing written");
}
