//! RFM: per-customer Recency (whole days to the snapshot), Frequency (invoices or lines)
//! and Monetary (sum of line values) from cleaned transactions.

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::clean::{Ledger, Rule, Transactions};

const MS_PER_DAY: i64 = 86_400_000;

/// How Frequency is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    /// Distinct invoices (the usual RFM definition).
    #[default]
    Invoices,
    /// Transaction lines (the seed-compatible definition).
    Lines,
}

/// One row per customer, sorted by customer id (numerically where ids are numbers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RfmTable {
    pub customer_ids: Vec<String>,
    pub recency: Vec<f64>,
    pub frequency: Vec<f64>,
    pub monetary: Vec<f64>,
}

impl RfmTable {
    pub fn len(&self) -> usize {
        self.customer_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customer_ids.is_empty()
    }
}

/// Orders ids numerically when both are whole numbers, else as text.
pub fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// Computes RFM. Customers left with no purchase, or whose netted returns bring their value
/// to ≤ 0 (possible only when returns are netted), are dropped and their rows entered in the
/// ledger.
pub fn compute(
    tx: &Transactions,
    snapshot: i64,
    frequency: Frequency,
    ledger: &mut Ledger,
) -> RfmTable {
    let n = tx.customer_ids.len();
    let mut last = vec![i64::MIN; n];
    let mut lines = vec![0u64; n];
    let mut monetary = vec![0f64; n];
    let mut returned = vec![false; n];
    for i in 0..tx.customer.len() {
        let c = tx.customer[i] as usize;
        monetary[c] += tx.value[i];
        returned[c] |= tx.is_return[i];
        if !tx.is_return[i] {
            lines[c] += 1;
            last[c] = last[c].max(tx.millis[i]);
        }
    }
    let freq: Vec<u64> = match frequency {
        Frequency::Lines => lines.clone(),
        Frequency::Invoices => {
            let mut seen: FxHashSet<(u32, u32)> = FxHashSet::default();
            let mut counts = vec![0u64; n];
            for i in 0..tx.customer.len() {
                if !tx.is_return[i] && seen.insert((tx.customer[i], tx.invoice[i])) {
                    counts[tx.customer[i] as usize] += 1;
                }
            }
            counts
        }
    };
    // Only returns, or returns that cancel the purchases. (A customer whose purchases were
    // all free items, with no returns, stays: monetary 0 is a real value.)
    let dropped: Vec<bool> = (0..n)
        .map(|c| lines[c] == 0 || monetary[c] < 0.0 || (returned[c] && monetary[c] <= 0.0))
        .collect();
    if dropped.iter().any(|&d| d) {
        let mut rows = Vec::new();
        let mut revenue = 0.0;
        for i in 0..tx.customer.len() {
            if dropped[tx.customer[i] as usize] {
                rows.push(tx.row[i]);
                revenue += tx.value[i];
            }
        }
        rows.sort_unstable();
        ledger.add(Rule::NetValueNotPositive, &rows, revenue);
    }
    let mut order: Vec<usize> = (0..n).filter(|&c| !dropped[c]).collect();
    order.sort_by(|&a, &b| id_order(&tx.customer_ids[a], &tx.customer_ids[b]));
    let table = RfmTable {
        customer_ids: order.iter().map(|&c| tx.customer_ids[c].clone()).collect(),
        recency: order
            .iter()
            .map(|&c| (snapshot - last[c]).div_euclid(MS_PER_DAY) as f64)
            .collect(),
        frequency: order.iter().map(|&c| freq[c] as f64).collect(),
        monetary: order.iter().map(|&c| monetary[c]).collect(),
    };
    ledger.customers = table.len();
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(rows: usize) -> Ledger {
        Ledger {
            rows_in: rows,
            rows_kept: rows,
            customers: 0,
            revenue_in: 0.0,
            revenue_kept: 0.0,
            removed: vec![],
            returns_netted: None,
            date_format: String::new(),
        }
    }

    #[test]
    fn recency_counts_whole_days_from_timestamps() {
        let h = 3_600_000;
        let tx = Transactions {
            customer_ids: vec!["20".into(), "3".into()],
            customer: vec![0, 0, 1, 0],
            invoice: vec![1, 1, 2, 3],
            millis: vec![0, 0, 10 * h, 30 * h],
            value: vec![5.0, 5.0, 2.0, 1.0],
            is_return: vec![false; 4],
            row: vec![0, 1, 2, 3],
        };
        let snapshot = 54 * h; // 2 d 6 h
        let t = compute(&tx, snapshot, Frequency::Invoices, &mut ledger(4));
        // Sorted numerically: "3" before "20".
        assert_eq!(t.customer_ids, vec!["3", "20"]);
        assert_eq!(t.recency, vec![1.0, 1.0]); // 44 h → 1 d; 24 h → 1 d
        assert_eq!(t.frequency, vec![1.0, 2.0]);
        assert_eq!(t.monetary, vec![2.0, 11.0]);
        let lines = compute(&tx, snapshot, Frequency::Lines, &mut ledger(4));
        assert_eq!(lines.frequency, vec![1.0, 3.0]);
    }

    #[test]
    fn netted_returns_reduce_monetary_and_can_drop_a_customer() {
        let tx = Transactions {
            customer_ids: vec!["1".into(), "2".into()],
            customer: vec![0, 0, 1, 1],
            invoice: vec![1, 2, 3, 4],
            millis: vec![0, 5, 0, 5],
            value: vec![10.0, -4.0, 3.0, -3.0],
            is_return: vec![false, true, false, true],
            row: vec![0, 1, 2, 3],
        };
        let mut l = ledger(4);
        let t = compute(&tx, 86_400_000, Frequency::Invoices, &mut l);
        assert_eq!(t.customer_ids, vec!["1"]);
        assert_eq!(t.monetary, vec![6.0]);
        assert_eq!(t.frequency, vec![1.0]);
        assert_eq!(l.removed[0].rule, "net value <= 0");
        assert_eq!(l.removed[0].rows, 2);
        assert_eq!(l.rows_kept, 2);
    }
}
