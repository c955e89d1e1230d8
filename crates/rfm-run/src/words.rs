//! What the front ends say about an error: its chain of causes, each said once, and the
//! remedy its data names ([`Remedy`]) in the words of the command line or the service.

use rfm_core::remedy::{Remedied, Remedy};

/// Who reads the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    Cli,
    Service,
}

/// The remedy in the words of `to`.
pub fn words(r: Remedy, to: FrontEnd) -> String {
    let cli = to == FrontEnd::Cli;
    let pick = |c: &str, s: &str| if cli { c.to_string() } else { s.to_string() };
    const ROLES: &str = "customer=…,invoice=…,date=…,quantity=…,price=… (or amount=… instead of quantity and price)";
    match r {
        Remedy::GiveFormat => pick(
            "use .csv, .tsv, .txt (optionally .gz), .xlsx or .parquet, or pass --format-in csv|xlsx|parquet",
            "upload a .csv, .tsv, .txt (optionally .gz), .xlsx or .parquet file",
        ),
        Remedy::CheckInput => pick(
            "check the path passed to --input",
            "upload the transactions file",
        ),
        Remedy::MapColumns => pick(
            &format!("map yours with --columns {ROLES}"),
            &format!("map yours under \"Column names\" (API option `columns`): {ROLES}"),
        ),
        Remedy::MapDateColumn => pick(
            "map the date column with --columns date=…",
            "map the date column under \"Column names\" (API option `columns`: date=…)",
        ),
        Remedy::GiveDelimiter => pick("pass --delimiter", "save it as a comma-separated CSV"),
        Remedy::FixLineOrDelimiter => pick(
            "fix that line (an unquoted delimiter inside a value?) or pass the right --delimiter",
            "fix that line (an unquoted delimiter inside a value?) or save the file as a comma-separated CSV",
        ),
        Remedy::GiveEncoding => pick("pass --encoding latin1", "save it as UTF-8"),
        Remedy::GiveDateFormat => pick(
            "pass --date-format, e.g. '%d/%m/%Y %H:%M', 'excel' or 'epoch-s'",
            "save the dates as e.g. 2011-12-09 12:50 (year first)",
        ),
        Remedy::CheckDateFormat => pick("check --date-format", "check the date column's format"),
        Remedy::CheckMapping => pick(
            "check the column mapping (--columns) and the file",
            "check the column mapping (\"Column names\") and the file",
        ),
        Remedy::GiveSheet => pick(
            "pass one with --sheet",
            "put the transactions on the workbook's first sheet",
        ),
        Remedy::CastInQuery
        | Remedy::CastInSparkQuery
        | Remedy::CheckSparkToken
        | Remedy::RaiseEngineTimeout
        | Remedy::UseEngine
        | Remedy::NameEngineData { .. }
        | Remedy::OneEngineData { .. }
        | Remedy::GiveSparkRemote
        | Remedy::CheckSparkRemote
        | Remedy::GivePostgresUrl
        | Remedy::SparkDateFormat
        | Remedy::FilterInQuery => engine_words(r, to),
        Remedy::PointAtRunFolder | Remedy::WriteWithAgent | Remedy::ConvertedAmounts => {
            source_words(r, to)
        }
        Remedy::OneTimeZone => pick(
            "export the dates again with one convention, or map another date column with --columns date=…",
            "export the dates again with one convention",
        ),
        Remedy::ChooseCurrency => pick(
            "choose one with --currency CODE (its rows are kept, the others are counted in the ledger), or --currency converted where the export has a converted amount",
            "choose one under \"Currency\" (API option `currency`), or `converted` where the export has a converted amount",
        ),
        Remedy::ChoosePreset => pick(
            "choose one with --preset NAME",
            "choose one under \"Export preset\" (API option `preset`)",
        ),
        Remedy::RaiseLimit(setting) => format!(
            "if the file is genuine, raise `[limits] {setting}` in the {} (or {} environment variable RFM_AGENT__LIMITS__{})",
            if cli {
                "settings"
            } else {
                "service's settings"
            },
            if cli { "the" } else { "its" },
            setting.to_ascii_uppercase()
        ),
    }
}

/// The remedies of a database or Spark source.
fn engine_words(r: Remedy, to: FrontEnd) -> String {
    let pick = |c: &str, s: &str| if to == FrontEnd::Cli { c } else { s }.to_string();
    match r {
        Remedy::CastInQuery => pick(
            "cast it in --query, e.g. to_timestamp(\"COLUMN\", 'MM/DD/YYYY HH24:MI') AS \"COLUMN\" or \"COLUMN\"::numeric",
            "the service's operator can cast it in the source's query ([sources.NAME] query)",
        ),
        Remedy::CastInSparkQuery => pick(
            "cast it in --query, e.g. SELECT to_timestamp(`COLUMN`, 'M/d/yyyy H:mm') AS `COLUMN`, … FROM …, or read the file with --input FILE.csv",
            "the service's operator can cast it in the source's query ([sources.NAME] query)",
        ),
        Remedy::CheckSparkToken => pick(
            "put the server's token in SPARK_REMOTE or [engine] url: sc://HOST:PORT/;token=…",
            "the service's operator can check the token in the source's url ([sources.NAME] url)",
        ),
        Remedy::RaiseEngineTimeout => pick(
            "check the host and port, or raise --engine-timeout",
            "check the source's host and port in the service's settings, or raise its [engine] timeout_secs",
        ),
        _ => source_words(r, to),
    }
}

/// The remedies of naming a source: a database, Spark, a run folder, the currency.
fn source_words(r: Remedy, to: FrontEnd) -> String {
    let pick = |c: &str, s: &str| if to == FrontEnd::Cli { c } else { s }.to_string();
    const OPERATOR: &str =
        "the service's operator names the source's table, query or file ([sources.NAME])";
    match r {
        Remedy::UseEngine => pick(
            "give --input postgres://USER@HOST:PORT/DB, or --engine spark",
            "the service's operator names database and Spark sources ([sources.NAME])",
        ),
        Remedy::NameEngineData { spark: true } => pick(
            "name the data with --input PATH (a Parquet or CSV file the cluster reads), --table NAME or --query \"SELECT …\"",
            OPERATOR,
        ),
        Remedy::NameEngineData { spark: false } => pick(
            "name the data with --table NAME or --query \"SELECT …\"",
            OPERATOR,
        ),
        Remedy::OneEngineData { spark: true } => {
            pick("give one of --input PATH, --table and --query", OPERATOR)
        }
        Remedy::OneEngineData { spark: false } => {
            pick("give --table or --query, not both", OPERATOR)
        }
        Remedy::GiveSparkRemote => pick(
            "set it with --spark-remote or SPARK_REMOTE",
            "the service's operator sets it in the source's url ([sources.NAME] url)",
        ),
        Remedy::CheckSparkRemote => pick(
            "check the host and port of --spark-remote or SPARK_REMOTE, and that the Spark Connect server runs",
            "the service's operator can check the source's url and that the Spark Connect server runs",
        ),
        Remedy::GivePostgresUrl => pick(
            "write --input postgres://USER@HOST:PORT/DB",
            "the service's operator writes the source's url as postgres://USER@HOST:PORT/DB",
        ),
        Remedy::SparkDateFormat => pick(
            "give --date-format with %Y %m %d %H %M %S, or use Parquet",
            "give the date format (API option `date_format`) with %Y %m %d %H %M %S, or use Parquet",
        ),
        Remedy::PointAtRunFolder => pick(
            "point at a folder written by `rfm-agent segment --out DIR` or `rfm-agent agent --out DIR`",
            "choose a finished run of this service",
        ),
        Remedy::WriteWithAgent => pick(
            "write the folder with `rfm-agent agent --out DIR`",
            "choose a run that wrote campaigns",
        ),
        Remedy::ConvertedAmounts => pick(
            "choose one currency with --currency CODE",
            "choose one currency under \"Currency\" (API option `currency`)",
        ),
        Remedy::FilterInQuery => pick(
            "with a database or Spark, select the rows to keep in --query (e.g. WHERE status = 'paid')",
            "with a database or Spark source, the service's operator selects the rows to keep in its query ([sources.NAME] query)",
        ),
        _ => String::new(),
    }
}

/// The first remedy named along the error's chain.
pub fn find(e: &anyhow::Error) -> Option<Remedy> {
    e.chain().find_map(|cause| {
        let remedied: Option<&dyn Remedied> = None
            .or_else(|| {
                cause
                    .downcast_ref::<rfm_core::ingest::IngestError>()
                    .map(|x| x as _)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<rfm_core::clean::CleanError>()
                    .map(|x| x as _)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<rfm_core::dates::DateError>()
                    .map(|x| x as _)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<rfm_engines::EngineError>()
                    .map(|x| x as _)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<rfm_core::run_folder::FolderError>()
                    .map(|x| x as _)
            });
        remedied.and_then(Remedied::remedy)
    })
}

/// The error chain joined with `: `, each cause said once: a cause whose words an outer
/// message already holds (an error that prints its source, like `"{path}: {source}"`) is
/// left out.
pub fn chain(e: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !said.iter().any(|outer| outer.contains(&text)) {
            said.push(text);
        }
    }
    said.join(": ")
}

/// The error chain in words, with its remedy (if any) said for `to`.
pub fn render(e: &anyhow::Error, to: FrontEnd) -> String {
    let text = chain(e);
    match find(e) {
        Some(r) => format!("{text}; {}", words(r, to)),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfm_core::ingest::IngestError;

    #[test]
    fn each_front_end_says_the_remedy_its_own_way() {
        let e = anyhow::Error::new(IngestError::Layout {
            path: "f.csv".into(),
            detail: "one column".into(),
        })
        .context("reading the input");
        assert_eq!(find(&e), Some(Remedy::GiveDelimiter));
        assert_eq!(
            render(&e, FrontEnd::Cli),
            "reading the input: f.csv: cannot find the columns: one column; pass --delimiter"
        );
        let service = render(&e, FrontEnd::Service);
        assert!(
            service.ends_with("; save it as a comma-separated CSV"),
            "{service}"
        );
        let dates = anyhow::Error::new(rfm_core::clean::CleanError::Date {
            path: "f.csv".into(),
            source: rfm_core::dates::DateError::Unrecognised {
                column: "d".into(),
                examples: "`x`".into(),
            },
        })
        .context("reading the input");
        let said = render(&dates, FrontEnd::Cli);
        assert_eq!(said.matches("cannot recognise").count(), 1, "{said}");
        let plain = anyhow::anyhow!("nothing to do");
        assert_eq!(render(&plain, FrontEnd::Service), "nothing to do");
    }
}
