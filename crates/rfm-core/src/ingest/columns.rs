//! Column mapping: which header in the file plays which role (customer, invoice, date, …).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The roles a column can play in a transactions file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Customer,
    Invoice,
    Date,
    Quantity,
    Price,
    Amount,
    /// Optional: carried into the exports for email tools.
    Email,
    /// Optional: the order's or payment's status (paid, refunded, failed, …).
    Status,
    /// Optional: when the order was cancelled; any value marks it cancelled.
    Cancelled,
    /// Optional: the amount refunded on the order or payment.
    Refunded,
    /// Optional: the currency code of the row's money.
    Currency,
    /// Optional: what marks a test order (a test payment gateway, `true`).
    Test,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Customer,
        Role::Invoice,
        Role::Date,
        Role::Quantity,
        Role::Price,
        Role::Amount,
        Role::Email,
        Role::Status,
        Role::Cancelled,
        Role::Refunded,
        Role::Currency,
        Role::Test,
    ];

    /// The roles an order or payment has once, whatever its lines: a Shopify export writes
    /// them on the order's first line only, and the lines after it take them from there.
    pub const ORDER: [Role; 4] = [Role::Status, Role::Cancelled, Role::Currency, Role::Test];

    pub fn key(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Invoice => "invoice",
            Role::Date => "date",
            Role::Quantity => "quantity",
            Role::Price => "price",
            Role::Amount => "amount",
            Role::Email => "email",
            Role::Status => "status",
            Role::Cancelled => "cancelled",
            Role::Refunded => "refunded",
            Role::Currency => "currency",
            Role::Test => "test",
        }
    }

    /// The role in words, for the dashboard's form.
    pub fn label(self) -> &'static str {
        match self {
            Role::Customer => "Customer id",
            Role::Invoice => "Invoice / order number",
            Role::Date => "Date",
            Role::Quantity => "Quantity",
            Role::Price => "Unit price",
            Role::Amount => "Amount (instead of quantity × price)",
            Role::Email => "Email (optional)",
            Role::Status => "Order / payment status (optional)",
            Role::Cancelled => "Cancelled at (optional)",
            Role::Refunded => "Amount refunded (optional)",
            Role::Currency => "Currency (optional)",
            Role::Test => "Test-order marker (optional)",
        }
    }

    fn from_key(key: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.key() == key)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Header names for each role. An empty name means "not in this file".
/// Defaults follow the UCI "Online Retail" layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColumnMap {
    pub customer: String,
    pub invoice: String,
    pub date: String,
    pub quantity: String,
    pub price: String,
    pub amount: String,
    /// Customer email, for the exports; empty = none.
    pub email: String,
    /// The export's own fields that cleaning rules read (see [`Role`]); empty = none.
    pub status: String,
    pub cancelled: String,
    pub refunded: String,
    pub currency: String,
    pub test: String,
}

impl Default for ColumnMap {
    fn default() -> Self {
        ColumnMap {
            customer: "CustomerID".into(),
            invoice: "InvoiceNo".into(),
            date: "InvoiceDate".into(),
            quantity: "Quantity".into(),
            price: "UnitPrice".into(),
            amount: String::new(),
            email: String::new(),
            status: String::new(),
            cancelled: String::new(),
            refunded: String::new(),
            currency: String::new(),
            test: String::new(),
        }
    }
}

impl ColumnMap {
    pub fn get(&self, role: Role) -> &str {
        match role {
            Role::Customer => &self.customer,
            Role::Invoice => &self.invoice,
            Role::Date => &self.date,
            Role::Quantity => &self.quantity,
            Role::Price => &self.price,
            Role::Amount => &self.amount,
            Role::Email => &self.email,
            Role::Status => &self.status,
            Role::Cancelled => &self.cancelled,
            Role::Refunded => &self.refunded,
            Role::Currency => &self.currency,
            Role::Test => &self.test,
        }
    }

    pub(crate) fn slot(&mut self, role: Role) -> &mut String {
        match role {
            Role::Customer => &mut self.customer,
            Role::Invoice => &mut self.invoice,
            Role::Date => &mut self.date,
            Role::Quantity => &mut self.quantity,
            Role::Price => &mut self.price,
            Role::Amount => &mut self.amount,
            Role::Email => &mut self.email,
            Role::Status => &mut self.status,
            Role::Cancelled => &mut self.cancelled,
            Role::Refunded => &mut self.refunded,
            Role::Currency => &mut self.currency,
            Role::Test => &mut self.test,
        }
    }

    /// Applies a `--columns` override such as `customer=cust_id,amount=Total,invoice=`.
    /// An empty value (or `none`) marks the role as absent from the file.
    pub fn apply_overrides(&mut self, spec: &str) -> Result<(), String> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("entry `{part}` is not ROLE=COLUMN (e.g. customer=CustomerID)")
            })?;
            let role =
                Role::from_key(key.trim().to_ascii_lowercase().as_str()).ok_or_else(|| {
                    format!(
                        "unknown role `{}`; roles are {}",
                        key.trim(),
                        Role::ALL.map(Role::key).join(", ")
                    )
                })?;
            let value = value.trim();
            *self.slot(role) = if value.eq_ignore_ascii_case("none") {
                String::new()
            } else {
                value.to_string()
            };
        }
        // An amount column replaces quantity × price unless those were named explicitly too.
        if !self.amount.is_empty() && spec.contains("amount") {
            let names_qty = spec.split(',').any(|p| p.trim().starts_with("quantity"));
            let names_price = spec.split(',').any(|p| p.trim().starts_with("price"));
            if !names_qty {
                self.quantity.clear();
            }
            if !names_price {
                self.price.clear();
            }
        }
        Ok(())
    }

    pub fn uses_amount(&self) -> bool {
        !self.amount.is_empty()
    }

    /// The map a run's manifest (role → header found) records; roles not found are empty.
    pub fn from_manifest(found: &BTreeMap<String, String>) -> ColumnMap {
        let mut map = ColumnMap::default();
        for role in Role::ALL {
            *map.slot(role) = found.get(role.key()).cloned().unwrap_or_default();
        }
        map
    }

    /// The roles mapped away from the UCI defaults (by `--columns` or the settings), which
    /// a preset's own names must not override.
    pub fn changes(&self) -> Vec<(Role, String)> {
        let uci = ColumnMap::default();
        Role::ALL
            .into_iter()
            .filter(|r| self.get(*r) != uci.get(*r))
            .map(|r| (r, self.get(r).to_string()))
            .collect()
    }
}

/// Normalises a header for matching: case-, space-, `_`- and `-`-insensitive.
pub fn normalize_header(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::resolve_columns as resolve;

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matches_case_and_space_insensitively() {
        let h = headers(&[
            "invoice no",
            "CUSTOMER_ID",
            "Invoice Date",
            "quantity",
            "Unit Price",
        ]);
        let r = resolve(&ColumnMap::default(), &h, "f.csv").unwrap();
        assert_eq!(r.index(Role::Customer), Some(1));
        assert_eq!(r.index(Role::Invoice), Some(0));
        assert_eq!(r.index(Role::Price), Some(4));
    }

    #[test]
    fn missing_required_column_lists_what_was_found() {
        let h = headers(&["InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice"]);
        let err = resolve(&ColumnMap::default(), &h, "f.csv")
            .unwrap_err()
            .to_string();
        assert!(err.contains("customer (`CustomerID`)"), "{err}");
        assert!(err.contains("`InvoiceDate`"), "{err}");
        let missing = resolve(&ColumnMap::default(), &h, "f.csv").unwrap_err();
        assert_eq!(
            crate::remedy::Remedied::remedy(&missing),
            Some(crate::remedy::Remedy::MapColumns)
        );
    }

    #[test]
    fn amount_override_drops_quantity_and_price() {
        let mut m = ColumnMap::default();
        m.apply_overrides("customer=client, amount=Total, invoice=none")
            .unwrap();
        assert_eq!(m.customer, "client");
        assert!(m.invoice.is_empty() && m.quantity.is_empty() && m.price.is_empty());
        let h = headers(&["client", "InvoiceDate", "total"]);
        let r = resolve(&m, &h, "f.csv").unwrap();
        assert_eq!(r.index(Role::Amount), Some(2));
        assert!(
            m.apply_overrides("colour=red")
                .unwrap_err()
                .contains("unknown role")
        );
        assert!(
            m.apply_overrides("customer")
                .unwrap_err()
                .contains("ROLE=COLUMN")
        );
    }
}
