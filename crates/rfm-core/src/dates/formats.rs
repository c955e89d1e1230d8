//! Date formats: the ways a date is written (ISO 8601, strftime patterns, Excel serials,
//! epoch numbers, YYYYMMDD) and reading one value in each, with its offset when it has one.

use std::cell::RefCell;

use chrono::DateTime;
use chrono::format::{Item, Parsed, StrftimeItems};
use rustc_hash::FxHashMap;

pub(super) const MS_PER_DAY: f64 = 86_400_000.0;
/// Days from Excel's day 0 (1899-12-30, 1900 date system) to 1970-01-01.
pub const EXCEL_EPOCH_OFFSET_DAYS: f64 = 25_569.0;

pub fn excel_serial_to_millis(serial: f64) -> i64 {
    ((serial - EXCEL_EPOCH_OFFSET_DAYS) * MS_PER_DAY).round() as i64
}

/// A way of reading dates.
#[derive(Debug, Clone, PartialEq)]
pub enum DateFormat {
    /// A chrono `strftime` pattern; date-only patterns mean midnight.
    Pattern(String),
    /// ISO 8601: `YYYY-MM-DD`, then optionally `T` or a space and `HH:MM[:SS[.fff]]`,
    /// optionally `Z` or an offset (converted to UTC).
    Iso8601,
    /// RFC 3339 with an offset or `Z`; converted to UTC.
    Rfc3339,
    ExcelSerial,
    EpochSeconds,
    EpochMillis,
    /// Timestamps typed by the file itself (Parquet, XLSX date cells).
    Native,
}

impl DateFormat {
    /// Parses a `--date-format` value: `excel`, `epoch-s`, `epoch-ms`, `rfc3339` or a pattern.
    pub fn from_option(s: &str) -> DateFormat {
        match s.to_ascii_lowercase().as_str() {
            "excel" | "serial" => DateFormat::ExcelSerial,
            "epoch" | "epoch-s" | "unix" => DateFormat::EpochSeconds,
            "epoch-ms" => DateFormat::EpochMillis,
            "rfc3339" => DateFormat::Rfc3339,
            "iso" | "iso8601" => DateFormat::Iso8601,
            _ => DateFormat::Pattern(s.to_string()),
        }
    }

    /// The word or pattern that selects this format (`--date-format`).
    pub fn option_name(&self) -> String {
        match self {
            DateFormat::Pattern(p) => p.clone(),
            DateFormat::Iso8601 => "iso8601".into(),
            DateFormat::Rfc3339 => "rfc3339".into(),
            DateFormat::ExcelSerial => "excel".into(),
            DateFormat::EpochSeconds => "epoch-s".into(),
            DateFormat::EpochMillis => "epoch-ms".into(),
            DateFormat::Native => "native".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DateFormat::Pattern(p) => p.clone(),
            DateFormat::Iso8601 => "iso8601".into(),
            DateFormat::Rfc3339 => "rfc3339".into(),
            DateFormat::ExcelSerial => "excel serial".into(),
            DateFormat::EpochSeconds => "epoch seconds".into(),
            DateFormat::EpochMillis => "epoch milliseconds".into(),
            DateFormat::Native => "native timestamp".into(),
        }
    }

    /// Parses one text value.
    pub fn parse(&self, s: &str) -> Option<i64> {
        self.parse_zoned(s).map(|(ms, _)| ms)
    }

    /// Parses one text value: milliseconds (UTC where the value has an offset), and whether
    /// it had one.
    pub fn parse_zoned(&self, s: &str) -> Option<(i64, bool)> {
        let s = s.trim();
        match self {
            DateFormat::Pattern(p) => parse_pattern(s, p).map(|ms| (ms, has_zone(p))),
            DateFormat::Rfc3339 => DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| (d.timestamp_millis(), true)),
            DateFormat::Iso8601 => parse_iso(s),
            DateFormat::Native => None,
            _ => s
                .parse::<f64>()
                .ok()
                .and_then(|v| self.number_to_millis(v))
                .map(|ms| (ms, false)),
        }
    }

    pub(super) fn number_to_millis(&self, v: f64) -> Option<i64> {
        if !v.is_finite() {
            return None;
        }
        match self {
            DateFormat::ExcelSerial if (1.0..=2_958_465.0).contains(&v) => {
                Some(excel_serial_to_millis(v))
            }
            DateFormat::EpochSeconds => Some((v * 1000.0).round() as i64),
            DateFormat::EpochMillis => Some(v.round() as i64),
            DateFormat::Pattern(p) if v.fract() == 0.0 => {
                parse_pattern(&format!("{}", v as i64), p)
            }
            _ => None,
        }
    }
}

/// ISO 8601 dates and times, naive or with an offset: `2023-04-20`, `2023-04-20 20:16`,
/// `2023-04-20T20:16:00.5`, `… 20:16:00 -0500`, `…T20:16:00+01:00`, `…Z`.
pub(super) fn parse_iso(s: &str) -> Option<(i64, bool)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    if b.len() == 10 {
        return parse_pattern(s, "%Y-%m-%d").map(|ms| (ms, false));
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let (time, offset) = split_offset(&s[11..])?;
    let normal = format!("{} {}", &s[..10], time);
    let naive = parse_pattern(&normal, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|| parse_pattern(&normal, "%Y-%m-%d %H:%M"))?;
    Some(match offset {
        Some(seconds) => (naive - i64::from(seconds) * 1000, true),
        None => (naive, false),
    })
}

/// A time of day and its offset east of UTC in seconds, if it has one: `Z`, `±HH`,
/// `±HHMM` or `±HH:MM`, after the time or a space. `None` when the offset is malformed.
pub(super) fn split_offset(t: &str) -> Option<(&str, Option<i32>)> {
    if let Some(time) = t.strip_suffix(['Z', 'z']) {
        return Some((time.trim_end(), Some(0)));
    }
    let Some(at) = t.rfind(['+', '-']) else {
        return Some((t, None));
    };
    let (time, zone) = (t[..at].trim_end(), &t[at + 1..]);
    let digits: String = zone.chars().filter(|c| *c != ':').collect();
    let ok = matches!(digits.len(), 2 | 4)
        && digits.bytes().all(|c| c.is_ascii_digit())
        && (zone.len() == digits.len() || zone.as_bytes().get(2) == Some(&b':'));
    if !ok {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    let sign = if t.as_bytes()[at] == b'-' { -1 } else { 1 };
    Some((time, Some(sign * (hours * 3600 + minutes * 60))))
}

/// Whether a strftime pattern reads an offset.
pub(super) fn has_zone(pattern: &str) -> bool {
    ["%z", "%:z", "%::z", "%#z"]
        .iter()
        .any(|z| pattern.contains(z))
}

/// A strftime pattern compiled once per thread (chrono would re-read the pattern on every
/// call), and whether it has a time part.
type Compiled = std::rc::Rc<(Vec<Item<'static>>, bool)>;

pub(super) fn compiled(pattern: &str) -> Option<Compiled> {
    thread_local! {
        static CACHE: RefCell<FxHashMap<String, Option<Compiled>>> = RefCell::default();
    }
    CACHE.with(|cache| {
        if let Some(c) = cache.borrow().get(pattern) {
            return c.clone();
        }
        let has_time = ["%H", "%I", "%M", "%S", "%T", "%R", "%X"]
            .iter()
            .any(|t| pattern.contains(t));
        let items = StrftimeItems::new(pattern).parse_to_owned().ok();
        let c = items.map(|items| std::rc::Rc::new((items, has_time)));
        cache.borrow_mut().insert(pattern.to_string(), c.clone());
        c
    })
}

pub(super) fn parse_pattern(s: &str, pattern: &str) -> Option<i64> {
    let compiled = compiled(pattern)?;
    let (items, has_time) = &*compiled;
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
    if parsed.offset.is_some() {
        // An instant: converted to UTC, never its wall time with the offset dropped.
        parsed.to_datetime().ok().map(|d| d.timestamp_millis())
    } else if *has_time {
        parsed
            .to_naive_datetime_with_offset(0)
            .ok()
            .map(|d| d.and_utc().timestamp_millis())
    } else {
        parsed
            .to_naive_date()
            .ok()
            .map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis())
    }
}

/// Candidate text formats, in order of preference (month/day before day/month on a tie).
pub(super) const TEXT_PATTERNS: &[&str] = &[
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y%m%d",
];

/// Formats milliseconds as `YYYY-MM-DD HH:MM:SS`.
pub fn format_millis(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|d| d.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}
