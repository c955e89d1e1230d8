//! The rules an export's own fields drive: test orders, a second currency, cancelled,
//! refunded, voided, failed and pending orders or payments, and partial refunds. An order's
//! fields may be on its first line only (Shopify): the lines after it, with the same order
//! number and those cells blank, take them from there, across chunks too (the accumulator
//! hands the last order of one chunk to the first lines of the next).

use polars::prelude::*;

use super::{CleanError, Rule, parse_number};
use crate::ingest::{Chunk, CurrencyChoice, Preset};
use crate::intern::{NONE, intern};

/// A row's order verdict in [`Orders::verdict`]: 0 = none, else 1 + the rule, or this: the
/// row continues an order whose first line was in an earlier chunk.
pub const INHERIT: u8 = u8::MAX;

/// The last order of a chunk, for the lines of it that the next chunk starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    pub invoice: u64,
    pub verdict: Option<Rule>,
    pub currency: Option<Box<str>>,
}

/// Per row of a chunk: the order's verdict, its currency (an index into `currencies`, or
/// `NONE`), and the amount refunded that the row carries. The vectors are empty when the
/// export has no such field; read them with the methods.
#[derive(Debug, Default)]
pub struct Orders {
    pub verdict: Vec<u8>,
    pub currency: Vec<u32>,
    pub currencies: Vec<Box<str>>,
    pub refund: Vec<f64>,
    pub tail: Option<Tail>,
}

impl Orders {
    /// Row `i`'s verdict (see [`INHERIT`]).
    pub fn verdict(&self, i: usize) -> u8 {
        self.verdict.get(i).copied().unwrap_or(0)
    }

    /// Row `i`'s currency, `NONE` when unknown.
    pub fn currency(&self, i: usize) -> u32 {
        self.currency.get(i).copied().unwrap_or(NONE)
    }

    /// The amount refunded that row `i` carries.
    pub fn refund(&self, i: usize) -> f64 {
        self.refund.get(i).copied().unwrap_or(0.0)
    }
}

/// What the rules need to know of the run.
#[derive(Debug, Clone, Default)]
pub struct OrderRules {
    pub preset: Option<Preset>,
    pub currency: CurrencyChoice,
}

/// The rule a status word removes its rows by; `None` keeps them. Words are compared in
/// lower case with spaces and hyphens as `_` (Shopify `partially_refunded`, WooCommerce
/// `on-hold`, Stripe `Paid`). Words not listed are kept.
pub fn status_rule(preset: Option<Preset>, status: &str) -> Option<Rule> {
    let word: String = status
        .trim()
        .trim_start_matches("wc-")
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    match word.as_str() {
        "refunded" => Some(Rule::OrderRefunded),
        "voided" | "void" => Some(Rule::PaymentVoided),
        "cancelled" | "canceled" | "trash" => Some(Rule::OrderCancelled),
        "failed" | "declined" | "expired" | "blocked" => Some(Rule::PaymentFailed),
        "pending"
        | "on_hold"
        | "checkout_draft"
        | "draft"
        | "unpaid"
        | "uncaptured"
        | "incomplete"
        | "requires_payment_method"
        | "requires_confirmation"
        | "requires_action"
        | "requires_capture" => Some(Rule::PaymentPending),
        // A Stripe payment still processing has not succeeded; a WooCommerce order
        // "processing" is paid and awaits shipping.
        "processing" if preset == Some(Preset::Stripe) => Some(Rule::PaymentPending),
        _ => None,
    }
}

/// Whether a test-marker cell marks a test order: Shopify's Bogus Gateway, or a flag.
pub fn is_test(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.contains("bogus") || matches!(v.as_str(), "true" | "yes" | "1" | "test")
}

/// A text column's cells, `None` where blank.
fn cells(
    s: &Option<Series>,
    column: &str,
    path: &str,
) -> Result<Option<StringChunked>, CleanError> {
    let Some(s) = s else { return Ok(None) };
    let text = s.cast(&DataType::String).map_err(|e| CleanError::Type {
        path: path.to_string(),
        column: column.to_string(),
        what: "text",
        detail: e.to_string(),
    })?;
    Ok(Some(text.str().expect("string").clone()))
}

fn blank(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// The order fields of one chunk, read and carried down each order's lines.
pub fn read(
    chunk: &Chunk,
    invoice: &[u64],
    rules: &OrderRules,
    columns: &dyn Fn(&str) -> String,
    path: &str,
) -> Result<Orders, CleanError> {
    let n = chunk.rows;
    let col = |s: &Option<Series>, role: &str| cells(s, &columns(role), path);
    let status = col(&chunk.status, "status")?;
    let cancelled = col(&chunk.cancelled, "cancelled")?;
    let currency = col(&chunk.currency, "currency")?;
    let test = col(&chunk.test, "test")?;
    let refunded = col(&chunk.refunded, "refunded")?;
    let mut out = Orders {
        refund: refunded.as_ref().map_or_else(Vec::new, |r| {
            r.iter()
                .map(|v| blank(v).and_then(parse_number).unwrap_or(0.0))
                .collect()
        }),
        ..Orders::default()
    };
    if status.is_none() && cancelled.is_none() && currency.is_none() && test.is_none() {
        // No order fields (the UCI layout): nothing per row, nothing allocated.
        return Ok(out);
    }
    let currency_ids = match &currency {
        Some(c) => codes(c, &mut out.currencies),
        None => vec![NONE; n],
    };
    let get = |c: &Option<StringChunked>, i: usize| {
        c.as_ref().and_then(|c| blank(c.get(i)).map(str::to_string))
    };
    // The open order: (invoice, status, cancelled, currency, test).
    let mut open: Option<(u64, [Option<String>; 3], u32)> = None;
    for i in 0..n {
        let own = [get(&status, i), get(&cancelled, i), get(&test, i)];
        let opens = match &status {
            Some(_) => own[0].is_some(),
            None => own.iter().any(Option::is_some) || currency_ids[i] != NONE,
        };
        let same = invoice[i] != 0 && open.as_ref().is_some_and(|(inv, ..)| *inv == invoice[i]);
        if opens || !same {
            if !opens && open.is_none() && invoice[i] != 0 && (i == 0 || invoice[i] == invoice[0]) {
                out.verdict.push(INHERIT);
                out.currency.push(NONE);
                continue;
            }
            open = Some((invoice[i], own, currency_ids[i]));
        } else if let Some((_, fields, cur)) = open.as_mut() {
            for (field, mine) in fields.iter_mut().zip(own) {
                if mine.is_some() {
                    *field = mine;
                }
            }
            if currency_ids[i] != NONE {
                *cur = currency_ids[i];
            }
        }
        let (_, fields, cur) = open.as_ref().expect("an open order");
        out.currency.push(*cur);
        let code = (*cur != NONE).then(|| &*out.currencies[*cur as usize]);
        out.verdict
            .push(verdict(fields, code, rules).map_or(0, |r| 1 + r as u8));
    }
    out.tail = open.map(|(invoice, fields, cur)| {
        let currency = (cur != NONE).then(|| out.currencies[cur as usize].clone());
        Tail {
            invoice,
            verdict: verdict(&fields, currency.as_deref(), rules),
            currency,
        }
    });
    Ok(out)
}

/// Each row's currency as an index into `codes` (upper case: Stripe writes `usd`).
fn codes(column: &StringChunked, codes: &mut Vec<Box<str>>) -> Vec<u32> {
    let (ids, distinct) = intern(column.iter().map(blank));
    let mut index: rustc_hash::FxHashMap<Box<str>, u32> = rustc_hash::FxHashMap::default();
    let remap: Vec<u32> = distinct
        .iter()
        .map(|v| {
            let code: Box<str> = v.to_ascii_uppercase().into();
            *index.entry(code.clone()).or_insert_with(|| {
                codes.push(code);
                (codes.len() - 1) as u32
            })
        })
        .collect();
    ids.into_iter()
        .map(|id| if id == NONE { NONE } else { remap[id as usize] })
        .collect()
}

/// The rule an order's fields remove it by, in the ledger's order.
fn verdict(
    fields: &[Option<String>; 3],
    currency: Option<&str>,
    rules: &OrderRules,
) -> Option<Rule> {
    let [status, cancelled, test] = fields;
    if test.as_deref().is_some_and(is_test) {
        return Some(Rule::TestOrder);
    }
    if let (CurrencyChoice::Code(want), Some(code)) = (&rules.currency, currency)
        && want != code
    {
        return Some(Rule::OtherCurrency);
    }
    if cancelled.is_some() {
        return Some(Rule::OrderCancelled);
    }
    status.as_deref().and_then(|s| status_rule(rules.preset, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_of_each_platform() {
        let shop = Some(Preset::Shopify);
        assert_eq!(status_rule(shop, "paid"), None);
        assert_eq!(status_rule(shop, "partially_refunded"), None);
        assert_eq!(status_rule(shop, "refunded"), Some(Rule::OrderRefunded));
        assert_eq!(status_rule(shop, "voided"), Some(Rule::PaymentVoided));
        assert_eq!(status_rule(shop, "pending"), Some(Rule::PaymentPending));
        let woo = Some(Preset::Woocommerce);
        assert_eq!(status_rule(woo, "processing"), None);
        assert_eq!(status_rule(woo, "wc-on-hold"), Some(Rule::PaymentPending));
        assert_eq!(status_rule(woo, "cancelled"), Some(Rule::OrderCancelled));
        let stripe = Some(Preset::Stripe);
        assert_eq!(status_rule(stripe, "Paid"), None);
        assert_eq!(status_rule(stripe, "Failed"), Some(Rule::PaymentFailed));
        assert_eq!(
            status_rule(stripe, "processing"),
            Some(Rule::PaymentPending)
        );
        assert!(
            is_test("bogus")
                && is_test("(for testing) Bogus Gateway")
                && !is_test("shopify_payments")
        );
    }

    #[test]
    fn an_orders_first_line_speaks_for_its_other_lines() {
        let s = |v: &[Option<&str>]| Some(Series::new("c".into(), v));
        let chunk = Chunk {
            rows: 5,
            status: s(&[None, Some("refunded"), None, Some("paid"), None]),
            currency: s(&[None, Some("usd"), None, Some("EUR"), Some("EUR")]),
            ..Chunk::default()
        };
        // Row 0 continues the previous chunk's order 7; order 8 is refunded (two lines).
        let invoice = [7, 8, 8, 9, 9];
        let rules = OrderRules {
            preset: Some(Preset::Shopify),
            currency: CurrencyChoice::Code("USD".into()),
        };
        let o = read(&chunk, &invoice, &rules, &|r| r.to_string(), "f").unwrap();
        let refunded = 1 + Rule::OrderRefunded as u8;
        let other = 1 + Rule::OtherCurrency as u8;
        assert_eq!(o.verdict, vec![INHERIT, refunded, refunded, other, other]);
        let tail = o.tail.unwrap();
        assert_eq!(
            (tail.invoice, tail.verdict, tail.currency.as_deref()),
            (9, Some(Rule::OtherCurrency), Some("EUR"))
        );
    }
}
