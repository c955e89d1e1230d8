//! What a user can do about an error, as data. The library's errors name a [`Remedy`] and
//! stop at the problem; each front end appends the remedy in its own words: a flag on the
//! command line, a form field or API option in the service.

/// Who reads the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    Cli,
    Service,
}

/// What to do about an input problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// The file's type is not known from its name.
    GiveFormat,
    /// The input path is wrong or not a file.
    CheckInput,
    /// The required columns were not found under their names.
    MapColumns,
    /// The date role points at a column that is not a date.
    MapDateColumn,
    /// The columns could not be told apart.
    GiveDelimiter,
    /// A line has too many or too few fields.
    FixLineOrDelimiter,
    /// The text is not in the encoding asked for.
    GiveEncoding,
    /// The dates are in a format that was not recognised.
    GiveDateFormat,
    /// No row had a readable date in the given format.
    CheckDateFormat,
    /// No row survived cleaning.
    CheckMapping,
    /// The workbook sheet asked for does not exist.
    GiveSheet,
    /// The file is over an input limit (`[limits] setting`).
    RaiseLimit(&'static str),
    /// A database column has the wrong type.
    CastInQuery,
    /// A Spark column has the wrong type.
    CastInSparkQuery,
    /// The Spark Connect server refused the token.
    CheckSparkToken,
    /// The database did not answer in time.
    RaiseEngineTimeout,
    /// A date column mixes times with and without a UTC offset.
    OneTimeZone,
    /// The export holds more than one currency.
    ChooseCurrency,
    /// The header fits more than one export preset.
    ChoosePreset,
}

impl Remedy {
    /// The remedy in the words of `to`.
    pub fn words(self, to: FrontEnd) -> String {
        let cli = to == FrontEnd::Cli;
        let pick = |c: &str, s: &str| if cli { c.to_string() } else { s.to_string() };
        const ROLES: &str = "customer=…,invoice=…,date=…,quantity=…,price=… (or amount=… instead of quantity and price)";
        match self {
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
            Remedy::CheckDateFormat => {
                pick("check --date-format", "check the date column's format")
            }
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
            | Remedy::RaiseEngineTimeout => self.engine_words(to),
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
}

impl Remedy {
    /// The remedies of a database or Spark source.
    fn engine_words(self, to: FrontEnd) -> String {
        let pick = |c: &str, s: &str| if to == FrontEnd::Cli { c } else { s }.to_string();
        match self {
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
            _ => String::new(),
        }
    }
}

/// An error that may name a remedy.
pub trait Remedied {
    fn remedy(&self) -> Option<Remedy>;
}

/// The first remedy named along the error's chain.
pub fn find(e: &anyhow::Error) -> Option<Remedy> {
    e.chain().find_map(|cause| {
        let remedied: Option<&dyn Remedied> = None
            .or_else(|| {
                cause
                    .downcast_ref::<crate::ingest::IngestError>()
                    .map(|x| x as _)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<crate::clean::CleanError>()
                    .map(|x| x as _)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<crate::dates::DateError>()
                    .map(|x| x as _)
            })
            .or_else(|| {
                cause
                    .downcast_ref::<crate::engine::EngineError>()
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
        Some(r) => format!("{text}; {}", r.words(to)),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::IngestError;

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
        let dates = anyhow::Error::new(crate::clean::CleanError::Date {
            path: "f.csv".into(),
            source: crate::dates::DateError::Unrecognised {
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

    #[test]
    fn no_service_remedy_names_a_flag() {
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
        ];
        for r in all {
            let (cli, service) = (r.words(FrontEnd::Cli), r.words(FrontEnd::Service));
            assert!(!service.contains("--"), "{r:?}: {service}");
            assert_ne!(cli, service, "{r:?}");
        }
    }
}
