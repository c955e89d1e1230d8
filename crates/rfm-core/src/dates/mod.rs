//! Date parsing: detects the format of a date column (ISO 8601, M/D/YYYY H:MM, D/M/YYYY,
//! YYYYMMDD, Excel serial numbers, epoch numbers, native timestamps) and converts it to
//! milliseconds since 1970-01-01.
//!
//! One time-zone rule for every format: a time written with an offset (`-0500`, `+01:00`,
//! `Z`) is an instant, converted to UTC (or to the wall time of `--timezone`); a time
//! written without one is taken as it is. A column that mixes the two is an error.

use chrono::DateTime;
use polars::prelude::*;
use rayon::prelude::*;

use crate::intern::{NONE, intern};

mod formats;

use formats::*;
pub use formats::{DateFormat, EXCEL_EPOCH_OFFSET_DAYS, excel_serial_to_millis, format_millis};

/// The parsed column: one value per row, `None` where the text did not parse.
#[derive(Debug)]
pub struct ParsedDates {
    pub millis: Vec<Option<i64>>,
    pub format: DateFormat,
    /// Set when day/month order could not be told from the data.
    pub ambiguous: bool,
}

/// Errors from date detection.
#[derive(Debug, thiserror::Error)]
pub enum DateError {
    #[error("column `{column}`: cannot recognise the date format (examples: {examples})")]
    Unrecognised { column: String, examples: String },
    #[error("column `{column}` has type {dtype}, which is not a date")]
    Type { column: String, dtype: String },
    #[error(
        "column `{column}` mixes times with a UTC offset (`{offset}`) and times without one (`{naive}`), which cannot be put on one clock"
    )]
    MixedZones {
        column: String,
        offset: String,
        naive: String,
    },
}

impl crate::remedy::Remedied for DateError {
    fn remedy(&self) -> Option<crate::remedy::Remedy> {
        Some(match self {
            DateError::Unrecognised { .. } => crate::remedy::Remedy::GiveDateFormat,
            DateError::Type { .. } => crate::remedy::Remedy::MapDateColumn,
            DateError::MixedZones { .. } => crate::remedy::Remedy::OneTimeZone,
        })
    }
}

/// Converts a date column to milliseconds, detecting the format unless `forced`.
pub fn parse_column(
    series: &Series,
    column: &str,
    forced: Option<&DateFormat>,
) -> Result<ParsedDates, DateError> {
    let (format, ambiguous) = match forced {
        Some(f) => (f.clone(), false),
        None => detect(series, column)?,
    };
    let millis = parse_with(series, &format, column)?;
    Ok(ParsedDates {
        millis: millis
            .into_iter()
            .map(|m| (m != NO_DATE).then_some(m))
            .collect(),
        format,
        ambiguous,
    })
}

/// The format of a date column, from its values (the first chunk of a file), and whether
/// day/month order was a tie.
pub fn detect(series: &Series, column: &str) -> Result<(DateFormat, bool), DateError> {
    match series.dtype() {
        DataType::String => {
            let (_, values) = intern(series.str().expect("string column").iter());
            detect_text(&values, column)
        }
        DataType::Datetime(_, _) | DataType::Date => Ok((DateFormat::Native, false)),
        dt if dt.is_primitive_numeric() => {
            let values = series
                .cast(&DataType::Float64)
                .map_err(|_| type_error(series, column))?;
            Ok((
                guess_numeric(values.f64().expect("f64").iter().flatten()),
                false,
            ))
        }
        _ => Err(type_error(series, column)),
    }
}

/// Distinct values of a text column that parse as `a` and as `b` (for the day/month
/// tie-break over later chunks).
pub fn count_parsed(series: &Series, a: &DateFormat, b: &DateFormat) -> (usize, usize) {
    let Ok(text) = series.str() else {
        return (0, 0);
    };
    let (_, values) = intern(text.iter());
    let mut unique = values;
    unique.sort_unstable();
    unique.dedup();
    let ok = |f: &DateFormat| unique.iter().filter(|v| f.parse(v).is_some()).count();
    (ok(a), ok(b))
}

/// Marks a value that is missing or does not parse, in [`parse_with`]'s output.
pub const NO_DATE: i64 = i64::MIN;

/// Parses a date column with a known format; [`NO_DATE`] where a value does not parse.
pub fn parse_with(
    series: &Series,
    format: &DateFormat,
    column: &str,
) -> Result<Vec<i64>, DateError> {
    parse_zoned(series, format, column, None).map(|(ms, _)| ms)
}

/// The first value with an offset and the first without one, of a text date column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Zones {
    pub offset: Option<String>,
    pub naive: Option<String>,
}

impl Zones {
    /// Takes the first examples of a later chunk where this one has none.
    pub fn merge(&mut self, other: Zones) {
        self.offset = self.offset.take().or(other.offset);
        self.naive = self.naive.take().or(other.naive);
    }

    /// An error when both kinds were seen.
    pub fn check(&self, column: &str) -> Result<(), DateError> {
        match (&self.offset, &self.naive) {
            (Some(o), Some(n)) => Err(DateError::MixedZones {
                column: column.to_string(),
                offset: crate::bounded::value(o, 40),
                naive: crate::bounded::value(n, 40),
            }),
            _ => Ok(()),
        }
    }
}

/// Like [`parse_with`]; times with an offset are put on `zone`'s wall clock when one is
/// given (UTC otherwise), and the column's first values with and without an offset are
/// returned for [`Zones::check`].
pub fn parse_zoned(
    series: &Series,
    format: &DateFormat,
    column: &str,
    zone: Option<chrono_tz::Tz>,
) -> Result<(Vec<i64>, Zones), DateError> {
    match series.dtype() {
        DataType::String => {
            // Parse each distinct text once: exports repeat timestamps heavily (and on
            // consecutive lines, so a repeat of the previous row needs no hashing).
            let (ids, values) = intern(series.str().expect("string column").iter());
            let mut zones = Zones::default();
            let parsed: Vec<i64> = values
                .iter()
                .map(|v| match format.parse_zoned(v) {
                    Some((ms, true)) => {
                        zones.offset.get_or_insert_with(|| v.to_string());
                        zone.map_or(ms, |z| wall_time(ms, z))
                    }
                    Some((ms, false)) => {
                        zones.naive.get_or_insert_with(|| v.to_string());
                        ms
                    }
                    None => NO_DATE,
                })
                .collect();
            let millis = ids
                .iter()
                .map(|&id| {
                    if id == NONE {
                        NO_DATE
                    } else {
                        parsed[id as usize]
                    }
                })
                .collect();
            Ok((millis, zones))
        }
        // A time-zone-aware timestamp holds UTC instants: put on `zone`'s clock too.
        DataType::Datetime(_, Some(_)) if zone.is_some() => {
            let ms = parse_typed(series, format, column)?;
            let z = zone.expect("zone");
            let wall = ms
                .into_iter()
                .map(|m| if m == NO_DATE { m } else { wall_time(m, z) })
                .collect();
            Ok((wall, Zones::default()))
        }
        _ => parse_typed(series, format, column).map(|ms| (ms, Zones::default())),
    }
}

/// The wall time in `zone` of the UTC instant `ms`.
fn wall_time(ms: i64, zone: chrono_tz::Tz) -> i64 {
    use chrono::{Offset, TimeZone};
    match DateTime::from_timestamp_millis(ms) {
        Some(utc) => {
            let offset = zone.offset_from_utc_datetime(&utc.naive_utc()).fix();
            ms + i64::from(offset.local_minus_utc()) * 1000
        }
        None => ms,
    }
}

/// A column the file typed itself (timestamps, dates, numbers).
fn parse_typed(series: &Series, format: &DateFormat, column: &str) -> Result<Vec<i64>, DateError> {
    match series.dtype() {
        DataType::Datetime(unit, _) => {
            // One pass from the physical values (no cast into a new column).
            let per_ms = match unit {
                TimeUnit::Nanoseconds => 1_000_000,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Milliseconds => 1,
            };
            let physical = series.to_physical_repr();
            let values = physical.i64().map_err(|_| type_error(series, column))?;
            let mut out = Vec::with_capacity(values.len());
            if values.null_count() == 0 {
                for chunk in values.downcast_iter() {
                    out.extend(chunk.values().iter().map(|v| v.div_euclid(per_ms)));
                }
            } else {
                out.extend(
                    values
                        .iter()
                        .map(|v| v.map_or(NO_DATE, |v| v.div_euclid(per_ms))),
                );
            }
            Ok(out)
        }
        DataType::Date => {
            let ms = series
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .and_then(|s| s.cast(&DataType::Int64))
                .map_err(|_| type_error(series, column))?;
            Ok(ms
                .i64()
                .expect("i64")
                .iter()
                .map(|v| v.unwrap_or(NO_DATE))
                .collect())
        }
        dt if dt.is_primitive_numeric() => {
            let values = series
                .cast(&DataType::Float64)
                .map_err(|_| type_error(series, column))?;
            Ok(values
                .f64()
                .expect("f64")
                .iter()
                .map(|v| {
                    v.and_then(|v| format.number_to_millis(v))
                        .unwrap_or(NO_DATE)
                })
                .collect())
        }
        _ => Err(type_error(series, column)),
    }
}

fn type_error(series: &Series, column: &str) -> DateError {
    DateError::Type {
        column: column.to_string(),
        dtype: series.dtype().to_string(),
    }
}

/// Numbers: 8-digit YYYYMMDD, epoch milliseconds or seconds, else Excel serial days.
fn guess_numeric(values: impl Iterator<Item = f64>) -> DateFormat {
    let (mut all_ymd, mut min, mut max, mut any) = (true, f64::MAX, f64::MIN, false);
    for v in values {
        any = true;
        min = min.min(v);
        max = max.max(v);
        all_ymd &= v.fract() == 0.0 && (18_000_101.0..=21_001_231.0).contains(&v);
    }
    if any && all_ymd {
        DateFormat::Pattern("%Y%m%d".into())
    } else if min >= 1e11 {
        DateFormat::EpochMillis
    } else if min >= 1e8 && max < 1e11 {
        DateFormat::EpochSeconds
    } else {
        DateFormat::ExcelSerial
    }
}

pub fn detect_text(values: &[&str], column: &str) -> Result<(DateFormat, bool), DateError> {
    let mut candidates = vec![DateFormat::Iso8601];
    candidates.extend(
        TEXT_PATTERNS
            .iter()
            .map(|p| DateFormat::Pattern(p.to_string())),
    );
    candidates.push(DateFormat::ExcelSerial);
    // Numbers written as text: YYYYMMDD is a pattern above; epoch and serial numbers here.
    let numeric: Vec<f64> = values
        .iter()
        .take(2000)
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .collect();
    if !numeric.is_empty() && numeric.len() == values.len().min(2000) {
        let guess = guess_numeric(numeric.into_iter());
        candidates.retain(|c| *c != guess);
        candidates.insert(0, guess);
    }
    // Shortlist on a sample, then count successes over every distinct value.
    let sample: Vec<&str> = values.iter().take(500).copied().collect();
    let shortlist: Vec<DateFormat> = candidates
        .into_iter()
        .filter(|f| {
            let ok = sample.iter().filter(|v| f.parse(v).is_some()).count();
            ok * 2 >= sample.len() && ok > 0
        })
        .collect();
    let mut best: Option<(usize, &DateFormat)> = None;
    let mut scores = Vec::new();
    for f in &shortlist {
        let ok = values.par_iter().filter(|v| f.parse(v).is_some()).count();
        scores.push((f, ok));
        if best.is_none_or(|(b, _)| ok > b) {
            best = Some((ok, f));
        }
    }
    match best {
        Some((ok, f)) if ok * 2 >= values.len() && ok > 0 => {
            let ambiguous = day_month_twin(f)
                .is_some_and(|twin| scores.iter().any(|(g, n)| **g == twin && *n == ok));
            Ok((f.clone(), ambiguous))
        }
        _ => Err(DateError::Unrecognised {
            column: column.to_string(),
            examples: values
                .iter()
                .take(3)
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The same pattern with day and month swapped.
pub fn day_month_twin(f: &DateFormat) -> Option<DateFormat> {
    match f {
        DateFormat::Pattern(p) if p.starts_with("%m/%d") => {
            Some(DateFormat::Pattern(p.replacen("%m/%d", "%d/%m", 1)))
        }
        DateFormat::Pattern(p) if p.starts_with("%d/%m") => {
            Some(DateFormat::Pattern(p.replacen("%d/%m", "%m/%d", 1)))
        }
        _ => None,
    }
}

/// Parses a `--snapshot` value: a date or date-time in any of the text formats above.
pub fn parse_snapshot(s: &str) -> Option<i64> {
    let f = detect_text(&[s], "snapshot").ok()?.0;
    f.parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn text(values: &[&str]) -> Series {
        Series::new(
            "d".into(),
            values.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
        )
    }

    fn ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn us_dates_are_month_first_and_unpadded() {
        let p = parse_column(&text(&["12/1/2010 8:26", "1/13/2011 14:05"]), "d", None).unwrap();
        assert_eq!(
            p.millis,
            vec![Some(ms(2010, 12, 1, 8, 26)), Some(ms(2011, 1, 13, 14, 5))]
        );
        assert!(!p.ambiguous);
    }

    #[test]
    fn day_first_is_detected_and_ties_are_flagged() {
        let p = parse_column(&text(&["13/1/2011 10:00", "2/1/2011 10:00"]), "d", None).unwrap();
        assert_eq!(p.millis[1], Some(ms(2011, 1, 2, 10, 0)));
        let tie = parse_column(&text(&["1/2/2011 10:00"]), "d", None).unwrap();
        assert!(tie.ambiguous);
        assert_eq!(tie.millis[0], Some(ms(2011, 1, 2, 10, 0)));
    }

    #[test]
    fn iso_compact_excel_and_epoch() {
        let iso = parse_column(
            &text(&["2011-12-09T12:50:00", "2011-12-09 12:50:00.5"]),
            "d",
            None,
        );
        assert_eq!(iso.unwrap().millis[0], Some(ms(2011, 12, 9, 12, 50)));
        let ymd = parse_column(&text(&["20111209", "20101201"]), "d", None).unwrap();
        assert_eq!(ymd.millis[0], Some(ms(2011, 12, 9, 0, 0)));
        let serial = Series::new("d".into(), &[40886.5347222222f64]);
        let p = parse_column(&serial, "d", None).unwrap();
        assert_eq!(p.format, DateFormat::ExcelSerial);
        assert!((p.millis[0].unwrap() - ms(2011, 12, 9, 12, 50)).abs() < 1000);
        let epoch = Series::new("d".into(), &[1_323_435_000i64]);
        assert_eq!(
            parse_column(&epoch, "d", None).unwrap().millis[0],
            Some(1_323_435_000_000)
        );
        let z = parse_column(&text(&["2011-12-09T12:50:00Z"]), "d", None).unwrap();
        assert_eq!(z.millis[0], Some(ms(2011, 12, 9, 12, 50)));
    }

    #[test]
    fn offsets_are_instants_in_utc_and_naive_times_stay() {
        let utc = ms(2023, 4, 21, 1, 16);
        for v in [
            "2023-04-20 20:16:00 -0500",
            "2023-04-20T20:16:00-05:00",
            "2023-04-21T01:16:00Z",
            "2023-04-21 03:16 +0200",
            "2023-04-21T03:16:00+02",
        ] {
            let (f, _) = detect_text(&[v], "d").unwrap();
            assert_eq!(f.parse_zoned(v), Some((utc, true)), "{v}");
        }
        let pattern = DateFormat::Pattern("%Y-%m-%d %H:%M:%S %z".into());
        assert_eq!(pattern.parse("2023-04-20 20:16:00 -0500"), Some(utc));
        assert_eq!(
            DateFormat::Iso8601.parse_zoned("2023-04-20 20:16:00"),
            Some((ms(2023, 4, 20, 20, 16), false))
        );
        assert_eq!(DateFormat::Iso8601.parse("2023-04-20 20:16:00 -05:0"), None);
        let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let col = text(&["2023-04-21T01:16:00Z", "2023-04-21 01:16:00"]);
        let (millis, zones) = parse_zoned(&col, &DateFormat::Iso8601, "d", Some(paris)).unwrap();
        assert_eq!(millis, vec![ms(2023, 4, 21, 3, 16), ms(2023, 4, 21, 1, 16)]);
        let err = zones.check("d").unwrap_err().to_string();
        assert!(
            err.contains("`2023-04-21T01:16:00Z`") && err.contains("`2023-04-21 01:16:00`"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_none_and_garbage_is_an_error() {
        let p = parse_column(&text(&["2011-12-09", "2011-12-10", "soon"]), "d", None).unwrap();
        assert_eq!(p.millis[2], None);
        let err = parse_column(&text(&["soon", "later"]), "when", None).unwrap_err();
        assert!(err.to_string().contains("`when`"));
        let remedy = crate::remedy::Remedied::remedy(&err);
        assert_eq!(remedy, Some(crate::remedy::Remedy::GiveDateFormat));
    }

    #[test]
    fn snapshot_accepts_dates_and_times() {
        assert_eq!(parse_snapshot("2011-12-10"), Some(ms(2011, 12, 10, 0, 0)));
        assert_eq!(
            parse_snapshot("2011-12-10 12:50"),
            Some(ms(2011, 12, 10, 12, 50))
        );
        assert_eq!(parse_snapshot("tomorrow"), None);
    }
}
