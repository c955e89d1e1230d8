//! The core's and the engines' errors stop at the problem: none names a command-line flag
//! (`--…`), which a user of the service does not have. Each front end adds the remedy in its
//! own words ([`crate::words`]).

use std::path::Path;

use rfm_core::clean::CleanError;
use rfm_core::dates::DateError;
use rfm_core::ingest::IngestError;
use rfm_core::predict::FitError;
use rfm_core::remedy::Remedy;
use rfm_core::run_folder::FolderError;
use rfm_engines::EngineError;

use crate::words::{FrontEnd, render, words};

fn s(v: &str) -> String {
    v.to_string()
}

/// One of every variant of the reader's errors; the match fails to compile when a variant
/// is added and not sampled here.
fn ingest_errors() -> Vec<IngestError> {
    let io = || std::io::Error::other("gone");
    let all = vec![
        IngestError::NotFound { path: s("f") },
        IngestError::NotAFile { path: s("f") },
        IngestError::Io {
            path: s("f"),
            source: io(),
        },
        IngestError::UnknownFormat {
            path: s("f"),
            ext: s(".doc"),
        },
        IngestError::Empty { path: s("f") },
        IngestError::HeaderOnly { path: s("f") },
        IngestError::MissingColumns {
            path: s("f"),
            missing: s("a"),
            found: s("b"),
        },
        IngestError::Ragged {
            path: s("f"),
            row: 1,
            line: 2,
            got: 3,
            expected: 4,
        },
        IngestError::Encoding {
            path: s("f"),
            offset: 1,
            line: 1,
        },
        IngestError::Layout {
            path: s("f"),
            detail: s("one column"),
        },
        IngestError::Preset {
            path: s("f"),
            detail: s("two fit"),
        },
        IngestError::Corrupt {
            path: s("f"),
            format: "Parquet",
            detail: s("cut"),
        },
        IngestError::Sheet {
            path: s("f"),
            detail: s("empty"),
        },
        IngestError::NoSuchSheet {
            path: s("f"),
            name: s("x"),
            sheets: s("y"),
        },
        IngestError::Limit {
            path: s("f"),
            detail: s("big"),
            setting: "max_rows",
        },
        IngestError::Options(s("f: converting from XLSX is not supported")),
        IngestError::EngineSource {
            path: s("postgres://u@h/db"),
        },
        IngestError::NoConverted {
            path: s("f"),
            export: s("Shopify orders export"),
        },
        IngestError::Stopped,
        IngestError::Reencode { path: s("f") },
    ];
    all.iter().for_each(sampled);
    all
}

/// Every reader error's variant, named; adding a variant fails to compile here.
fn sampled(e: &IngestError) {
    match e {
        IngestError::NotFound { .. }
        | IngestError::NotAFile { .. }
        | IngestError::Io { .. }
        | IngestError::UnknownFormat { .. }
        | IngestError::Empty { .. }
        | IngestError::HeaderOnly { .. }
        | IngestError::MissingColumns { .. }
        | IngestError::Ragged { .. }
        | IngestError::Encoding { .. }
        | IngestError::Layout { .. }
        | IngestError::Preset { .. }
        | IngestError::Corrupt { .. }
        | IngestError::Sheet { .. }
        | IngestError::NoSuchSheet { .. }
        | IngestError::Limit { .. }
        | IngestError::Options(_)
        | IngestError::EngineSource { .. }
        | IngestError::NoConverted { .. }
        | IngestError::Stopped
        | IngestError::Reencode { .. } => {}
    }
}

fn date_errors() -> Vec<DateError> {
    let all = vec![
        DateError::Unrecognised {
            column: s("d"),
            examples: s("`x`"),
        },
        DateError::Type {
            column: s("d"),
            dtype: s("bool"),
        },
        DateError::MixedZones {
            column: s("d"),
            offset: s("a"),
            naive: s("b"),
        },
    ];
    for e in &all {
        match e {
            DateError::Unrecognised { .. }
            | DateError::Type { .. }
            | DateError::MixedZones { .. } => {}
        }
    }
    all
}

fn clean_errors() -> Vec<CleanError> {
    let clean = vec![
        CleanError::Date {
            path: s("f"),
            source: date_errors().remove(0),
        },
        CleanError::Type {
            path: s("f"),
            column: s("c"),
            what: "number",
            detail: s("x"),
        },
        CleanError::NothingLeft {
            path: s("f"),
            summary: s("all removed"),
        },
        CleanError::NoDates {
            path: s("f"),
            column: s("d"),
        },
        CleanError::Currencies {
            path: s("f"),
            column: s("c"),
            count: 2,
            list: s("EUR, USD"),
        },
    ];
    for e in &clean {
        match e {
            CleanError::Date { .. }
            | CleanError::Type { .. }
            | CleanError::NothingLeft { .. }
            | CleanError::NoDates { .. }
            | CleanError::Currencies { .. } => {}
        }
    }
    clean
}

fn folder_errors() -> Vec<FolderError> {
    let folder = vec![
        FolderError::Missing {
            path: s("d/clusters.json"),
            source: std::io::Error::other("gone"),
            remedy: Some(Remedy::PointAtRunFolder),
        },
        FolderError::NotOurs {
            path: s("d"),
            file: "clusters.json",
            detail: s("x"),
        },
        FolderError::Schema {
            path: s("d"),
            found: 9,
            writer: s("9.0.0"),
        },
        FolderError::NoCampaigns {
            path: s("d"),
            who: s("batch"),
        },
    ];
    for e in &folder {
        match e {
            FolderError::Missing { .. }
            | FolderError::NotOurs { .. }
            | FolderError::Schema { .. }
            | FolderError::NoCampaigns { .. } => {}
        }
    }
    folder
}

fn engine_errors() -> Vec<EngineError> {
    let name = || s("spark sc://h:15002");
    let engine = vec![
        EngineError::Type {
            name: name(),
            column: s("c"),
            found: s("text"),
            wanted: "a number",
            spark: true,
        },
        EngineError::Silent {
            name: name(),
            secs: 60,
        },
        EngineError::Refused {
            name: name(),
            why: s("token"),
        },
        EngineError::NoData {
            name: name(),
            spark: true,
        },
        EngineError::TwoData {
            name: name(),
            spark: false,
        },
        EngineError::Remote,
        EngineError::Unreachable {
            name: name(),
            why: s("refused"),
        },
        EngineError::NotPostgres,
        EngineError::DateFormat {
            name: name(),
            column: s("d"),
            format: s("%d/%m"),
            source: anyhow::anyhow!("no Java pattern"),
        },
        EngineError::FileRules { roles: s("status") },
    ];
    for e in &engine {
        match e {
            EngineError::Type { .. }
            | EngineError::Silent { .. }
            | EngineError::Refused { .. }
            | EngineError::NoData { .. }
            | EngineError::TwoData { .. }
            | EngineError::Remote
            | EngineError::Unreachable { .. }
            | EngineError::NotPostgres
            | EngineError::DateFormat { .. }
            | EngineError::FileRules { .. } => {}
        }
    }
    engine
}

/// Every error of the core and the engines, as `anyhow` carries them.
fn all_errors() -> Vec<anyhow::Error> {
    let fit = [
        FitError::NoCustomers,
        FitError::NoRepeaters,
        FitError::NoConvergence("BG/NBD"),
        FitError::NotFinite,
    ];
    let mut all: Vec<anyhow::Error> = Vec::new();
    all.extend(ingest_errors().into_iter().map(anyhow::Error::new));
    all.extend(date_errors().into_iter().map(anyhow::Error::new));
    all.extend(clean_errors().into_iter().map(anyhow::Error::new));
    all.extend(folder_errors().into_iter().map(anyhow::Error::new));
    all.extend(engine_errors().into_iter().map(anyhow::Error::new));
    all.extend(fit.into_iter().map(anyhow::Error::new));
    all
}

#[test]
fn no_core_error_names_a_flag() {
    let all = all_errors();
    assert!(all.len() > 40, "{} errors", all.len());
    for e in &all {
        let plain = format!("{e:#}");
        assert!(
            !plain.contains("--"),
            "the core's own words name a flag: {plain}"
        );
        let service = render(e, FrontEnd::Service);
        assert!(
            !service.contains("--"),
            "the service would say a flag: {service}"
        );
    }
    // The command line says its remedies with flags, after the core's words.
    let e = anyhow::Error::new(EngineError::NoData {
        name: s("postgres://u@h:5432/db"),
        spark: false,
    });
    assert_eq!(
        render(&e, FrontEnd::Cli),
        "postgres://u@h:5432/db: no table, query or file names the data; name the data with --table NAME or --query \"SELECT …\""
    );
}

/// The string literals of a crate's code outside its tests.
fn literals(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            literals(&path, out);
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rs") || name.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for line in code.lines() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            for (i, part) in line.split('"').enumerate() {
                if i % 2 == 1 {
                    out.push((path.display().to_string(), part.to_string()));
                }
            }
        }
    }
}

#[test]
fn no_core_message_names_a_flag() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for c in ["rfm-core", "rfm-engines"] {
        literals(&crates.join(c).join("src"), &mut found);
    }
    assert!(found.len() > 500, "{} literals", found.len());
    let flags: Vec<_> = found
        .iter()
        .filter(|(_, l)| {
            l.split("--")
                .skip(1)
                .any(|after| after.starts_with(|c: char| c.is_ascii_lowercase()))
        })
        .collect();
    assert!(
        flags.is_empty(),
        "messages in the core that name a flag: {flags:#?}"
    );
}

#[test]
fn every_remedy_is_said_both_ways() {
    let all = [
        Remedy::GiveFormat,
        Remedy::CheckInput,
        Remedy::MapColumns,
        Remedy::MapDateColumn,
        Remedy::GiveDelimiter,
        Remedy::FixLineOrDelimiter,
        Remedy::GiveEncoding,
        Remedy::GiveDateFormat,
        Remedy::CheckDateFormat,
        Remedy::CheckMapping,
        Remedy::GiveSheet,
        Remedy::RaiseLimit("max_rows"),
        Remedy::CastInQuery,
        Remedy::CastInSparkQuery,
        Remedy::CheckSparkToken,
        Remedy::RaiseEngineTimeout,
        Remedy::OneTimeZone,
        Remedy::ChooseCurrency,
        Remedy::ChoosePreset,
        Remedy::PointAtRunFolder,
        Remedy::WriteWithAgent,
        Remedy::UseEngine,
        Remedy::NameEngineData { spark: true },
        Remedy::NameEngineData { spark: false },
        Remedy::OneEngineData { spark: true },
        Remedy::OneEngineData { spark: false },
        Remedy::GiveSparkRemote,
        Remedy::CheckSparkRemote,
        Remedy::GivePostgresUrl,
        Remedy::SparkDateFormat,
        Remedy::FilterInQuery,
        Remedy::ConvertedAmounts,
    ];
    for r in all {
        // Fails to compile when a remedy is added and not listed above.
        match r {
            Remedy::GiveFormat
            | Remedy::CheckInput
            | Remedy::MapColumns
            | Remedy::MapDateColumn
            | Remedy::GiveDelimiter
            | Remedy::FixLineOrDelimiter
            | Remedy::GiveEncoding
            | Remedy::GiveDateFormat
            | Remedy::CheckDateFormat
            | Remedy::CheckMapping
            | Remedy::GiveSheet
            | Remedy::RaiseLimit(_)
            | Remedy::CastInQuery
            | Remedy::CastInSparkQuery
            | Remedy::CheckSparkToken
            | Remedy::RaiseEngineTimeout
            | Remedy::OneTimeZone
            | Remedy::ChooseCurrency
            | Remedy::ChoosePreset
            | Remedy::PointAtRunFolder
            | Remedy::WriteWithAgent
            | Remedy::UseEngine
            | Remedy::NameEngineData { .. }
            | Remedy::OneEngineData { .. }
            | Remedy::GiveSparkRemote
            | Remedy::CheckSparkRemote
            | Remedy::GivePostgresUrl
            | Remedy::SparkDateFormat
            | Remedy::FilterInQuery
            | Remedy::ConvertedAmounts => {}
        }
        let (cli, service) = (words(r, FrontEnd::Cli), words(r, FrontEnd::Service));
        assert!(!cli.is_empty() && !service.is_empty(), "{r:?}");
        assert!(!service.contains("--"), "{r:?}: {service}");
        assert_ne!(cli, service, "{r:?}");
    }
}
