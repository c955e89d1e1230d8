//! Options as typed values, parsed once and shared by the settings, the command line and the
//! API: the k rule, the input's format, delimiter and date format, and [`RunOptions`], the
//! per-run options both front ends lay over the settings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::clean::Returns;
use crate::dates::DateFormat;
use crate::ingest::FileFormat;
use crate::rfm::Frequency;
use crate::settings::{Backend, Settings};

/// The one k rule: a fixed k lies in `K_MIN..=K_MAX`; a k range (for `k = auto` and the
/// elbow chart) in `K_RANGE_MIN..=K_MAX`, as a silhouette needs two clusters.
pub const K_MIN: usize = 1;
pub const K_RANGE_MIN: usize = 2;
pub const K_MAX: usize = 20;

/// Serde through the type's `FromStr` and `Display`, so that settings files, environment
/// variables, flags and API fields accept the same words with the same messages.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.to_string()
            }
        }
    };
}

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
serde_as_text!(crate::ingest::PresetChoice);
serde_as_text!(crate::ingest::CurrencyChoice);
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
serde_as_text!(crate::ingest::Encoding);

impl DateChoice {
    pub fn given(&self) -> Option<DateFormat> {
        match self {
            DateChoice::Auto => None,
            DateChoice::Given(d) => Some(d.clone()),
        }
    }
}

/// The options of one run that the command line and the API both take, each already
/// checked; `None` keeps the setting. [`RunOptions::apply`] is the one place they meet the
/// settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    pub k: Option<KChoice>,
    pub k_range: Option<KRange>,
    pub frequency: Option<Frequency>,
    pub returns: Option<Returns>,
    pub drop_zero_price: bool,
    pub snapshot: Option<String>,
    /// `ROLE=COLUMN,…` overrides of the column mapping.
    pub columns: Option<String>,
    pub preset: Option<crate::ingest::PresetChoice>,
    pub currency: Option<crate::ingest::CurrencyChoice>,
    pub llm: Option<Backend>,
    pub seed: Option<u64>,
    pub n_init: Option<usize>,
    pub max_iter: Option<usize>,
    /// Fit the predictive models (`false`: `--no-predict`).
    pub predict: Option<bool>,
}

impl RunOptions {
    /// Lays the options over `s`. Only the column mapping can fail (an unknown role).
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        if let Some(spec) = &self.columns {
            s.input.columns.apply_overrides(spec)?;
        }
        s.input.preset = self.preset.unwrap_or(s.input.preset);
        if let Some(c) = &self.currency {
            s.input.currency = c.clone();
        }
        s.clean.returns = self.returns.unwrap_or(s.clean.returns);
        s.clean.drop_zero_price |= self.drop_zero_price;
        s.rfm.frequency = self.frequency.unwrap_or(s.rfm.frequency);
        if let Some(v) = &self.snapshot {
            s.rfm.snapshot = v.clone();
        }
        let c = &mut s.cluster;
        c.k = self.k.unwrap_or(c.k);
        if let Some(r) = self.k_range {
            (c.k_min, c.k_max) = (r.min, r.max);
        }
        c.seed = self.seed.unwrap_or(c.seed);
        c.n_init = self.n_init.unwrap_or(c.n_init);
        c.max_iter = self.max_iter.unwrap_or(c.max_iter);
        s.llm.backend = self.llm.unwrap_or(s.llm.backend);
        s.predict.enabled = self.predict.unwrap_or(s.predict.enabled);
        Ok(())
    }
}

/// Words for people: what the dashboard shows for each choice.
pub trait Labelled: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    fn label(self) -> &'static str;
}

impl Labelled for Frequency {
    const ALL: &'static [Frequency] = &[Frequency::Invoices, Frequency::Lines];
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn label(self) -> &'static str {
        match self {
            Frequency::Invoices => "Orders (distinct invoices)",
            Frequency::Lines => "Order lines",
        }
    }
}

/// `[{value, label}, …]` for a choice, as `/v1/config` serves it.
pub fn choices<T: Labelled>() -> Vec<serde_json::Value> {
    T::ALL
        .iter()
        .map(|c| serde_json::json!({"value": c.name(), "label": c.label()}))
        .collect()
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
