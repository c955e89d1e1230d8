//! Every input format and layout gives the same answer as the CSV it came from.

use crate::common::*;

#[test]
fn default_job_runs_on_the_built_in_sample() {
    let out = bin().arg("segment").output().unwrap();
    crate::common::assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("<built-in sample>"), "{text}");
    assert!(
        text.contains("Cleaning ledger") && text.contains("Clusters"),
        "{text}"
    );
    assert!(
        text.contains("- cancellation") && text.contains("- missing customer"),
        "{text}"
    );
    assert!(
        text.contains("- unparseable date") && text.contains("- unparseable number"),
        "{text}"
    );
}

#[test]
fn sample_converts_to_every_format_with_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sample_csv().display().to_string();
    let base = segment_json(&["--input", &csv]);
    assert_eq!(base["clusters"].as_array().unwrap().len(), 4);
    let customers = base["ledger"]["customers"].as_u64().unwrap();
    assert!(customers > 2000, "{customers}");
    assert_eq!(sizes(&base).iter().sum::<u64>(), customers);
    for name in ["s.csv.gz", "s.xlsx", "s.parquet"] {
        let path = dir.path().join(name).display().to_string();
        bin().args(["sample", "--out", &path]).assert().success();
        let doc = segment_json(&["--input", &path]);
        assert_eq!(
            doc["ledger"]["rows_in"], base["ledger"]["rows_in"],
            "{name}"
        );
        assert_eq!(
            doc["ledger"]["rows_kept"], base["ledger"]["rows_kept"],
            "{name}"
        );
        assert_eq!(
            doc["ledger"]["removed"], base["ledger"]["removed"],
            "{name}"
        );
        assert_eq!(doc["clusters"], base["clusters"], "{name}");
        assert_eq!(
            doc["input"]["format"],
            name.rsplit('.').find(|e| *e != "gz").unwrap()
        );
    }
}

#[test]
fn latin1_semicolons_and_float_ids_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"InvoiceNo;Description;Quantity;InvoiceDate;UnitPrice;CustomerID\n\
        1;CAF\xc9 MUG;2;12/1/2010 8:26;2,50;17850.0\n\
        2;MUG;1;12/2/2010 9:00;3;\"17850\"\n\
        3;MUG;4;12/3/2010 9:00;1;12000\n";
    let path = write(dir.path(), "latin.csv", text.as_slice());
    let out = dir.path().join("out");
    let doc = segment_json(&["--input", &path, "--k", "2", "--out", out.to_str().unwrap()]);
    assert_eq!(doc["input"]["encoding"], "latin-1");
    assert_eq!(doc["input"]["delimiter"], ";");
    assert_eq!(ledger_rule(&doc, "unparseable number"), None);
    let c = customers(&out);
    assert_eq!(c.keys().collect::<Vec<_>>(), ["12000", "17850"]);
    assert_eq!(c["17850"].1, 2.0, "17850.0 and \"17850\" are one customer");
    assert_eq!(c["17850"].2, 8.0, "decimal comma: 2 x 2,50 + 1 x 3");
}

#[test]
fn tab_and_whitespace_aligned_text() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = "CustomerID\tInvoiceNo\tInvoiceDate\tQuantity\tUnitPrice\n\
        1\tA1\t2011-01-01\t2\t5\n2\tA2\t2011-01-05\t1\t3\n3\tA3\t2011-01-09\t1\t7\n";
    let aligned = "  CustomerID  InvoiceNo  InvoiceDate        Quantity  UnitPrice\n\
        \x20          1  A1         2011-01-01 10:00         2       5.00\n\
        \x20          2  A2         2011-01-05 11:30         1       3.00\n\
        \x20          3  A3         2011-01-09 09:15         1       7.00\n";
    for (name, text, delim) in [
        ("t.tsv", tsv, "tab"),
        ("a.txt", aligned, "whitespace-aligned"),
    ] {
        let path = write(dir.path(), name, text);
        let out = dir.path().join(name.replace('.', "_"));
        let doc = segment_json(&["--input", &path, "--k", "3", "--out", out.to_str().unwrap()]);
        assert_eq!(doc["input"]["delimiter"], delim, "{name}");
        let c = customers(&out);
        assert_eq!(c["1"].2, 10.0, "{name}");
        assert_eq!(c["3"].0, 1.0, "{name}: last date + 1 day snapshot");
    }
}

#[test]
fn amount_column_without_invoices() {
    let dir = tempfile::tempdir().unwrap();
    let text = "client,ordered_at,total\n\
        a,20110101,10.5\n a ,20110102,4.5\nb,20110110,3\nc,20110103,-2\nc,20110104,8\n";
    let path = write(dir.path(), "orders.csv", text);
    let out = dir.path().join("out");
    let doc = segment_json(&[
        "--input",
        &path,
        "--columns",
        "customer=client,date=ordered_at,amount=total",
        "--k",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(ledger_rule(&doc, "amount <= 0"), Some(1));
    assert_eq!(doc["ledger"]["date_format"], "%Y%m%d");
    let c = customers(&out);
    assert_eq!(
        c["a"],
        (c["a"].0, 2.0, 15.0, c["a"].3),
        "each row is one purchase"
    );
    assert_eq!(c["b"].0, 1.0);
    assert_eq!(c["c"].2, 8.0);
}

#[test]
fn iso_excel_serial_and_compact_dates() {
    let dir = tempfile::tempdir().unwrap();
    for (name, d1, d2) in [
        ("iso.csv", "2011-12-08T10:00:00", "2011-12-09T12:50:00"),
        ("serial.csv", "40885.41667", "40886.53472"),
        ("compact.csv", "20111208", "20111209"),
    ] {
        let text = format!(
            "CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\n1,A,{d1},1,1\n2,B,{d2},1,1\n"
        );
        let path = write(dir.path(), name, text);
        let doc = segment_json(&["--input", &path, "--k", "1"]);
        let snap = doc["params"]["snapshot"].as_str().unwrap();
        assert!(snap.starts_with("2011-12-10"), "{name}: {snap}");
    }
}

#[test]
fn windows_1252_exports_keep_the_euro_sign() {
    let mut raw = b"InvoiceNo,InvoiceDate,Quantity,UnitPrice,CustomerID\n".to_vec();
    for i in 0..12 {
        raw.extend(format!("{},2011-01-{:02} 10:00,1,2.5,", 100 + i, 1 + i).as_bytes());
        raw.extend(if i % 2 == 0 {
            &b"K\x80\n"[..]
        } else {
            &b"\x93Q\x94\n"[..]
        });
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "cp1252.csv", &raw);
    let out = tmp.path().join("out");
    let dir = out.display().to_string();
    let args = [
        "--input",
        &path,
        "--encoding",
        "cp1252",
        "--k",
        "2",
        "--out",
        &dir,
    ];
    let doc = segment_json(&args);
    assert_eq!(doc["input"]["encoding"], "windows-1252");
    let ids: Vec<String> = customers(&out).into_keys().collect();
    assert_eq!(ids, vec!["K\u{20ac}", "\u{201c}Q\u{201d}"]);
}
