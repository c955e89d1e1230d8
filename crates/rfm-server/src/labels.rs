//! Words for people: what the dashboard shows for each choice.

use rfm_core::rfm::Frequency;

/// A choice the dashboard offers, with its label.
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
