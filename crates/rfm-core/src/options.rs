//! Options as typed values, parsed once and shared by the settings, the command line and the
//! API: the k rule, the input's format, delimiter, date format and time zone.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dates::DateFormat;
use crate::ingest::FileFormat;
use crate::serde_as_text;

/// The one k rule: a fixed k lies in `K_MIN..=K_MAX`; a k range (for `k = auto` and the
/// elbow chart) in `K_RANGE_MIN..=K_MAX`, as a silhouette needs two clusters.
pub const K_MIN: usize = 1;
pub const K_RANGE_MIN: usize = 2;
pub const K_MAX: usize = 20;

/// Number of clusters: a number, or `auto` (the elbow rule over the k range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "KText")]
pub enum KChoice {
    Fixed(usize),
    Auto,
}

/// A k as settings files write it: a number or a word.
#[derive(Deserialize)]
#[serde(untagged)]
enum KText {
    N(u64),
    S(String),
}

impl TryFrom<KText> for KChoice {
    type Error = String;
    fn try_from(k: KText) -> Result<KChoice, String> {
        match k {
            KText::N(n) => n.to_string().parse(),
            KText::S(s) => s.parse(),
        }
    }
}

impl FromStr for KChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<KChoice, String> {
        match s.trim() {
            a if a.eq_ignore_ascii_case("auto") => Ok(KChoice::Auto),
            n => match n.parse::<usize>() {
                Ok(k) if (K_MIN..=K_MAX).contains(&k) => Ok(KChoice::Fixed(k)),
                Ok(k) => Err(format!(
                    "k = {k}: choose between {K_MIN} and {K_MAX}, or `auto`"
                )),
                Err(_) => Err(format!("k must be a number or `auto`, not `{n}`")),
            },
        }
    }
}

impl Serialize for KChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            KChoice::Fixed(k) => s.serialize_u64(*k as u64),
            KChoice::Auto => s.serialize_str("auto"),
        }
    }
}

/// The k range `k = auto` and the elbow chart consider, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KRange {
    pub min: usize,
    pub max: usize,
}

impl KRange {
    /// Checks the range against the k rule.
    pub fn new(min: usize, max: usize) -> Result<KRange, String> {
        if min < K_RANGE_MIN || max < min || max > K_MAX {
            return Err(format!(
                "k range {min}..{max}: need {K_RANGE_MIN} <= MIN <= MAX <= {K_MAX}"
            ));
        }
        Ok(KRange { min, max })
    }

    pub fn ks(self) -> std::ops::RangeInclusive<usize> {
        self.min..=self.max
    }
}

impl FromStr for KRange {
    type Err = String;
    /// `2..10` or `2..=10`.
    fn from_str(s: &str) -> Result<KRange, String> {
        let bad = || format!("`{s}` is not a k range; write e.g. 2..10");
        let (lo, hi) = s.split_once("..").ok_or_else(bad)?;
        let hi = hi.strip_prefix('=').unwrap_or(hi);
        let lo = lo.trim().parse().map_err(|_| bad())?;
        KRange::new(lo, hi.trim().parse().map_err(|_| bad())?)
    }
}

/// The input's file type: from the extension, or given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum InputFormat {
    #[default]
    Auto,
    Given(FileFormat),
}

impl FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" | "auto" => Ok(InputFormat::Auto),
            f => FileFormat::parse(f).map(InputFormat::Given).ok_or_else(|| {
                format!("unknown input format `{f}`; use auto, csv, xlsx or parquet")
            }),
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputFormat::Auto => f.write_str("auto"),
            InputFormat::Given(x) => f.write_str(x.name()),
        }
    }
}
serde_as_text!(InputFormat);

/// The CSV delimiter: sniffed, or given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Delimiter {
    #[default]
    Auto,
    /// One byte; `b' '` means any run of whitespace.
    Byte(u8),
}

impl FromStr for Delimiter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Delimiter::Auto),
            "tab" | "\\t" | "\t" => Ok(Delimiter::Byte(b'\t')),
            "whitespace" | "space" | " " => Ok(Delimiter::Byte(b' ')),
            d if d.len() == 1 => Ok(Delimiter::Byte(d.as_bytes()[0])),
            d => Err(format!(
                "unknown delimiter `{d}`; use auto, \",\", \";\", tab, \"|\" or whitespace"
            )),
        }
    }
}

impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delimiter::Auto => f.write_str("auto"),
            Delimiter::Byte(b'\t') => f.write_str("tab"),
            Delimiter::Byte(b' ') => f.write_str("whitespace"),
            Delimiter::Byte(b) => write!(f, "{}", *b as char),
        }
    }
}
serde_as_text!(Delimiter);

impl Delimiter {
    pub fn byte(self) -> Option<u8> {
        match self {
            Delimiter::Auto => None,
            Delimiter::Byte(b) => Some(b),
        }
    }
}

/// How dates are read: detected from the values, or given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DateChoice {
    #[default]
    Auto,
    Given(DateFormat),
}

impl FromStr for DateChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "" | "auto" => DateChoice::Auto,
            f => DateChoice::Given(DateFormat::from_option(f)),
        })
    }
}

impl fmt::Display for DateChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateChoice::Auto => f.write_str("auto"),
            DateChoice::Given(d) => f.write_str(&d.option_name()),
        }
    }
}
serde_as_text!(DateChoice);
serde_as_text!(TimeZoneChoice);

/// `--timezone`: the clock that times written with a UTC offset are put on (UTC when not
/// given). Times written without one are taken as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneChoice(pub Option<chrono_tz::Tz>);

impl std::str::FromStr for TimeZoneChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("utc") {
            return Ok(TimeZoneChoice(None));
        }
        s.parse::<chrono_tz::Tz>().map(|z| TimeZoneChoice(Some(z))).map_err(|_| {
            format!(
                "unknown time zone `{}`: give an IANA name such as Europe/Paris or America/New_York, or UTC",
                crate::bounded::value(s, crate::bounded::MAX_VALUE)
            )
        })
    }
}

impl std::fmt::Display for TimeZoneChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.map_or("UTC", |z| z.name()))
    }
}

impl DateChoice {
    pub fn given(&self) -> Option<DateFormat> {
        match self {
            DateChoice::Auto => None,
            DateChoice::Given(d) => Some(d.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_k_rule_for_every_front_end() {
        assert_eq!("auto".parse(), Ok(KChoice::Auto));
        assert_eq!("7".parse(), Ok(KChoice::Fixed(7)));
        assert_eq!("1".parse(), Ok(KChoice::Fixed(1)));
        assert!(
            "0".parse::<KChoice>()
                .unwrap_err()
                .contains("between 1 and 20")
        );
        assert!(
            "21".parse::<KChoice>()
                .unwrap_err()
                .contains("between 1 and 20")
        );
        assert_eq!("3..=8".parse(), Ok(KRange { min: 3, max: 8 }));
        assert!("1..5".parse::<KRange>().unwrap_err().contains("2 <= MIN"));
        assert!("2..30".parse::<KRange>().unwrap_err().contains("MAX <= 20"));
        let from_file = serde_json::from_str::<KChoice>("25")
            .unwrap_err()
            .to_string();
        assert!(from_file.contains("between 1 and 20"), "{from_file}");
        assert_eq!(
            serde_json::from_str::<KChoice>("\"auto\"").unwrap(),
            KChoice::Auto
        );
    }

    #[test]
    fn text_options_read_back_as_written() {
        for d in ["auto", "tab", "whitespace", ";", "|"] {
            assert_eq!(d.parse::<Delimiter>().unwrap().to_string(), d);
        }
        for f in [
            "auto", "excel", "epoch-s", "epoch-ms", "rfc3339", "iso8601", "%d/%m/%Y",
        ] {
            assert_eq!(f.parse::<DateChoice>().unwrap().to_string(), f);
        }
        assert_eq!("xlsx".parse(), Ok(InputFormat::Given(FileFormat::Xlsx)));
        assert!(
            "docx"
                .parse::<InputFormat>()
                .unwrap_err()
                .contains("use auto, csv")
        );
        assert!(
            "ab".parse::<Delimiter>()
                .unwrap_err()
                .contains("unknown delimiter")
        );
    }
}
