//! One chunk of rows, typed and sorted by the cleaning rules: what each row is (kept, or
//! the rule that removed it), the value it carries, and for kept rows what the per-customer
//! accumulator needs. Worker threads run this on chunks in parallel; nothing here depends on
//! other chunks, so the accumulator can take the chunks in file order.

use polars::prelude::*;
use rustc_hash::FxHashMap;

use super::orders::{self, INHERIT, OrderRules, Orders};
use super::{CleanError, CleanOptions, Returns, Rule, normalize_customer, parse_number};
use crate::dates::{self, DateFormat};
use crate::ingest::Chunk;
use crate::intern::{NONE, intern};

/// A customer id as the accumulator keys it: whole numbers (from a numeric column, or text
/// in canonical decimal form) as numbers, anything else as its normalised text. `17850`,
/// `"17850"` and `17850.0` are one customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CustomerKey {
    Num(u64),
    Text(Box<str>),
}

impl CustomerKey {
    pub fn of_text(s: &str) -> CustomerKey {
        let canonical = !s.is_empty()
            && s.len() <= 19
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        match s.parse::<u64>() {
            Ok(v) if canonical => CustomerKey::Num(v),
            _ => CustomerKey::Text(s.into()),
        }
    }

    /// The id as written in outputs.
    pub fn display(&self) -> String {
        match self {
            CustomerKey::Num(v) => v.to_string(),
            CustomerKey::Text(s) => s.to_string(),
        }
    }

    /// The whole number the id reads as, for ordering ids numerically.
    pub fn number(&self) -> Option<u64> {
        match self {
            CustomerKey::Num(v) => Some(*v),
            CustomerKey::Text(s) => s.parse().ok(),
        }
    }
}

/// Flags of a kept line.
pub const RETURN: u8 = 1;
/// After an explicit snapshot (or, without one, after the run): counted as kept, then
/// removed by [`Rule::AfterSnapshot`] (or [`Rule::AfterRun`]).
pub const LATE: u8 = 2;
/// No invoice number: the line is an order of its own.
pub const NO_INVOICE: u8 = 4;
/// Continues an order whose first line (and fields) came in an earlier chunk.
pub const INHERITED: u8 = 8;

/// A typed chunk. Per row: `outcome` (0 kept or late, else 1 + the rule) and `revenue`;
/// then the kept lines, in row order.
#[derive(Debug, Default)]
pub struct Lines {
    pub rows: usize,
    pub outcome: Vec<u8>,
    pub revenue: Vec<f64>,
    /// Distinct customers of the chunk, indexed by `kept_customer` and `emails`.
    pub keys: Vec<CustomerKey>,
    pub kept_row: Vec<u32>,
    pub kept_customer: Vec<u32>,
    /// 64-bit hash of the invoice number (never 0).
    pub kept_invoice: Vec<u64>,
    pub kept_millis: Vec<i64>,
    /// Line value; negative for netted returns.
    pub kept_value: Vec<f64>,
    pub kept_flags: Vec<u8>,
    /// Latest readable date in the chunk, over every row.
    pub max_date: Option<i64>,
    /// Each customer's first non-empty email in the chunk, over every row.
    pub emails: Vec<(u32, String)>,
    /// Kept rows per currency (rows that continue an earlier chunk's order not included).
    pub currencies: Vec<(Box<str>, u64)>,
    /// Partial refunds netted: how many, and how much.
    pub refunds: (usize, f64),
    /// The chunk's last order, for the lines of it at the start of the next chunk.
    pub tail: Option<super::orders::Tail>,
    /// The first date with a UTC offset and the first without one.
    pub zones: dates::Zones,
}

impl Lines {
    /// Keeps row `i` of the chunk.
    fn keep(&mut self, i: usize, customer: u32, invoice: u64, millis: i64, value: f64, flags: u8) {
        self.outcome.push(0);
        self.kept_row.push(i as u32);
        self.kept_customer.push(customer);
        self.kept_invoice.push(invoice);
        self.kept_millis.push(millis);
        self.kept_value.push(value);
        self.kept_flags.push(flags);
    }
}

/// What the workers share: the rules and the columns' names and formats.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: String,
    pub options: CleanOptions,
    pub date_format: DateFormat,
    /// role → header, for messages.
    pub columns: std::collections::BTreeMap<String, String>,
    /// The export preset the columns came from.
    pub preset: Option<crate::ingest::Preset>,
}

impl Plan {
    /// Invoices starting with `C` are cancellations: the UCI convention, not a platform's
    /// (a Stripe charge is `ch_…`).
    fn cancel_prefix(&self) -> bool {
        matches!(self.preset, None | Some(crate::ingest::Preset::Uci))
    }

    /// Rows are an order's lines (an order's refund is netted on its first line, whatever
    /// that line's value), not whole orders or payments.
    fn lines(&self) -> bool {
        self.preset.is_none_or(|p| p.spec().lines)
    }

    /// A chunk's dates in milliseconds, and its first times with and without an offset.
    fn dates(&self, column: &Series) -> Result<(Vec<i64>, dates::Zones), CleanError> {
        let zone = self.options.timezone;
        dates::parse_zoned(column, &self.date_format, &self.column("date"), zone).map_err(
            |source| CleanError::Date {
                path: self.path.clone(),
                source,
            },
        )
    }

    fn order_rules(&self) -> OrderRules {
        OrderRules {
            preset: self.preset,
            currency: self.options.currency.clone(),
        }
    }

    fn column(&self, role: &str) -> String {
        self.columns.get(role).cloned().unwrap_or_default()
    }

    fn type_error(&self, role: &str, what: &'static str, e: impl ToString) -> CleanError {
        CleanError::Type {
            path: self.path.clone(),
            column: self.column(role),
            what,
            detail: e.to_string(),
        }
    }
}

/// A numeric column, flat: `values` where `state` is [`OK`] (0 elsewhere); `state` is
/// `None` when every cell is a number.
struct Numbers {
    values: Vec<f64>,
    state: Option<Vec<u8>>,
}

const OK: u8 = 0;
const MISSING: u8 = 1;
/// Present in the file but not a number.
const BAD: u8 = 2;

impl Numbers {
    fn state(&self, i: usize) -> u8 {
        self.state.as_ref().map_or(OK, |s| s[i])
    }
}

fn as_text(s: &Series, plan: &Plan, role: &str) -> Result<StringChunked, CleanError> {
    let cast = s
        .cast(&DataType::String)
        .map_err(|e| plan.type_error(role, "text", e))?;
    Ok(cast.str().expect("string").clone())
}

fn as_numbers(s: &Option<Series>, plan: &Plan, role: &str) -> Result<Option<Numbers>, CleanError> {
    let Some(s) = s else { return Ok(None) };
    if s.dtype() == &DataType::String {
        let text = s.str().expect("string");
        let mut values = Vec::with_capacity(s.len());
        let mut state = Vec::with_capacity(s.len());
        for t in text.iter() {
            let (v, st) = match t.map(str::trim).filter(|t| !t.is_empty()) {
                None => (0.0, MISSING),
                Some(t) => parse_number(t).map_or((0.0, BAD), |v| (v, OK)),
            };
            values.push(v);
            state.push(st);
        }
        return Ok(Some(Numbers {
            values,
            state: Some(state),
        }));
    }
    // Whole numbers without gaps, the common case, are converted in one pass.
    if let Ok(ints) = s.i64()
        && ints.null_count() == 0
    {
        let mut values = Vec::with_capacity(ints.len());
        for chunk in ints.downcast_iter() {
            values.extend(chunk.values().iter().map(|&v| v as f64));
        }
        return Ok(Some(Numbers {
            values,
            state: None,
        }));
    }
    let nums = s
        .cast(&DataType::Float64)
        .map_err(|e| plan.type_error(role, "numbers", e))?;
    let nums = nums.f64().expect("f64");
    let mut values = Vec::with_capacity(nums.len());
    for chunk in nums.downcast_iter() {
        values.extend_from_slice(chunk.values());
    }
    let all_finite = values.iter().all(|v| v.is_finite());
    let state = (nums.null_count() > 0 || !all_finite).then(|| {
        nums.iter()
            .map(|n| match n {
                None => MISSING,
                Some(v) if v.is_finite() => OK,
                Some(_) => BAD,
            })
            .collect()
    });
    Ok(Some(Numbers { values, state }))
}

/// Per row, an index into the chunk's distinct customers (`NONE` where missing).
fn customers(s: &Series, plan: &Plan) -> Result<(Vec<u32>, Vec<CustomerKey>), CleanError> {
    fn by_value<T: Copy + Eq + std::hash::Hash>(
        values: impl Iterator<Item = Option<T>>,
        key: impl Fn(T) -> Option<CustomerKey>,
    ) -> (Vec<u32>, Vec<CustomerKey>) {
        let mut index: FxHashMap<T, u32> = FxHashMap::default();
        let mut keys = Vec::new();
        let mut previous: Option<(T, u32)> = None;
        let ids = values
            .map(|v| match (v, previous) {
                (None, _) => NONE,
                (Some(v), Some((p, id))) if p == v => id,
                (Some(v), _) => {
                    let id = *index.entry(v).or_insert_with(|| match key(v) {
                        Some(k) => {
                            keys.push(k);
                            (keys.len() - 1) as u32
                        }
                        None => NONE,
                    });
                    previous = Some((v, id));
                    id
                }
            })
            .collect();
        (ids, keys)
    }
    let dtype = s.dtype();
    if dtype.is_integer() {
        let v = s
            .cast(&DataType::Int64)
            .map_err(|e| plan.type_error("customer", "text", e))?;
        let key = |v: i64| {
            Some(match u64::try_from(v) {
                Ok(u) => CustomerKey::Num(u),
                Err(_) => CustomerKey::Text(v.to_string().into()),
            })
        };
        let v = v.i64().expect("i64");
        if v.null_count() == 0 {
            let values = v
                .downcast_iter()
                .flat_map(|c| c.values().iter().map(|&x| Some(x)));
            return Ok(by_value(values, key));
        }
        return Ok(by_value(v.iter(), key));
    }
    if dtype.is_float() {
        let v = s
            .cast(&DataType::Float64)
            .map_err(|e| plan.type_error("customer", "text", e))?;
        let bits = v.f64().expect("f64").iter().map(|v| v.map(f64::to_bits));
        return Ok(by_value(bits, |b| {
            let v = f64::from_bits(b);
            if v.is_nan() {
                None
            } else if v.fract() == 0.0 && (0.0..1.8e19).contains(&v) {
                Some(CustomerKey::Num(v as u64))
            } else if v.fract() == 0.0 {
                Some(CustomerKey::Text(format!("{v:.1}").into()))
            } else {
                Some(CustomerKey::Text(v.to_string().into()))
            }
        }));
    }
    let text = as_text(s, plan, "customer")?;
    let (ids, distinct) = intern(text.iter().map(|c| c.and_then(normalize_customer)));
    Ok((
        ids,
        distinct.into_iter().map(CustomerKey::of_text).collect(),
    ))
}

/// Per row: the invoice's hash (0 where missing) and whether it is a cancellation.
fn invoices(
    s: &Option<Series>,
    plan: &Plan,
    rows: usize,
) -> Result<(Vec<u64>, Vec<bool>), CleanError> {
    let prefix = plan.cancel_prefix();
    let Some(s) = s else {
        return Ok((vec![0; rows], vec![false; rows]));
    };
    let text = as_text(s, plan, "invoice")?;
    let mut hashes = Vec::with_capacity(rows);
    let mut cancelled = Vec::with_capacity(rows);
    let mut previous: Option<(&str, u64, bool)> = None;
    for v in text.iter() {
        let Some(v) = v.map(str::trim) else {
            hashes.push(0);
            cancelled.push(false);
            continue;
        };
        let (h, c) = match previous {
            Some((p, h, c)) if p == v => (h, c),
            _ => {
                let h = xxhash_rust::xxh3::xxh3_64(v.as_bytes()).max(1);
                let c = prefix && v.starts_with(['C', 'c']);
                previous = Some((v, h, c));
                (h, c)
            }
        };
        hashes.push(h);
        cancelled.push(c);
    }
    Ok((hashes, cancelled))
}

/// Each customer's first non-empty email in the chunk.
fn emails(
    s: &Option<Series>,
    customer: &[u32],
    plan: &Plan,
) -> Result<Vec<(u32, String)>, CleanError> {
    let Some(s) = s else { return Ok(Vec::new()) };
    let text = as_text(s, plan, "email")?;
    let mut seen = rustc_hash::FxHashSet::default();
    let mut out = Vec::new();
    for (&c, e) in customer.iter().zip(text.iter()) {
        if let Some(e) = e.map(str::trim)
            && c != NONE
            && !e.is_empty()
            && seen.insert(c)
        {
            out.push((c, e.to_string()));
        }
    }
    Ok(out)
}

/// What the cleaning rules look at in one row.
struct Row {
    customer: bool,
    has_date: bool,
    /// A number did not parse, or the line's value could not be computed.
    bad_number: bool,
    cancelled: bool,
    /// The amount, when the file maps one (instead of quantity × price).
    amount: Option<f64>,
    /// Quantity and price where they parsed.
    quantity: Option<f64>,
    price: Option<f64>,
}

impl Row {
    /// The first rule that removes the row, in the ledger's order; `None` keeps it.
    #[inline]
    fn rule(&self, opts: &CleanOptions) -> Option<Rule> {
        if !self.customer {
            Some(Rule::MissingCustomer)
        } else if !self.has_date {
            Some(Rule::BadDate)
        } else if self.bad_number {
            Some(Rule::BadNumber)
        } else if self.cancelled && opts.returns == Returns::Drop {
            Some(Rule::Cancellation)
        } else if self.cancelled {
            None
        } else if let Some(a) = self.amount {
            (a <= 0.0).then_some(Rule::AmountNotPositive)
        } else if self.quantity.is_some_and(|q| q <= 0.0) {
            Some(Rule::QuantityNotPositive)
        } else if self.price.is_some_and(|p| p < 0.0) {
            Some(Rule::PriceNegative)
        } else if opts.drop_zero_price && self.price == Some(0.0) {
            Some(Rule::PriceZero)
        } else {
            None
        }
    }
}

/// A kept row's order step: removed by its order's rule, or kept with a refund netted
/// (and, for a row that continues an earlier chunk's order, flagged for the accumulator).
enum Step {
    Remove(Rule),
    Keep { refund: f64, inherit: bool },
}

/// The order step of row `i` carrying `value`.
fn order_step(orders: &Orders, i: usize, value: f64, lines: bool) -> Step {
    match orders.verdict(i) {
        INHERIT => Step::Keep {
            refund: 0.0,
            inherit: true,
        },
        0 => {
            let refund = orders.refund(i).max(0.0);
            // A payment or whole order refunded in full is a refunded one, whatever its
            // status says; an order's refund on its first line is netted however large.
            if refund > 0.0 && !lines && refund >= value - 1e-9 {
                Step::Remove(Rule::OrderRefunded)
            } else {
                Step::Keep {
                    refund,
                    inherit: false,
                }
            }
        }
        rule => Step::Remove(Rule::ALL[usize::from(rule - 1)]),
    }
}

/// Types and classifies one chunk.
pub fn classify(chunk: &Chunk, plan: &Plan) -> Result<Lines, CleanError> {
    let n = chunk.rows;
    if n == 0 {
        return Ok(Lines::default());
    }
    let (customer, keys) = customers(&chunk.customer, plan)?;
    let (invoice, cancelled) = invoices(&chunk.invoice, plan, n)?;
    let (millis, zones) = plan.dates(&chunk.date)?;
    let values = Values::of(chunk, plan)?;
    let orders = orders::read(
        chunk,
        &invoice,
        &plan.order_rules(),
        &|r| plan.column(r),
        &plan.path,
    )?;
    let mut out = Lines {
        rows: n,
        outcome: Vec::with_capacity(n),
        revenue: Vec::with_capacity(n),
        keys,
        emails: emails(&chunk.email, &customer, plan)?,
        zones,
        ..Lines::default()
    };
    let mut per_currency = vec![0u64; orders.currencies.len()];
    let lines = plan.lines();
    let late = plan.options.snapshot.or(plan.options.latest);
    for i in 0..n {
        let date = millis[i];
        if date != dates::NO_DATE && plan.options.latest.is_none_or(|l| date <= l) {
            out.max_date = Some(out.max_date.map_or(date, |m: i64| m.max(date)));
        }
        let (row, revenue) = values.row(i, customer[i] != NONE, date, cancelled[i]);
        out.revenue.push(revenue);
        if let Some(rule) = row.rule(&plan.options) {
            out.outcome.push(1 + rule as u8);
            continue;
        }
        let (refund, inherit) = match order_step(&orders, i, revenue, lines) {
            Step::Remove(rule) => {
                out.outcome.push(1 + rule as u8);
                continue;
            }
            Step::Keep { refund, inherit } => (refund, inherit),
        };
        if let Some(count) = per_currency.get_mut(orders.currency(i) as usize) {
            *count += 1;
        }
        if refund > 0.0 {
            out.refunds = (out.refunds.0 + 1, out.refunds.1 + refund);
        }
        let mut flags = if cancelled[i] { RETURN } else { 0 };
        if late.is_some_and(|s| date > s) {
            flags |= LATE;
        }
        if invoice[i] == 0 {
            flags |= NO_INVOICE;
        }
        if inherit {
            flags |= INHERITED;
        }
        let value = if cancelled[i] {
            -revenue.abs()
        } else {
            revenue - refund
        };
        out.keep(i, customer[i], invoice[i], date, value, flags);
    }
    out.currencies = orders.currencies.into_iter().zip(per_currency).collect();
    out.tail = orders.tail;
    Ok(out)
}

/// The numeric columns of a chunk.
struct Values {
    quantity: Option<Numbers>,
    price: Option<Numbers>,
    amount: Option<Numbers>,
}

impl Values {
    fn of(chunk: &Chunk, plan: &Plan) -> Result<Values, CleanError> {
        Ok(Values {
            quantity: as_numbers(&chunk.quantity, plan, "quantity")?,
            price: as_numbers(&chunk.price, plan, "price")?,
            amount: as_numbers(&chunk.amount, plan, "amount")?,
        })
    }

    /// What the row's own rules look at, and the value the row carries (0 where it has none).
    fn row(&self, i: usize, customer: bool, date: i64, cancelled: bool) -> (Row, f64) {
        // (value, state) of a cell; a column that is not mapped is missing.
        let cell = |c: &Option<Numbers>| match c {
            Some(c) => (c.values[i], c.state(i)),
            None => (0.0, MISSING),
        };
        let ((q, qs), (p, ps), (a, as_)) =
            (cell(&self.quantity), cell(&self.price), cell(&self.amount));
        let value = if self.amount.is_some() {
            (as_ == OK).then_some(a)
        } else {
            (qs == OK && ps == OK).then_some(q * p)
        };
        let revenue = value.unwrap_or(0.0);
        let row = Row {
            customer,
            has_date: date != dates::NO_DATE,
            bad_number: qs == BAD || ps == BAD || as_ == BAD || value.is_none(),
            cancelled,
            amount: self.amount.is_some().then_some(revenue),
            quantity: (qs == OK).then_some(q),
            price: (ps == OK).then_some(p),
        };
        (row, revenue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_keys_unify_numbers_and_text() {
        assert_eq!(CustomerKey::of_text("17850"), CustomerKey::Num(17850));
        assert_eq!(CustomerKey::of_text("0"), CustomerKey::Num(0));
        assert_eq!(
            CustomerKey::of_text("017850"),
            CustomerKey::Text("017850".into())
        );
        assert_eq!(
            CustomerKey::of_text("A-17"),
            CustomerKey::Text("A-17".into())
        );
        assert_eq!(CustomerKey::of_text("017850").number(), Some(17850));
        let plan = Plan {
            path: "f".into(),
            options: CleanOptions::default(),
            date_format: DateFormat::Native,
            columns: Default::default(),
            preset: None,
        };
        let floats = Series::new(
            "c".into(),
            &[
                Some(17850.0f64),
                None,
                Some(17850.0),
                Some(f64::NAN),
                Some(2.5),
            ],
        );
        let (ids, keys) = customers(&floats, &plan).unwrap();
        assert_eq!(ids, vec![0, NONE, 0, NONE, 1]);
        assert_eq!(
            keys,
            vec![CustomerKey::Num(17850), CustomerKey::Text("2.5".into())]
        );
        let text = Series::new("c".into(), &[Some(" 17850.0 "), Some(""), Some("17850")]);
        let (ids, keys) = customers(&text, &plan).unwrap();
        assert_eq!(
            (ids, keys),
            (vec![0, NONE, 0], vec![CustomerKey::Num(17850)])
        );
    }
}
