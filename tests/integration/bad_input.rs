//! Bad input: a clear message naming the file (and row or column), exit code 1, no panic,
//! and no output files.

use crate::common::*;

const HEADER: &str =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

/// Runs `segment` on `path` with an output dir and checks that nothing was written.
fn segment_fails(path: &str, extra: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("results");
    let mut args = vec![
        "segment",
        "--input",
        path,
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let stderr = fails(&args);
    let left: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).into_iter().flatten())
        .collect();
    assert!(left.is_empty(), "partial output left behind: {left:?}");
    stderr
}

#[test]
fn missing_file() {
    let e = segment_fails("/nonexistent/tx.csv", &[]);
    assert!(e.contains("/nonexistent/tx.csv: file not found"), "{e}");
}

#[test]
fn directory_instead_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().display().to_string();
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains(&format!(
            "{p}: is a directory, not a transactions file; check the path passed to --input"
        )),
        "{e}"
    );
}

#[test]
fn unknown_extension() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "tx.json", "{}");
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains("tx.json: unknown file type `.json`") && e.contains("--format-in"),
        "{e}"
    );
}

#[test]
fn empty_file_and_header_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.csv", "");
    assert!(segment_fails(&p, &[]).contains("empty.csv: the file is empty"));
    let p = write(dir.path(), "blank.csv", "\n\n  \n");
    assert!(segment_fails(&p, &[]).contains("blank.csv: the file is empty"));
    let p = write(dir.path(), "header.csv", HEADER);
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains("header.csv: the file has a header but no data rows"),
        "{e}"
    );
}

#[test]
fn required_column_absent() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "nocust.csv",
        "InvoiceNo,InvoiceDate,Quantity,UnitPrice\n1,2011-01-01,1,1\n",
    );
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains("nocust.csv: required column(s) missing: customer (`CustomerID`)"),
        "{e}"
    );
    assert!(
        e.contains("Columns found: `InvoiceNo`, `InvoiceDate`"),
        "{e}"
    );
    assert!(e.contains("--columns customer="), "{e}");
}

#[test]
fn every_row_removed() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "guests.csv",
        format!(
            "{HEADER}536365,85123A,MUG,6,12/1/2010 8:26,2.55,,United Kingdom\nC536366,85123A,MUG,-6,12/1/2010 8:28,2.55,17850,United Kingdom\n"
        ),
    );
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains("guests.csv: every row was removed by cleaning"),
        "{e}"
    );
    assert!(
        e.contains("missing customer: 1") && e.contains("cancellation: 1"),
        "{e}"
    );
}

#[test]
fn unparseable_snapshot_and_k_out_of_range() {
    let csv = sample_csv().display().to_string();
    let e = segment_fails(&csv, &["--snapshot", "next tuesday"]);
    assert!(e.contains("--snapshot `next tuesday` is not a date"), "{e}");
    let e = segment_fails(&csv, &["--k", "0"]);
    assert!(
        e.contains("k = 0: choose between 1 and 20, or `auto`"),
        "{e}"
    );
    let e = segment_fails(&csv, &["--k", "21"]);
    assert!(e.contains("k = 21: choose between 1 and 20"), "{e}");
    let e = segment_fails(&csv, &["--k", "auto", "--k-range", "2..40"]);
    assert!(
        e.contains("k range 2..40: need 2 <= MIN <= MAX <= 20"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "three.csv",
        "CustomerID,InvoiceDate,Quantity,UnitPrice\n1,2011-01-01,1,1\n2,2011-01-02,1,1\n3,2011-01-03,1,1\n",
    );
    let e = segment_fails(&p, &["--k", "5"]);
    assert!(
        e.contains("three.csv: cannot cluster: k = 5 is more than the 3 customers"),
        "{e}"
    );
}

#[test]
fn corrupt_xlsx_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "broken.xlsx",
        b"PK\x03\x04 this is not really a zip archive".as_slice(),
    );
    let e = segment_fails(&p, &[]);
    assert!(e.contains("broken.xlsx: not a readable XLSX file"), "{e}");
    let p = write(dir.path(), "broken.parquet", b"PAR1 truncated".as_slice());
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains("broken.parquet: not a readable Parquet file"),
        "{e}"
    );
    // A real Parquet file cut in half.
    let good = dir.path().join("good.parquet");
    bin()
        .args(["sample", "--out", good.to_str().unwrap()])
        .assert()
        .success();
    let bytes = std::fs::read(&good).unwrap();
    let p = write(dir.path(), "half.parquet", &bytes[..bytes.len() / 2]);
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains("half.parquet: not a readable Parquet file"),
        "{e}"
    );
}

#[test]
fn ragged_rows_name_the_row_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "ragged.csv",
        format!(
            "{HEADER}536365,85123A,MUG,6,12/1/2010 8:26,2.55,17850,United Kingdom\n536366,71053,LANTERN,6,12/1/2010 8:28,3.39,17850\n"
        ),
    );
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains("ragged.csv: row 2 (line 3) has 7 fields but the header has 8"),
        "{e}"
    );
}

#[test]
fn unreadable_dates_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "dates.csv",
        "CustomerID,InvoiceDate,Quantity,UnitPrice\n1,soon,1,1\n2,later,1,1\n",
    );
    let e = segment_fails(&p, &[]);
    assert!(
        e.contains("dates.csv: column `InvoiceDate`: cannot recognise the date format"),
        "{e}"
    );
    assert!(e.contains("--date-format"), "{e}");
}

#[test]
fn bad_settings_are_refused() {
    let csv = sample_csv().display().to_string();
    let e = fails(&["segment", "--input", &csv, "--columns", "colour=red"]);
    assert!(e.contains("unknown role `colour`"), "{e}");
    let e = fails(&["segment", "--input", &csv, "--encoding", "ebcdic"]);
    assert!(e.contains("unknown encoding `ebcdic`"), "{e}");
    let e = fails(&["--config", "/nonexistent.toml", "segment"]);
    assert!(e.contains("config file /nonexistent.toml not found"), "{e}");
}
