//! RFM: per-customer Recency (whole days to the snapshot), Frequency (invoices or lines)
//! and Monetary (sum of line values), accumulated chunk by chunk in [`accumulate`].

pub mod accumulate;
pub mod histories;

use serde::{Deserialize, Serialize};

/// How Frequency is counted: distinct invoices (the usual RFM definition, the default) or
/// transaction lines (the seed-compatible definition). The variants carry no doc comments,
/// which the command line's help would list at length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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

impl std::fmt::Display for Frequency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name, in any case (as the command line reads it).
impl std::str::FromStr for Frequency {
    type Err = String;
    fn from_str(s: &str) -> Result<Frequency, String> {
        [Frequency::Invoices, Frequency::Lines]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown frequency `{s}`"))
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
