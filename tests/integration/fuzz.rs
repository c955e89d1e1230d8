//! Property tests over the parsers (the fuzzing of issue 11, without a nightly toolchain):
//! CSV sniffing and shape check (plain and gzip, whole or cut short), number and date parsing, XLSX reading and column mapping
//! never panic, never allocate past the input limits, and fail with a bounded message.
//! `cargo test` runs a bounded number of cases (PROPTEST_CASES, 256 by default);
//! `bench/fuzz.sh` runs many more for as long as it is given.

use proptest::prelude::*;
use rfm_agent::ingest::{ColumnMap, FileFormat, Input, InputLimits, ReadOptions};
use rfm_agent::scan::{ScanOptions, scan};

fn opts() -> ReadOptions {
    ReadOptions {
        limits: InputLimits {
            max_input_mb: 4,
            max_memory_mb: 64,
            max_chunk_mb: 4,
            max_rows: 10_000,
            max_customers: 5_000,
            max_invoices: 5_000,
            max_columns: 200,
            max_field_kb: 4,
        },
        ..ReadOptions::default()
    }
}

/// Reads and cleans `bytes` as `format`; any outcome but a panic is fine, and errors stay
/// short.
fn read(bytes: Vec<u8>, format: FileFormat) {
    read_with(bytes, format, ColumnMap::default());
}

/// The same with the columns mapped by `columns`.
fn read_with(bytes: Vec<u8>, format: FileFormat, columns: ColumnMap) {
    let input = Input::Bytes {
        bytes: bytes.into(),
        name: "fuzz.in".into(),
    };
    let opts = ScanOptions {
        read: ReadOptions {
            format: Some(format),
            columns,
            ..opts()
        },
        clean: Default::default(),
        frequency: Default::default(),
        histories: None,
    };
    if let Err(e) = scan(&input, &opts, &rfm_agent::progress::Silent) {
        let e = format!("{e:#}");
        let m = rfm_agent::bounded::message(&e);
        assert!(m.len() <= rfm_agent::bounded::MAX_MESSAGE);
        assert!(e.len() < 8192, "error of {} bytes", e.len());
    }
}

/// Text made of the pieces a CSV parser cares about.
fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        "CustomerID",
        "InvoiceNo",
        "InvoiceDate",
        "Quantity",
        "UnitPrice",
        ",",
        ";",
        "\t",
        "|",
        "\"",
        "\"\"",
        "\n",
        "\r\n",
        " ",
        "  ",
        "C5363",
        "17850",
        "17850.0",
        "-3",
        "2,50",
        "1,234.50",
        "£",
        "12/1/2010 8:26",
        "2011-12-09",
        "20111209",
        "40519.5",
        "é",
        "\u{feff}",
        "=HYPERLINK(1)",
        "",
    ]);
    prop::collection::vec(pieces, 0..300).prop_map(|v| v.concat().into_bytes())
}

fn header_and_rows() -> impl Strategy<Value = Vec<u8>> {
    let field = prop::sample::select(vec![
        "1",
        "2.5",
        "x",
        "",
        "\"a,b\"",
        "C1",
        "12/1/2010 8:26",
        "-1",
        "17850",
    ]);
    let row = prop::collection::vec(field, 1..10).prop_map(|f| f.join(","));
    prop::collection::vec(row, 0..50).prop_map(|rows| {
        let mut text = String::from(
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
        );
        for r in rows {
            text += &r;
            text.push('\n');
        }
        text.into_bytes()
    })
}

/// A cell reference: 1–9 letters and a row number, some far beyond any sheet.
fn cell_ref() -> impl Strategy<Value = String> {
    ("[A-Z]{1,9}", 0u64..5_000_000_000u64).prop_map(|(c, r)| format!("{c}{r}"))
}

fn sheet_xml() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((cell_ref(), "[a-z0-9 ]{0,12}"), 0..30).prop_map(|cells| {
        let mut data = String::new();
        for (r, v) in cells {
            let row: String = r.chars().skip_while(|c| c.is_ascii_alphabetic()).collect();
            data += &format!(
                r#"<row r="{row}"><c r="{r}" t="inlineStr"><is><t>{v}</t></is></c></row>"#
            );
        }
        xlsx_with_sheet(&data)
    })
}

fn xlsx_with_sheet(sheet_data: &str) -> Vec<u8> {
    crate::common::xlsx(sheet_data, &[])
}

proptest! {
    #[test]
    fn csv_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read(bytes, FileFormat::Csv);
    }

    #[test]
    fn csv_pieces_never_panic(bytes in csv_like()) {
        read(bytes, FileFormat::Csv);
    }

    #[test]
    fn csv_rows_never_panic(bytes in header_and_rows()) {
        read(bytes, FileFormat::Csv);
    }

    #[test]
    fn gzipped_and_cut_csv_never_panics(bytes in csv_like(), cut in any::<prop::sample::Index>()) {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let mut gz = gz.finish().unwrap();
        // Whole, or cut short somewhere after the magic number.
        let keep = 2 + cut.index(gz.len() - 1);
        gz.truncate(keep);
        read(gz, FileFormat::Csv);
    }

    #[test]
    fn xlsx_cell_references_never_panic(bytes in sheet_xml()) {
        read(bytes, FileFormat::Xlsx);
    }

    #[test]
    fn xlsx_with_flipped_bytes_never_panics(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = xlsx_with_sheet(r#"<row r="1"><c r="A1" t="inlineStr"><is><t>CustomerID</t></is></c></row>"#);
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        read(bytes, FileFormat::Xlsx);
    }

    #[test]
    fn numbers_parse_or_refuse(s in "\\PC{0,24}") {
        let _ = rfm_agent::clean::parse_number(&s);
    }

    #[test]
    fn thousands_separated_numbers_round_trip(whole in 0u64..10_000_000_000, cents in 0u64..100) {
        let digits = whole.to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let text = format!("{grouped}.{cents:02}");
        let want = whole as f64 + cents as f64 / 100.0;
        let got = rfm_agent::clean::parse_number(&text);
        prop_assert!(got.is_some_and(|g| (g - want).abs() < 1e-6 * want.max(1.0)), "{text} -> {got:?}");
    }

    #[test]
    fn dates_parse_or_refuse(s in "\\PC{0,32}", format in prop::sample::select(vec!["auto", "%Y-%m-%d", "%m/%d/%Y %H:%M", "excel", "epoch-s"])) {
        let _ = rfm_agent::dates::parse_snapshot(&s);
        let _ = rfm_agent::dates::DateFormat::from_option(format).parse(&s);
    }

    #[test]
    fn column_mappings_never_panic(spec in "\\PC{0,80}", headers in prop::collection::vec("\\PC{0,12}", 0..12)) {
        let mut map = ColumnMap::default();
        if map.apply_overrides(&spec).is_ok() {
            let _ = rfm_agent::ingest::resolve_columns(&map, &headers, "fuzz.csv");
        }
    }
}

/// A shared-strings part whose header says anything: `uniqueCount` and `count` as digits of
/// any length (or not digits), and entries of any text; with a sheet whose `dimension` says
/// anything too. calamine reserves by `uniqueCount`: the reader must refuse, never allocate
/// by it (an abort here ends the whole test run).
fn shared_strings_book() -> impl Strategy<Value = Vec<u8>> {
    let count = prop_oneof![
        Just(String::new()),
        "[0-9]{1,30}".prop_map(|d| format!(r#" uniqueCount="{d}""#)),
        "[0-9]{1,30}".prop_map(|d| format!(r#" count="{d}" uniqueCount="{d}""#)),
        "\\PC{0,12}".prop_map(|v| format!(r#" uniqueCount="{}""#, v.replace(['"', '<', '&'], ""))),
    ];
    let entries = prop::collection::vec("[a-z ]{0,20}", 0..20);
    let dimension = ("[A-Z]{1,9}[0-9]{1,12}", "[A-Z]{1,9}[0-9]{1,12}");
    (count, entries, dimension).prop_map(|(count, entries, (from, to))| {
        let items: String = entries
            .iter()
            .map(|t| format!("<si><t>{t}</t></si>"))
            .collect();
        let sst = format!(r#"<?xml version="1.0"?><sst xmlns="x"{count}>{items}</sst>"#);
        let cells: String = (0..8)
            .map(|i| {
                format!(
                    r#"<c r="{}1" t="s"><v>{i}</v></c>"#,
                    (b'A' + i as u8) as char
                )
            })
            .collect();
        let sheet = format!(r#"<row r="1">{cells}</row>"#);
        let dimension = format!(r#"<dimension ref="{from}:{to}"/>"#);
        let parts = [("xl/sharedStrings.xml", sst.into_bytes())];
        crate::common::xlsx_with_dimension(&sheet, &parts, &dimension)
    })
}

/// A crafted Parquet file (tests/integration/craft.rs) whose dictionary and page headers say
/// anything: value counts and sizes of any i32, a dictionary of any few values.
fn parquet_with_any_headers() -> impl Strategy<Value = Vec<u8>> {
    let lie = prop_oneof![
        Just(None),
        any::<i32>().prop_map(Some),
        (0i32..64).prop_map(Some)
    ];
    let values = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6);
    (
        lie.clone(),
        lie.clone(),
        lie.clone(),
        lie,
        values,
        0usize..300,
    )
        .prop_map(
            |(dict_values, page_values, inflated, dict_inflated, values, rows)| {
                let lie = crate::craft::Lie {
                    dict_values,
                    page_values,
                    inflated,
                    dict_inflated,
                };
                crate::craft::parquet(rows.max(1), &values, lie)
            },
        )
}

fn read_crafted(bytes: Vec<u8>) {
    let mut columns = ColumnMap::default();
    columns.apply_overrides(crate::craft::COLUMNS).unwrap();
    read_with(bytes, FileFormat::Parquet, columns);
}

proptest! {
    #[test]
    fn xlsx_shared_string_headers_are_never_trusted(bytes in shared_strings_book()) {
        read(bytes, FileFormat::Xlsx);
    }

    #[test]
    fn parquet_dictionaries_and_page_headers_are_never_trusted(bytes in parquet_with_any_headers()) {
        read_crafted(bytes);
    }
}
