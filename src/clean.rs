//! Cleaning: types the raw columns, removes unusable rows and accounts for every one of
//! them in a ledger (rows and revenue per rule, with example row numbers).

use polars::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::dates::{self, DateFormat};
use crate::ingest::RawTable;
use crate::intern::{NONE, intern};

/// What to do with cancellations (invoices starting with `C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Returns {
    /// Remove them (the reference convention).
    #[default]
    Drop,
    /// Keep them as returns: they reduce the customer's monetary value.
    Net,
}

/// Why a row was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    MissingCustomer,
    BadDate,
    BadNumber,
    Cancellation,
    QuantityNotPositive,
    PriceNegative,
    PriceZero,
    AmountNotPositive,
    AfterSnapshot,
    /// Net mode: customers whose returns cancel their purchases, or who only returned.
    NetValueNotPositive,
}

impl Rule {
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
            Rule::AfterSnapshot => "after snapshot",
            Rule::NetValueNotPositive => "net value <= 0",
        }
    }
}

/// One ledger line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Removed {
    pub rule: &'static str,
    pub rows: usize,
    /// Quantity × price (or amount) carried by the removed rows, where it parsed.
    pub revenue: f64,
    /// First few data-row numbers (1-based, header excluded).
    pub examples: Vec<usize>,
}

/// The cleaning ledger: rows in = rows kept + every removed line.
#[derive(Debug, Clone, Serialize)]
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
}

impl Ledger {
    pub fn add(&mut self, rule: Rule, rows: &[usize], revenue: f64) {
        if rows.is_empty() {
            return;
        }
        self.rows_kept -= rows.len();
        self.revenue_kept -= revenue;
        self.removed.push(Removed {
            rule: rule.label(),
            rows: rows.len(),
            revenue,
            examples: rows.iter().take(EXAMPLES).map(|r| r + 1).collect(),
        });
    }
}

const EXAMPLES: usize = 5;

/// Cleaning settings.
#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    pub returns: Returns,
    /// Remove lines with a zero price (free items). Kept by default, as in the reference.
    pub drop_zero_price: bool,
    pub date_format: Option<DateFormat>,
    /// Snapshot in milliseconds; `None` = last date in the data + 1 day.
    pub snapshot: Option<i64>,
}

/// Kept transaction lines, column-wise, with customers and invoices interned.
#[derive(Debug, Clone, Default)]
pub struct Transactions {
    /// Distinct customer ids, normalised (`17850.0` → `17850`).
    pub customer_ids: Vec<String>,
    pub customer: Vec<u32>,
    pub invoice: Vec<u32>,
    pub millis: Vec<i64>,
    /// Line value: quantity × price or amount; negative for netted returns.
    pub value: Vec<f64>,
    pub is_return: Vec<bool>,
    /// Data-row number of each kept line (0-based), for ledger examples downstream.
    pub row: Vec<usize>,
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
    #[error(
        "{path}: every row was removed by cleaning ({summary}); check the column mapping (--columns) and the file"
    )]
    NothingLeft { path: String, summary: String },
    #[error("{path}: no row has a readable date in column `{column}`; check --date-format")]
    NoDates { path: String, column: String },
}

/// Result of cleaning.
#[derive(Debug, Clone)]
pub struct Cleaned {
    pub transactions: Transactions,
    pub ledger: Ledger,
    pub snapshot: i64,
    pub date_ambiguous: bool,
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

fn as_text(s: &Series, path: &str, column: &str) -> Result<StringChunked, CleanError> {
    let cast = s.cast(&DataType::String).map_err(|e| CleanError::Type {
        path: path.into(),
        column: column.into(),
        what: "text",
        detail: e.to_string(),
    })?;
    Ok(cast.str().expect("string").clone())
}

/// Each customer's first non-empty email, for `ids` (normalised customer ids).
pub fn emails_by_customer(
    raw: &RawTable,
    ids: &[String],
) -> Result<Option<Vec<String>>, CleanError> {
    let Some(email) = &raw.email else {
        return Ok(None);
    };
    let path = raw.source.path.as_str();
    let col = |role: &str| raw.source.columns.get(role).cloned().unwrap_or_default();
    let customers = as_text(&raw.customer, path, &col("customer"))?;
    let emails = as_text(email, path, &col("email"))?;
    let mut first: rustc_hash::FxHashMap<&str, &str> = Default::default();
    for (c, e) in customers.iter().zip(emails.iter()) {
        if let (Some(c), Some(e)) = (c.and_then(normalize_customer), e.map(str::trim))
            && !e.is_empty()
        {
            first.entry(c).or_insert(e);
        }
    }
    Ok(Some(
        ids.iter()
            .map(|id| first.get(id.as_str()).copied().unwrap_or("").to_string())
            .collect(),
    ))
}

/// One numeric cell after parsing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Missing,
    /// Present in the file but not a number.
    Bad,
    Value(f64),
}

impl Num {
    fn value(self) -> Option<f64> {
        match self {
            Num::Value(v) => Some(v),
            _ => None,
        }
    }
}

fn as_numbers(s: &Series, path: &str, column: &str) -> Result<Vec<Num>, CleanError> {
    if s.dtype() == &DataType::String {
        let text = s.str().expect("string");
        return Ok(text
            .iter()
            .map(|t| match t.map(str::trim).filter(|t| !t.is_empty()) {
                None => Num::Missing,
                Some(t) => parse_number(t).map_or(Num::Bad, Num::Value),
            })
            .collect());
    }
    let nums = s.cast(&DataType::Float64).map_err(|e| CleanError::Type {
        path: path.into(),
        column: column.into(),
        what: "numbers",
        detail: e.to_string(),
    })?;
    Ok(nums
        .f64()
        .expect("f64")
        .iter()
        .map(|n| match n {
            None => Num::Missing,
            Some(v) if v.is_finite() => Num::Value(v),
            Some(_) => Num::Bad,
        })
        .collect())
}

/// Types, classifies and interns every row of `raw`.
pub fn clean(raw: &RawTable, opts: &CleanOptions) -> Result<Cleaned, CleanError> {
    let path = raw.source.path.as_str();
    let col_name = |role: &str| raw.source.columns.get(role).cloned().unwrap_or_default();
    let n = raw.rows;

    let customers = as_text(&raw.customer, path, &col_name("customer"))?;
    let invoices = match &raw.invoice {
        Some(s) => Some(as_text(s, path, &col_name("invoice"))?),
        None => None,
    };
    let started = std::time::Instant::now();
    let numbers = |s: &Option<Series>, role: &str| -> Result<Option<Vec<Num>>, CleanError> {
        s.as_ref()
            .map(|s| as_numbers(s, path, &col_name(role)))
            .transpose()
    };
    // The columns are independent: type them on all cores at once.
    let ((parsed, (customer_of_row, customer_ids)), ((quantity, (price, amount)), invoice_of_row)) =
        rayon::join(
            || {
                rayon::join(
                    || dates::parse_column(&raw.date, &col_name("date"), opts.date_format.as_ref()),
                    || intern(customers.iter().map(|c| c.and_then(normalize_customer))),
                )
            },
            || {
                rayon::join(
                    || {
                        rayon::join(
                            || numbers(&raw.quantity, "quantity"),
                            || {
                                rayon::join(
                                    || numbers(&raw.price, "price"),
                                    || numbers(&raw.amount, "amount"),
                                )
                            },
                        )
                    },
                    || {
                        invoices
                            .as_ref()
                            .map(|inv| intern(inv.iter().map(|v| v.map(str::trim))))
                    },
                )
            },
        );
    let parsed = parsed.map_err(|source| CleanError::Date {
        path: path.into(),
        source,
    })?;
    let (quantity, price, amount) = (quantity?, price?, amount?);
    // Cancellation flag per distinct invoice.
    let invoice_cancelled: Vec<bool> = invoice_of_row
        .as_ref()
        .map(|(_, ids)| ids.iter().map(|v| v.starts_with(['C', 'c'])).collect())
        .unwrap_or_default();
    tracing::debug!(elapsed = ?started.elapsed(), "columns typed");

    let mut removed: FxHashMap<Rule, (Vec<usize>, f64)> = FxHashMap::default();
    let mut tx = Transactions {
        customer: Vec::with_capacity(n),
        invoice: Vec::with_capacity(n),
        millis: Vec::with_capacity(n),
        value: Vec::with_capacity(n),
        is_return: Vec::with_capacity(n),
        row: Vec::with_capacity(n),
        customer_ids: Vec::new(),
    };
    let mut revenue_in = 0.0;
    let mut max_date: Option<i64> = None;
    let mut netted = 0usize;
    let cell = |c: &Option<Vec<Num>>, i: usize| c.as_ref().map_or(Num::Missing, |v| v[i]);
    for i in 0..n {
        let cust = customer_of_row[i];
        let inv = invoice_of_row.as_ref().map_or(NONE, |(ids, _)| ids[i]);
        let date = parsed.millis[i];
        if let Some(d) = date {
            max_date = Some(max_date.map_or(d, |m: i64| m.max(d)));
        }
        let (q, p, a) = (cell(&quantity, i), cell(&price, i), cell(&amount, i));
        let bad_number = [q, p, a].contains(&Num::Bad);
        let (q, p, a) = (q.value(), p.value(), a.value());
        let value = if amount.is_some() {
            a
        } else {
            q.zip(p).map(|(q, p)| q * p)
        };
        let revenue = value.unwrap_or(0.0);
        revenue_in += revenue;
        let is_cancel = inv != NONE && invoice_cancelled[inv as usize];
        let rule = if cust == NONE {
            Some(Rule::MissingCustomer)
        } else if date.is_none() {
            Some(Rule::BadDate)
        } else if bad_number || value.is_none() {
            Some(Rule::BadNumber)
        } else if is_cancel && opts.returns == Returns::Drop {
            Some(Rule::Cancellation)
        } else if is_cancel {
            None
        } else if amount.is_some() {
            (revenue <= 0.0).then_some(Rule::AmountNotPositive)
        } else if q.is_some_and(|q| q <= 0.0) {
            Some(Rule::QuantityNotPositive)
        } else if p.is_some_and(|p| p < 0.0) {
            Some(Rule::PriceNegative)
        } else if opts.drop_zero_price && p == Some(0.0) {
            Some(Rule::PriceZero)
        } else {
            None
        };
        if let Some(rule) = rule {
            let e = removed.entry(rule).or_default();
            e.0.push(i);
            e.1 += revenue;
            continue;
        }
        let c = cust;
        let invoice_id = if inv == NONE {
            u32::MAX - i as u32
        } else {
            inv
        };
        tx.customer.push(c);
        tx.invoice.push(invoice_id);
        tx.millis.push(date.expect("checked"));
        if is_cancel {
            netted += 1;
            tx.value.push(-revenue.abs());
            tx.is_return.push(true);
        } else {
            tx.value.push(revenue);
            tx.is_return.push(false);
        }
        tx.row.push(i);
    }
    let Some(max_date) = max_date else {
        return Err(CleanError::NoDates {
            path: path.into(),
            column: col_name("date"),
        });
    };
    let snapshot = opts.snapshot.unwrap_or(max_date + 86_400_000);

    let kept_revenue: f64 = tx.value.iter().sum();
    let mut ledger = Ledger {
        rows_in: n,
        rows_kept: n,
        customers: 0,
        revenue_in,
        revenue_kept: revenue_in,
        removed: Vec::new(),
        returns_netted: (opts.returns == Returns::Net).then_some(netted),
        date_format: parsed.format.describe(),
    };
    let mut rules: Vec<_> = removed.into_iter().collect();
    rules.sort_by_key(|(r, _)| *r);
    for (rule, (rows, revenue)) in rules {
        ledger.add(rule, &rows, revenue);
    }
    // Kept value as used downstream (netted returns count with a negative sign).
    ledger.revenue_kept = kept_revenue;

    tx.customer_ids = customer_ids.into_iter().map(str::to_string).collect();
    tracing::debug!(elapsed = ?started.elapsed(), "rows classified");
    // Rows after an explicit snapshot are not part of this period.
    if tx.millis.iter().any(|&m| m > snapshot) {
        let mut late = Vec::new();
        let mut late_revenue = 0.0;
        let keep: Vec<bool> = tx.millis.iter().map(|&m| m <= snapshot).collect();
        for (k, &ok) in keep.iter().enumerate() {
            if !ok {
                late.push(tx.row[k]);
                late_revenue += tx.value[k];
            }
        }
        tx = filter(tx, &keep);
        ledger.add(Rule::AfterSnapshot, &late, late_revenue);
    }
    if tx.customer.is_empty() {
        return Err(nothing_left(path, &ledger));
    }
    Ok(Cleaned {
        transactions: tx,
        ledger,
        snapshot,
        date_ambiguous: parsed.ambiguous,
    })
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

/// Keeps the lines where `keep` is true.
pub fn filter(tx: Transactions, keep: &[bool]) -> Transactions {
    fn pick<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
        v.iter()
            .zip(keep)
            .filter_map(|(x, &k)| k.then_some(*x))
            .collect()
    }
    Transactions {
        customer: pick(&tx.customer, keep),
        invoice: pick(&tx.invoice, keep),
        millis: pick(&tx.millis, keep),
        value: pick(&tx.value, keep),
        is_return: pick(&tx.is_return, keep),
        row: pick(&tx.row, keep),
        customer_ids: tx.customer_ids,
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
