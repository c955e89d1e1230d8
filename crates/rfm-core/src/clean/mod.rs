//! Cleaning: the rules that remove unusable rows, and the ledger that accounts for every
//! one of them (rows and revenue per rule, with example row numbers). [`typed`] applies the
//! rules to one chunk of rows at a time.

pub mod orders;
pub mod typed;

use serde::{Deserialize, Serialize};

use crate::remedy::{Remedied, Remedy};

use crate::dates::{self, DateFormat};

/// What to do with cancellations (invoices starting with `C`): drop them (the reference
/// convention, the default), or net them as returns that reduce the customer's monetary
/// value. (No doc comments on the variants: the command line's help would list them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Returns {
    #[default]
    Drop,
    Net,
}

/// Why a row was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Rule {
    MissingCustomer,
    BadDate,
    BadNumber,
    Cancellation,
    QuantityNotPositive,
    PriceNegative,
    PriceZero,
    AmountNotPositive,
    /// The rules an export's own fields drive (after the row's own rules: a Shopify order's
    /// fields are on its first line, and its other lines take them from there).
    TestOrder,
    OtherCurrency,
    OrderCancelled,
    OrderRefunded,
    PaymentVoided,
    PaymentFailed,
    PaymentPending,
    AfterSnapshot,
    /// Without a snapshot: dated after the time of the run (a year 9999 typo would move the
    /// snapshot and every customer's recency); the snapshot is taken from the other rows.
    AfterRun,
    /// Net mode: customers whose returns cancel their purchases, or who only returned.
    NetValueNotPositive,
}

impl Rule {
    /// Every rule, in ledger order.
    pub const ALL: [Rule; 18] = [
        Rule::MissingCustomer,
        Rule::BadDate,
        Rule::BadNumber,
        Rule::Cancellation,
        Rule::QuantityNotPositive,
        Rule::PriceNegative,
        Rule::PriceZero,
        Rule::AmountNotPositive,
        Rule::TestOrder,
        Rule::OtherCurrency,
        Rule::OrderCancelled,
        Rule::OrderRefunded,
        Rule::PaymentVoided,
        Rule::PaymentFailed,
        Rule::PaymentPending,
        Rule::AfterSnapshot,
        Rule::AfterRun,
        Rule::NetValueNotPositive,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Rule::MissingCustomer => "missing customer",
            Rule::BadDate => "unparseable date",
            Rule::BadNumber => "unparseable number",
            Rule::Cancellation => "cancellation",
            Rule::QuantityNotPositive => "quantity <= 0",
            Rule::PriceNegative => "price < 0",
            Rule::PriceZero => "price = 0",
            Rule::AmountNotPositive => "amount <= 0",
            Rule::TestOrder => "test order",
            Rule::OtherCurrency => "other currency",
            Rule::OrderCancelled => "order cancelled",
            Rule::OrderRefunded => "refunded",
            Rule::PaymentVoided => "payment voided",
            Rule::PaymentFailed => "payment failed",
            Rule::PaymentPending => "payment pending",
            Rule::AfterSnapshot => "after snapshot",
            Rule::AfterRun => "dated after the run",
            Rule::NetValueNotPositive => "net value <= 0",
        }
    }
}

/// One ledger line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Removed {
    pub rule: String,
    pub rows: usize,
    /// Quantity × price (or amount) carried by the removed rows, where it parsed.
    pub revenue: f64,
    /// First few data-row numbers (1-based, header excluded).
    pub examples: Vec<usize>,
}

/// The cleaning ledger: rows in = rows kept + every removed line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ledger {
    pub rows_in: usize,
    pub rows_kept: usize,
    pub customers: usize,
    pub revenue_in: f64,
    pub revenue_kept: f64,
    pub removed: Vec<Removed>,
    /// Net mode: cancellation rows kept as returns (included in rows_kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returns_netted: Option<usize>,
    pub date_format: String,
    /// Said of the ledger where it differs from a file's (e.g. no example rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Partial refunds taken off kept rows (the rows stay; `revenue_kept` is net of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunds_netted: Option<Netted>,
    /// The one currency of the kept rows, when the export names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// Partial refunds netted: how many orders or payments, and how much.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Netted {
    pub orders: usize,
    pub amount: f64,
}

impl Ledger {
    /// Enters `rows` rows carrying `revenue` removed by `rule`; `first` holds the first
    /// data-row indices (0-based) it hit. Nothing is entered for no rows.
    pub fn add(&mut self, rule: Rule, rows: usize, revenue: f64, first: &[u64]) {
        if rows == 0 {
            return;
        }
        self.rows_kept -= rows;
        self.revenue_kept -= revenue;
        self.removed.push(Removed {
            rule: rule.label().to_string(),
            rows,
            revenue,
            examples: first
                .iter()
                .take(EXAMPLES)
                .map(|r| *r as usize + 1)
                .collect(),
        });
    }
}

/// Example row numbers kept per rule.
pub const EXAMPLES: usize = 5;

/// Cleaning settings.
#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    pub returns: Returns,
    /// Remove lines with a zero price (free items). Kept by default, as in the reference.
    pub drop_zero_price: bool,
    pub date_format: Option<DateFormat>,
    /// Snapshot in milliseconds; `None` = last date in the data + 1 day.
    pub snapshot: Option<i64>,
    /// Without a snapshot, no purchase can be dated after this (the time of the run plus a
    /// day, room for any time zone): later rows are set aside by [`Rule::AfterRun`] and the
    /// snapshot is taken from the rest. `None`: no such rule.
    pub latest: Option<i64>,
    /// Which currency's rows to keep when the export names currencies.
    pub currency: crate::ingest::CurrencyChoice,
    /// Times with a UTC offset are put on this zone's clock (UTC when `None`).
    pub timezone: Option<chrono_tz::Tz>,
}

/// Errors from cleaning.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error("{path}: {source}")]
    Date {
        path: String,
        #[source]
        source: dates::DateError,
    },
    #[error("{path}: column `{column}` cannot be read as {what}: {detail}")]
    Type {
        path: String,
        column: String,
        what: &'static str,
        detail: String,
    },
    #[error("{path}: every row was removed by cleaning ({summary})")]
    NothingLeft { path: String, summary: String },
    #[error("{path}: no row has a readable date in column `{column}`")]
    NoDates { path: String, column: String },
    #[error(
        "{path}: column `{column}` holds {count} currencies ({list}), and money is never added across currencies"
    )]
    Currencies {
        path: String,
        column: String,
        count: usize,
        list: String,
    },
}

impl Remedied for CleanError {
    fn remedy(&self) -> Option<Remedy> {
        match self {
            CleanError::Date { source, .. } => source.remedy(),
            CleanError::NothingLeft { .. } => Some(Remedy::CheckMapping),
            CleanError::NoDates { .. } => Some(Remedy::CheckDateFormat),
            CleanError::Currencies { .. } => Some(Remedy::ChooseCurrency),
            _ => None,
        }
    }
}

/// `17850`, `"17850"`, ` 17850.0 ` → `17850`; blank → `None`.
pub fn normalize_customer(raw: &str) -> Option<&str> {
    let mut s = raw.trim();
    if s.starts_with('"') || s.ends_with('"') {
        s = s.trim_matches('"').trim();
    }
    if s.is_empty()
        || (s.len() == 3 && s.eq_ignore_ascii_case("nan"))
        || (s.len() == 4 && s.eq_ignore_ascii_case("null"))
    {
        return None;
    }
    if let Some(dot) = memchr::memchr(b'.', s.as_bytes()) {
        let (int, frac) = (&s[..dot], &s.as_bytes()[dot + 1..]);
        if !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.iter().all(|&b| b == b'0')
        {
            return Some(int);
        }
    }
    Some(s)
}

/// Parses a number as exports write it: `2.55`, `-3`, `1,234.50` (thousands separators),
/// `2,50` (decimal comma), with an optional leading currency sign.
pub fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim().trim_start_matches(['£', '$', '€']).trim();
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    if !s.contains(',') {
        return None;
    }
    let digits = s.trim_start_matches(['-', '+']);
    let int = digits.split_once('.').map_or(digits, |(i, _)| i);
    let groups: Vec<&str> = int.split(',').collect();
    let thousands = groups[0].len() <= 3
        && !groups[0].is_empty()
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    let cleaned = if thousands {
        s.replace(',', "")
    } else if !s.contains('.') && s.matches(',').count() == 1 {
        s.replace(',', ".")
    } else {
        return None;
    };
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

pub fn nothing_left(path: &str, ledger: &Ledger) -> CleanError {
    CleanError::NothingLeft {
        path: path.into(),
        summary: ledger
            .removed
            .iter()
            .map(|r| format!("{}: {}", r.rule, r.rows))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_separators() {
        assert_eq!(parse_number("2.55"), Some(2.55));
        assert_eq!(parse_number(" -3 "), Some(-3.0));
        assert_eq!(parse_number("1,234.50"), Some(1234.5));
        assert_eq!(parse_number("2,50"), Some(2.5));
        assert_eq!(parse_number("£7"), Some(7.0));
        assert_eq!(parse_number("two"), None);
        assert_eq!(parse_number("1,2,3"), None);
        assert_eq!(parse_number("NaN"), None);
    }

    #[test]
    fn customer_ids_are_normalised() {
        assert_eq!(normalize_customer("17850"), Some("17850"));
        assert_eq!(normalize_customer(" 17850.0 "), Some("17850"));
        assert_eq!(normalize_customer("\"17850\""), Some("17850"));
        assert_eq!(normalize_customer("17850.5"), Some("17850.5"));
        assert_eq!(normalize_customer("A-17"), Some("A-17"));
        assert_eq!(normalize_customer("  "), None);
        assert_eq!(normalize_customer("NaN"), None);
    }
}
