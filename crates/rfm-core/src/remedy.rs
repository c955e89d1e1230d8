//! What a user can do about an error, as data. The library's errors name a [`Remedy`] and
//! stop at the problem; each front end appends the remedy in its own words (`words.rs` in
//! the front ends' crate): a flag on the command line, a form field or API option in the
//! service.

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
    /// The folder is not a run folder rfm-agent wrote.
    PointAtRunFolder,
    /// The run folder has no campaigns: the agent did not write it.
    WriteWithAgent,
    /// A database or Spark source was given as a file to read.
    UseEngine,
    /// A database (`spark` false) or Spark source names no table, query or file.
    NameEngineData { spark: bool },
    /// A database or Spark source names more than one of table, query and file.
    OneEngineData { spark: bool },
    /// The Spark Connect address is missing or malformed.
    GiveSparkRemote,
    /// Spark Connect could not be reached.
    CheckSparkRemote,
    /// The PostgreSQL source is not a postgres:// URL.
    GivePostgresUrl,
    /// A date format Spark cannot be given.
    SparkDateFormat,
    /// An export preset or currency choice was given for a database or Spark source.
    FilterInQuery,
    /// Converted amounts were asked of an export that has none.
    ConvertedAmounts,
}

/// An error that may name a remedy.
pub trait Remedied {
    fn remedy(&self) -> Option<Remedy>;
}
