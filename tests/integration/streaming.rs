//! The streaming core against plain, obviously correct aggregations written here: on the
//! real reference data, and on a generated gzipped CSV of three million lines with every
//! quirk the pass must carry across its blocks (quoted line breaks, invoices that come back
//! later, text and decimal customer ids, bad dates and numbers).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use chrono::NaiveDateTime;

use crate::common::*;
use crate::reference::data_dir;

const DAY_MS: i64 = 86_400_000;

/// One customer's figures as a plain loop over the kept lines computes them.
#[derive(Default)]
struct Expected {
    lines: u64,
    invoices: HashSet<String>,
    last: i64,
    monetary: f64,
}

/// The plain aggregation: every row is counted, then either removed by a rule or kept.
#[derive(Default)]
struct Oracle {
    by: HashMap<String, Expected>,
    rules: BTreeMap<&'static str, u64>,
    rows: u64,
    max_date: i64,
}

impl Oracle {
    fn row(&mut self, date: Option<i64>) {
        self.rows += 1;
        if let Some(d) = date {
            self.max_date = self.max_date.max(d);
        }
    }

    fn removed(&mut self, rule: &'static str) {
        *self.rules.entry(rule).or_default() += 1;
    }

    fn kept(&mut self, customer: String, invoice: &str, date: i64, value: f64) {
        let e = self.by.entry(customer).or_default();
        e.lines += 1;
        e.invoices.insert(invoice.to_string());
        e.last = e.last.max(date);
        e.monetary += value;
    }

    /// `segment` on `input`, with each frequency definition, against this aggregation.
    fn check(&self, input: &str) {
        let rules: Vec<(&str, u64)> = self.rules.iter().map(|(r, n)| (*r, *n)).collect();
        let snapshot = self.max_date + DAY_MS;
        for (flag, lines) in [("lines", true), ("invoices", false)] {
            let expected = expected_rfm(&self.by, snapshot, lines);
            check_run(input, &["--frequency", flag], &expected, &rules, self.rows);
        }
    }
}

/// Per customer (recency, frequency, monetary) for both frequency definitions.
fn expected_rfm(
    by: &HashMap<String, Expected>,
    snapshot: i64,
    lines: bool,
) -> BTreeMap<String, (f64, f64, f64)> {
    by.iter()
        .map(|(id, e)| {
            let f = if lines {
                e.lines
            } else {
                e.invoices.len() as u64
            };
            let r = (snapshot - e.last).div_euclid(DAY_MS);
            (id.clone(), (r as f64, f as f64, e.monetary))
        })
        .collect()
}

/// Runs `segment` on `input` and checks every customer and the ledger's counts.
fn check_run(
    input: &str,
    extra: &[&str],
    expected: &BTreeMap<String, (f64, f64, f64)>,
    rules: &[(&str, u64)],
    rows: u64,
) {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().display().to_string();
    let mut args = vec![
        "segment", "--input", input, "--k", "3", "--out", &dir, "--quiet",
    ];
    args.extend(extra);
    assert_ok(&std_bin().args(&args).output().unwrap());
    let got = customers(out.path());
    assert_eq!(got.len(), expected.len(), "{extra:?}: customers");
    for (id, (r, f, m)) in expected {
        let g = got
            .get(id)
            .unwrap_or_else(|| panic!("{extra:?}: customer {id} missing"));
        assert_eq!(
            (g.0, g.1),
            (*r, *f),
            "{extra:?}: customer {id} recency/frequency"
        );
        assert!(
            (g.2 - m).abs() <= 0.005 + 1e-9 * m.abs(),
            "{extra:?}: customer {id} monetary {} vs {m}",
            g.2
        );
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("clusters.json")).unwrap()).unwrap();
    assert_eq!(doc["ledger"]["rows_in"], rows, "{extra:?}");
    for (rule, n) in rules {
        assert_eq!(
            ledger_rule(&doc, rule).unwrap_or(0),
            *n,
            "{extra:?}: {rule}"
        );
    }
    let removed: u64 = rules.iter().map(|(_, n)| n).sum();
    assert_eq!(doc["ledger"]["rows_kept"], rows - removed, "{extra:?}");
}

#[test]
#[ignore = "needs the reference data (RFM_AGENT_REFERENCE_DATA); .ci/run provides them"]
fn reference_rfm_matches_a_plain_aggregation() {
    let dir = data_dir();
    let path = dir.join("online_retail.csv.gz");
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap());
    let mut reader = csv::Reader::from_reader(gz);
    let h = reader.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (inv, qty, date, price, cust) = (
        col("InvoiceNo"),
        col("Quantity"),
        col("InvoiceDate"),
        col("UnitPrice"),
        col("CustomerID"),
    );
    let mut oracle = Oracle {
        max_date: i64::MIN,
        ..Oracle::default()
    };
    for rec in reader.records() {
        let rec = rec.unwrap();
        let d = NaiveDateTime::parse_from_str(&rec[date], "%m/%d/%Y %H:%M")
            .unwrap()
            .and_utc()
            .timestamp_millis();
        oracle.row(Some(d));
        let (q, p): (f64, f64) = (rec[qty].parse().unwrap(), rec[price].parse().unwrap());
        let rule = if rec[cust].is_empty() {
            Some("missing customer")
        } else if rec[inv].starts_with('C') {
            Some("cancellation")
        } else if q <= 0.0 {
            Some("quantity <= 0")
        } else if p < 0.0 {
            Some("price < 0")
        } else {
            None
        };
        match rule {
            Some(rule) => oracle.removed(rule),
            None => oracle.kept(rec[cust].to_string(), &rec[inv], d, q * p),
        }
    }
    oracle.check(&path.display().to_string());
}

/// A small, seeded generator (xorshift), so that the file is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What one generated line is, as the cleaning rules see it.
struct Line {
    customer: Option<(String, String)>,
    invoice: String,
    date: Option<i64>,
    quantity: i64,
    price: Option<f64>,
}

fn generated_line(rng: &mut Rng, invoice: &str, customer: u64, base: i64) -> Line {
    let id = customer.to_string();
    // The same customer written three ways; text ids for a tenth of them.
    let written = match (customer % 10, rng.below(3)) {
        (0, _) => format!("K-{customer:05}"),
        (_, 0) => format!("{customer}.0"),
        (_, 1) => format!("\"{customer}\""),
        _ => id.clone(),
    };
    let key = if customer.is_multiple_of(10) {
        written.clone()
    } else {
        id
    };
    Line {
        customer: (!rng.chance(50)).then_some((written, key)),
        invoice: invoice.to_string(),
        date: (!rng.chance(1)).then(|| base + rng.below(86_400) as i64 * 1000),
        quantity: if rng.chance(20) {
            -(rng.below(5) as i64)
        } else {
            1 + rng.below(20) as i64
        },
        price: (!rng.chance(2)).then(|| {
            if rng.chance(2) {
                -1.25
            } else {
                (1 + rng.below(5000)) as f64 / 100.0
            }
        }),
    }
}

fn write_line(out: &mut impl Write, l: &Line, rng: &mut Rng) {
    let customer = l.customer.as_ref().map_or("", |c| c.0.as_str());
    let date = l.date.map_or("soon".to_string(), |d| {
        chrono::DateTime::from_timestamp_millis(d)
            .unwrap()
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    });
    let price = l.price.map_or("n/a".to_string(), |p| format!("{p:.2}"));
    let description = if rng.chance(10) {
        "\"MUG, BLUE\nLARGE \"\"XL\"\"\""
    } else {
        "MUG"
    };
    writeln!(
        out,
        "{},{description},{},{date},{price},{customer},UK",
        l.invoice, l.quantity
    )
    .unwrap();
}

/// The next invoice: its number and customer. A few are put aside, to come back much later
/// in the file under the same number.
fn next_invoice(rng: &mut Rng, serial: u64, later: &mut Vec<(String, u64)>) -> (String, u64) {
    if rng.chance(10) && !later.is_empty() {
        return later.swap_remove(rng.below(later.len() as u64) as usize);
    }
    let customer = 1 + rng.below(60_000);
    let number = if rng.chance(30) {
        format!("C{serial}")
    } else {
        format!("{serial}")
    };
    if rng.chance(20) {
        later.push((number.clone(), customer));
    }
    (number, customer)
}

/// Writes `lines` generated lines (gzipped) to `path`; returns their plain aggregation.
fn generate(path: &std::path::Path, lines: u64) -> Oracle {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut out = std::io::BufWriter::new(gz);
    let header = "InvoiceNo,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country";
    writeln!(out, "{header}").unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut oracle = Oracle {
        max_date: i64::MIN,
        ..Oracle::default()
    };
    let (mut serial, mut later) = (0u64, Vec::new());
    let start = 1_262_304_000_000i64; // 2010-01-01
    while oracle.rows < lines {
        serial += 1;
        let (number, customer) = next_invoice(&mut rng, serial, &mut later);
        let base = start + (oracle.rows as i64 * 700 / lines as i64) * DAY_MS;
        for _ in 0..1 + rng.below(8) {
            let l = generated_line(&mut rng, &number, customer, base);
            write_line(&mut out, &l, &mut rng);
            oracle.row(l.date);
            let rule = match (&l.customer, l.date, l.price) {
                (None, _, _) => Some("missing customer"),
                (_, None, _) => Some("unparseable date"),
                (_, _, None) => Some("unparseable number"),
                _ if l.invoice.starts_with('C') => Some("cancellation"),
                _ if l.quantity <= 0 => Some("quantity <= 0"),
                (_, _, Some(p)) if p < 0.0 => Some("price < 0"),
                _ => None,
            };
            match (rule, l.customer, l.date, l.price) {
                (Some(rule), ..) => oracle.removed(rule),
                (None, Some((_, key)), Some(d), Some(p)) => {
                    oracle.kept(key, &l.invoice, d, l.quantity as f64 * p)
                }
                _ => unreachable!("a kept line has a customer, a date and a price"),
            }
        }
    }
    out.into_inner().unwrap().finish().unwrap();
    oracle
}

#[test]
fn millions_of_lines_match_a_plain_aggregation() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("generated.csv.gz");
    let oracle = generate(&path, 3_000_000);
    oracle.check(&path.display().to_string());
}

#[test]
fn service_memory_follows_customers_not_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("generated.csv.gz");
    let oracle = generate(&path, 3_000_000);
    let bytes = std::fs::read(&path).unwrap();
    let data = tempfile::tempdir().unwrap();
    let api = crate::hostile::Api::start(data.path(), &[]);
    let v = api.run(&[
        ("file", Some("generated.csv.gz"), &bytes),
        ("k", None, b"3"),
        ("llm", None, b"rules"),
    ]);
    assert_eq!(v["run"]["status"], "done", "{v}");
    let id = v["run"]["id"].as_str().unwrap();
    let doc: serde_json::Value = api
        .req(
            reqwest::Method::GET,
            &format!("/v1/runs/{id}/files/clusters.json"),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(doc["ledger"]["rows_in"], oracle.rows);
    assert_eq!(doc["ledger"]["customers"], oracle.by.len() as u64);
    // 3 M lines inflate to 200 MB of text; reading them into columns took 700 MB. The
    // service holds a few 8 MiB blocks and its 60,000 customers.
    let peak_mib = api.svc.peak_rss_kib() / 1024;
    assert!(peak_mib < 550, "peak RSS {peak_mib} MiB");
    println!("service peak RSS on a 3 M-line upload: {peak_mib} MiB");
}

/// `rows` lines of one invoice each, dated `date(i)`, for customers 1..=50.
fn dated_rows(rows: usize, first: usize, date: impl Fn(usize) -> String) -> String {
    (first..first + rows)
        .map(|i| format!("{},MUG,2,{},1.50,{},UK\n", 500_000 + i, date(i), 1 + i % 50))
        .collect()
}

const PLAIN_HEADER: &str =
    "InvoiceNo,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

#[test]
fn day_month_order_is_told_from_a_later_block() {
    // 40,000 rows (about 1.7 MB, past the first block) with days up to 12 only, then days
    // past 12: only day/month order reads them all.
    let mut text = PLAIN_HEADER.to_string();
    text += &dated_rows(40_000, 0, |i| {
        format!("{:02}/{:02}/2011 10:00", 1 + i % 12, 1 + i % 6)
    });
    text += &dated_rows(100, 40_000, |i| format!("{}/03/2011 10:00", 13 + i % 15));
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "dm.csv", &text);
    let doc = segment_json(&["--input", &path, "--k", "2"]);
    assert_eq!(
        doc["ledger"]["date_format"], "%d/%m/%Y %H:%M",
        "{}",
        doc["ledger"]
    );
    assert_eq!(doc["ledger"]["rows_kept"], 40_100);
    // The last date is 12 June read day/month (it would be 6 December read month/day).
    assert_eq!(doc["params"]["snapshot"], "2011-06-13 10:00:00");
}

#[test]
fn utf8_that_turns_out_latin1_is_read_again_as_latin1() {
    // A customer id in UTF-8 near the top; a Latin-1 byte 2 MB further on. The whole file is
    // then Latin-1, as a file read whole would be: the id's two UTF-8 bytes are two
    // Latin-1 characters.
    let mut raw = PLAIN_HEADER.as_bytes().to_vec();
    raw.extend("1,MUG,2,2011-01-01 10:00,1.50,Müller,UK\n".as_bytes());
    raw.extend(dated_rows(50_000, 0, |i| format!("2011-01-{:02} 10:00", 1 + i % 28)).as_bytes());
    raw.extend(b"9,CAF\xc9,2,2011-02-01 10:00,1.50,7,UK\n");
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "mixed.csv", &raw);
    let out = tmp.path().join("out");
    let dir = out.display().to_string();
    let doc = segment_json(&["--input", &path, "--k", "2", "--out", &dir]);
    assert_eq!(doc["input"]["encoding"], "latin-1");
    assert_eq!(doc["ledger"]["rows_in"], 50_002);
    let ids = customers(&out);
    assert!(
        ids.contains_key("MÃ¼ller"),
        "{:?}",
        ids.keys().take(5).collect::<Vec<_>>()
    );
    // ASCII until the Latin-1 byte: no second pass is needed, and the manifest says so.
    raw.drain(
        PLAIN_HEADER.len()..PLAIN_HEADER.len() + "1,MUG,2,2011-01-01 10:00,1.50,Müller,UK\n".len(),
    );
    let ascii = write(tmp.path(), "ascii-then-latin1.csv", &raw);
    let doc = segment_json(&["--input", &ascii, "--k", "2"]);
    assert_eq!(doc["input"]["encoding"], "latin-1");
    assert_eq!(doc["ledger"]["rows_in"], 50_001);
}

#[test]
fn a_ragged_row_deep_in_the_file_is_named_by_its_row_and_line() {
    // 300,000 rows (12 MB, several blocks), a blank line, then a row with a field too few.
    let mut text = PLAIN_HEADER.to_string();
    text += &dated_rows(300_000, 0, |i| format!("2011-01-{:02} 10:00", 1 + i % 28));
    text += "\n500000,MUG,2,2011-01-02 10:00,1.50,UK\n";
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "ragged.csv", &text);
    let e = fails(&["segment", "--input", &path]);
    assert!(
        e.contains("row 300001 (line 300003) has 6 fields but the header has 7"),
        "{e}"
    );
}
