//! RFM: per-customer Recency (whole days to the snapshot), Frequency (invoices or lines)
//! and Monetary (sum of line values), accumulated chunk by chunk in [`accumulate`].

pub mod accumulate;
pub mod histories;

use serde::{Deserialize, Serialize};

/// How Frequency is counted: distinct invoices (the usual RFM definition, the default) or
/// transaction lines (the seed-compatible definition). The variants carry no doc comments,
/// which clap would turn into a long `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    #[default]
    Invoices,
    Lines,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Invoices => "invoices",
            Frequency::Lines => "lines",
        }
    }
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
