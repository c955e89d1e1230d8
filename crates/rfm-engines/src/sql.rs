//! The cleaning rules and the RFM aggregation as SQL, written once for every engine; a
//! [`Dialect`] supplies the few spellings that differ (quoting, casts, epoch milliseconds,
//! regular expressions).

use rfm_core::clean::{Returns, Rule};
use rfm_core::rfm::Frequency;
use rfm_core::scan::ScanOptions;

/// How an engine spells what standard SQL leaves open.
pub trait Dialect {
    /// A quoted identifier.
    fn ident(&self, name: &str) -> String;
    /// `expr` as text.
    fn text(&self, expr: &str) -> String;
    /// `expr` as a double.
    fn float(&self, expr: &str) -> String;
    /// `expr` as a 64-bit integer.
    fn int8(&self, expr: &str) -> String;
    /// Whether `expr` matches the regular expression `re` (no backslashes in `re`).
    fn matches(&self, expr: &str, re: &str) -> String;
}

/// The source's columns as SQL expressions, already typed by the engine.
pub struct Columns {
    /// The customer id: as text, or the column itself when `customer_canonical`.
    pub customer: String,
    /// Whether the column (a number) has no text rules to apply: its text form is the id as
    /// the local reader spells it. The rows are then grouped by the number itself (cheaper
    /// than text), which is spelled as text only in the answer.
    pub customer_canonical: bool,
    /// The invoice as text, or NULL.
    pub invoice: Option<String>,
    /// Milliseconds since the epoch (UTC), NULL where there is no date.
    pub ms: String,
    pub quantity: Option<String>,
    pub price: Option<String>,
    /// The line's amount, when the data has one (else quantity × price).
    pub amount: Option<String>,
}

/// The statements of one run: the classified rows are `c, inv, ms, value, cancel, rule`
/// (rule 0 = kept, else 1 + [`Rule`]).
pub struct Sql {
    rows: String,
    /// The customer id as text in the answer.
    key: String,
    /// `count(*)`, purchase lines and invoices, as 64-bit integers.
    count: String,
    lines: String,
    invoices: String,
    /// The last date the snapshot may come from: every date, or those up to the time of
    /// the run (the file pass's rule).
    last: String,
}

/// The rule number of a removed row in the `rule` column.
pub fn rule_number(rule: Rule) -> u8 {
    1 + rule as u8
}

impl Sql {
    pub fn new<D: Dialect>(d: &D, cols: &Columns, from: &str, opts: &ScanOptions) -> Sql {
        let null_float = d.float("NULL");
        let q = cols.quantity.clone().unwrap_or_else(|| null_float.clone());
        let p = cols.price.clone().unwrap_or_else(|| null_float.clone());
        let value = match &cols.amount {
            Some(a) => a.clone(),
            None => format!("({q} * {p})"),
        };
        let inv = match &cols.invoice {
            Some(i) => format!("NULLIF(btrim({i}), '')"),
            None => d.text("NULL"),
        };
        let (k, c) = if cols.customer_canonical {
            (cols.customer.clone(), "k".to_string())
        } else {
            (
                format!("btrim(btrim(btrim({}), '\"'))", cols.customer),
                format!(
                    "CASE WHEN k = '' OR lower(k) IN ('nan', 'null') THEN NULL \
                     WHEN {} THEN split_part(k, '.', 1) ELSE k END",
                    d.matches("k", "^[0-9]+[.]0*$")
                ),
            )
        };
        let rows = format!(
            "WITH src AS (SELECT {k} AS k, {inv} AS inv, {ms} AS ms, \
                                 {q} AS q, {p} AS p, {value} AS value FROM {from}), \
             cls AS (SELECT {c} AS c, inv, ms, q, p, value, \
                            COALESCE(inv LIKE 'C%' OR inv LIKE 'c%', false) AS cancel FROM src), \
             ruled0 AS (SELECT *, CASE WHEN c IS NULL THEN {mc} WHEN ms IS NULL THEN {bd} \
                                       WHEN value IS NULL THEN {bn}{rules} ELSE 0 END AS rule0 FROM cls), \
             ruled AS (SELECT *, {late} AS rule FROM ruled0)",
            ms = cols.ms,
            late = match (opts.clean.snapshot, opts.clean.latest) {
                // Kept rows after an explicit snapshot (or the run) are the last rule.
                (Some(s), _) => format!(
                    "CASE WHEN rule0 = 0 AND ms > {s} THEN {} ELSE rule0 END",
                    rule_number(Rule::AfterSnapshot)
                ),
                (None, Some(l)) => format!(
                    "CASE WHEN rule0 = 0 AND ms > {l} THEN {} ELSE rule0 END",
                    rule_number(Rule::AfterRun)
                ),
                (None, None) => "rule0".into(),
            },
            mc = rule_number(Rule::MissingCustomer),
            bd = rule_number(Rule::BadDate),
            bn = rule_number(Rule::BadNumber),
            rules = rules(cols.amount.is_some(), opts),
        );
        Sql {
            rows,
            last: match (opts.clean.snapshot, opts.clean.latest) {
                (None, Some(l)) => format!("max(CASE WHEN ms <= {l} THEN ms END)"),
                _ => "max(ms)".into(),
            },
            key: if cols.customer_canonical {
                d.text("c")
            } else {
                "c".into()
            },
            count: d.int8("count(*)"),
            lines: d.int8("count(*) FILTER (WHERE NOT cancel)"),
            // Distinct invoices cost a sort per customer: only for the frequency that uses
            // them (the local pass does not count them either).
            invoices: match opts.frequency {
                Frequency::Invoices => d.int8(
                    "count(DISTINCT inv) FILTER (WHERE NOT cancel AND inv IS NOT NULL) \
                     + count(*) FILTER (WHERE NOT cancel AND inv IS NULL)",
                ),
                Frequency::Lines => d.int8("0"),
            },
        }
    }

    /// Each rule's rows and revenue, the signed value (what kept rows and late rows count
    /// for) and the last date: `rule, count, revenue, signed value, max ms`.
    pub fn ledger(&self) -> String {
        format!(
            "{} SELECT rule, {}, COALESCE(sum(value), 0), \
             COALESCE(sum(CASE WHEN cancel THEN -abs(value) ELSE value END), 0), {} \
             FROM ruled GROUP BY rule",
            self.rows, self.count, self.last
        )
    }

    /// One row per customer: id, last purchase, purchase lines, invoices, kept lines,
    /// value, whether any line was a return.
    pub fn customers(&self) -> String {
        format!(
            "{} SELECT {}, max(ms) FILTER (WHERE NOT cancel), {}, {}, {}, \
               sum(CASE WHEN cancel THEN -abs(value) ELSE value END), bool_or(cancel) \
             FROM ruled WHERE rule = 0 GROUP BY c",
            self.rows, self.key, self.lines, self.invoices, self.count
        )
    }
}

/// The value rules after the missing customer, date and number, in the local pass's order.
fn rules(has_amount: bool, opts: &ScanOptions) -> String {
    let mut rules = String::new();
    let mut when = |cond: &str, rule: u8| rules += &format!(" WHEN {cond} THEN {rule}");
    if opts.clean.returns == Returns::Drop {
        when("cancel", rule_number(Rule::Cancellation));
    }
    when("cancel", 0);
    if has_amount {
        when("value <= 0", rule_number(Rule::AmountNotPositive));
    } else {
        when("q <= 0", rule_number(Rule::QuantityNotPositive));
        when("p < 0", rule_number(Rule::PriceNegative));
        if opts.clean.drop_zero_price {
            when("p = 0", rule_number(Rule::PriceZero));
        }
    }
    rules
}
