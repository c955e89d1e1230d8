//! Export presets: the column names of the exports shops have (Shopify orders, WooCommerce
//! orders, Stripe payments) and of the UCI reference layout, so that such a file runs with
//! no mapping. A preset is recognised from the header, or named with `--preset`; `--columns`
//! still overrides any single role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::IngestError;
use super::columns::{ColumnMap, Role, normalize_header};

/// A known export layout. (No doc comments on the variants: the command line's help would
/// list them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Uci,
    Shopify,
    Woocommerce,
    Stripe,
}

/// What a preset reads and how its rows are read.
pub struct Spec {
    pub preset: Preset,
    pub label: &'static str,
    /// Headers that identify the export: every one must be present.
    signature: &'static [&'static str],
    /// Role → the header names it may have, the first present wins.
    columns: &'static [(Role, &'static [&'static str])],
    /// The roles `--currency converted` maps to the platform's converted amounts.
    converted: &'static [(Role, &'static str)],
    /// Rows are an order's lines, with the order's own fields on its first line only
    /// (Shopify), rather than one row per order or payment.
    pub lines: bool,
}

/// Shopify's orders export ("Export orders" in the admin): one row per line item; the
/// order's fields (status, totals, currency, refunds, cancellation, gateway) on its first
/// line. Names from Shopify's help centre, "Exporting orders" → "Order export CSV file
/// format" (help.shopify.com/en/manual/fulfillment/managing-orders/exporting-orders).
/// Line items are the value (Lineitem quantity × Lineitem price); `Total`, an order-level
/// sum that includes shipping and taxes, is never added to them. A test order is one paid
/// through Shopify's Bogus Gateway (`Payment Method` "bogus").
const SHOPIFY: Spec = Spec {
    preset: Preset::Shopify,
    label: "Shopify orders export",
    signature: &[
        "Name",
        "Email",
        "Financial Status",
        "Created at",
        "Lineitem quantity",
        "Lineitem price",
    ],
    columns: &[
        (Role::Customer, &["Email"]),
        (Role::Invoice, &["Name"]),
        (Role::Date, &["Created at"]),
        (Role::Quantity, &["Lineitem quantity"]),
        (Role::Price, &["Lineitem price"]),
        (Role::Email, &["Email"]),
        (Role::Status, &["Financial Status"]),
        (Role::Cancelled, &["Cancelled at"]),
        (Role::Refunded, &["Refunded Amount"]),
        (Role::Currency, &["Currency"]),
        (Role::Test, &["Payment Method"]),
    ],
    converted: &[],
    lines: true,
};

/// WooCommerce orders, as the order export documented on woocommerce.com writes them
/// ("Import and Export of WooCommerce Orders" → "Mapping of WooCommerce Orders",
/// woocommerce.com/document/import-and-export-of-woocommerce-orders/): one row per order,
/// so the value is `order_total`. Guests have customer id 0, so the customer is the email.
const WOOCOMMERCE: Spec = Spec {
    preset: Preset::Woocommerce,
    label: "WooCommerce orders export",
    signature: &["order_number", "order_date", "status", "order_total"],
    columns: &[
        (Role::Customer, &["customer_email", "billing_email"]),
        (Role::Invoice, &["order_number", "order_id"]),
        (Role::Date, &["order_date"]),
        (Role::Amount, &["order_total"]),
        (Role::Email, &["customer_email", "billing_email"]),
        (Role::Status, &["status"]),
        (Role::Currency, &["order_currency"]),
    ],
    converted: &[],
    lines: false,
};

/// Stripe's payments export (Dashboard → Payments → Export): one row per payment. Names
/// from Stripe's export columns ("Created date (UTC)", formerly "Created (UTC)"); the
/// converted columns are in the account's settlement currency.
const STRIPE: Spec = Spec {
    preset: Preset::Stripe,
    label: "Stripe payments export",
    signature: &["id", "Amount", "Amount Refunded", "Currency", "Status"],
    columns: &[
        (Role::Customer, &["Customer ID"]),
        (Role::Invoice, &["id"]),
        (Role::Date, &["Created date (UTC)", "Created (UTC)"]),
        (Role::Amount, &["Amount"]),
        (Role::Email, &["Customer Email"]),
        (Role::Status, &["Status"]),
        (Role::Refunded, &["Amount Refunded"]),
        (Role::Currency, &["Currency"]),
    ],
    converted: &[
        (Role::Amount, "Converted Amount"),
        (Role::Refunded, "Converted Amount Refunded"),
        (Role::Currency, "Converted Currency"),
    ],
    lines: false,
};

/// The UCI "Online Retail" layout, the reference (and the settings' default mapping).
const UCI: Spec = Spec {
    preset: Preset::Uci,
    label: "UCI Online Retail layout",
    signature: &[
        "InvoiceNo",
        "StockCode",
        "InvoiceDate",
        "CustomerID",
        "Quantity",
        "UnitPrice",
    ],
    columns: &[],
    converted: &[],
    lines: true,
};

const SPECS: [&Spec; 4] = [&UCI, &SHOPIFY, &WOOCOMMERCE, &STRIPE];

impl Preset {
    pub fn spec(self) -> &'static Spec {
        SPECS
            .into_iter()
            .find(|s| s.preset == self)
            .expect("every preset has a spec")
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Uci => "uci",
            Preset::Shopify => "shopify",
            Preset::Woocommerce => "woocommerce",
            Preset::Stripe => "stripe",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--preset`: recognise the export from its header (`auto`), name one, or use the column
/// mapping as given (`none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PresetChoice {
    #[default]
    Auto,
    Off,
    Named(Preset),
}

impl FromStr for PresetChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(PresetChoice::Auto),
            "none" => Ok(PresetChoice::Off),
            other => SPECS
                .iter()
                .find(|spec| spec.preset.name() == other)
                .map(|spec| PresetChoice::Named(spec.preset))
                .ok_or_else(|| {
                    format!("unknown preset `{other}`; presets are auto, none, uci, shopify, woocommerce, stripe")
                }),
        }
    }
}

impl fmt::Display for PresetChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresetChoice::Auto => f.write_str("auto"),
            PresetChoice::Off => f.write_str("none"),
            PresetChoice::Named(p) => f.write_str(p.name()),
        }
    }
}

/// `--currency`: which currency's rows to keep when an export holds several, or the
/// platform's converted amounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CurrencyChoice {
    /// Any, as long as the export holds one.
    #[default]
    One,
    /// An ISO 4217 code, upper case.
    Code(String),
    Converted,
}

impl FromStr for CurrencyChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(CurrencyChoice::One);
        }
        if s.eq_ignore_ascii_case("converted") {
            return Ok(CurrencyChoice::Converted);
        }
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Ok(CurrencyChoice::Code(s.to_ascii_uppercase()));
        }
        Err(format!(
            "`{}` is not a currency: give a three-letter code such as USD, or `converted`",
            crate::bounded::value(s, crate::bounded::MAX_VALUE)
        ))
    }
}

impl fmt::Display for CurrencyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurrencyChoice::One => Ok(()),
            CurrencyChoice::Code(c) => f.write_str(c),
            CurrencyChoice::Converted => f.write_str("converted"),
        }
    }
}

/// The presets whose signature the header has.
pub fn recognise(headers: &[String]) -> Vec<Preset> {
    let have: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    SPECS
        .iter()
        .filter(|spec| {
            spec.signature
                .iter()
                .all(|name| have.contains(&normalize_header(name)))
        })
        .map(|spec| spec.preset)
        .collect()
}

/// The preset to read `headers` with, and the column map: the preset's names, then every
/// role that `given` (the settings and `--columns`) maps away from the UCI defaults.
pub fn choose(
    choice: PresetChoice,
    currency: &CurrencyChoice,
    given: &ColumnMap,
    headers: &[String],
    file: &str,
) -> Result<(Option<Preset>, ColumnMap), IngestError> {
    let preset = match choice {
        PresetChoice::Off => None,
        PresetChoice::Named(p) => Some(p),
        PresetChoice::Auto => match recognise(headers).as_slice() {
            [] => None,
            [one] => Some(*one),
            several => {
                return Err(IngestError::Preset {
                    path: file.to_string(),
                    detail: format!(
                        "the header fits several export presets ({})",
                        several
                            .iter()
                            .map(|p| p.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        },
    };
    let spec = preset.map(Preset::spec);
    let mut map = match spec {
        Some(spec) if spec.preset != Preset::Uci => spec.map(headers),
        _ => ColumnMap::default(),
    };
    if *currency == CurrencyChoice::Converted {
        let converted = spec.map_or(&[][..], |s| s.converted);
        if converted.is_empty() {
            return Err(IngestError::NoConverted {
                path: file.to_string(),
                export: spec.map_or("not a known export", |s| s.label).to_string(),
            });
        }
        for (role, name) in converted {
            *map.slot(*role) = name.to_string();
        }
    }
    for (role, name) in given.changes() {
        *map.slot(role) = name;
    }
    Ok((preset, map))
}

impl Spec {
    /// The preset's names as a column map: a role takes the first of its names that the
    /// header has (a required role its first name, so that a missing one is reported).
    fn map(&self, headers: &[String]) -> ColumnMap {
        let have: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
        let mut map = ColumnMap::default();
        for role in Role::ALL {
            *map.slot(role) = String::new();
        }
        for (role, names) in self.columns {
            let present = names.iter().find(|n| have.contains(&normalize_header(n)));
            let required = matches!(
                role,
                Role::Customer
                    | Role::Date
                    | Role::Invoice
                    | Role::Quantity
                    | Role::Price
                    | Role::Amount
            );
            if let Some(name) = present.or(required.then(|| &names[0])) {
                *map.slot(*role) = name.to_string();
            }
        }
        map
    }
}

crate::serde_as_text!(PresetChoice);
crate::serde_as_text!(CurrencyChoice);

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(line: &str) -> Vec<String> {
        line.split(',').map(str::to_string).collect()
    }

    #[test]
    fn each_export_is_recognised_from_its_header_alone() {
        let shopify = headers(
            "Name,Email,Financial Status,Paid at,Currency,Total,Created at,Lineitem quantity,Lineitem name,Lineitem price,Cancelled at,Refunded Amount,Payment Method",
        );
        let woo = headers(
            "order_id,order_number,order_date,status,order_total,order_currency,customer_id,customer_email",
        );
        let stripe = headers(
            "id,Description,Created date (UTC),Amount,Amount Refunded,Currency,Converted Amount,Status,Customer ID,Customer Email",
        );
        let uci = headers(
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        );
        assert_eq!(recognise(&shopify), vec![Preset::Shopify]);
        assert_eq!(recognise(&woo), vec![Preset::Woocommerce]);
        assert_eq!(recognise(&stripe), vec![Preset::Stripe]);
        assert_eq!(recognise(&uci), vec![Preset::Uci]);
        assert!(recognise(&headers("a,b,c")).is_empty());
        let one = CurrencyChoice::One;
        let (p, map) = choose(
            PresetChoice::Auto,
            &one,
            &ColumnMap::default(),
            &shopify,
            "f",
        )
        .unwrap();
        assert_eq!(p, Some(Preset::Shopify));
        assert_eq!(
            (map.customer.as_str(), map.test.as_str()),
            ("Email", "Payment Method")
        );
        assert!(map.amount.is_empty());
        let (_, map) = choose(
            PresetChoice::Auto,
            &one,
            &ColumnMap::default(),
            &stripe,
            "f",
        )
        .unwrap();
        assert_eq!(map.date, "Created date (UTC)");
        let converted = CurrencyChoice::Converted;
        let (_, map) = choose(
            PresetChoice::Auto,
            &converted,
            &ColumnMap::default(),
            &stripe,
            "f",
        )
        .unwrap();
        assert_eq!(
            (map.amount.as_str(), map.currency.as_str()),
            ("Converted Amount", "Converted Currency")
        );
        let err = choose(
            PresetChoice::Auto,
            &converted,
            &ColumnMap::default(),
            &shopify,
            "f",
        );
        assert!(err.unwrap_err().to_string().contains("Stripe"));
    }

    #[test]
    fn columns_override_one_role_of_a_preset() {
        let shopify = headers(
            "Name,Email,Financial Status,Created at,Lineitem quantity,Lineitem price,Billing Name",
        );
        let mut given = ColumnMap::default();
        given.apply_overrides("customer=Billing Name").unwrap();
        let one = CurrencyChoice::One;
        let (p, map) = choose(PresetChoice::Auto, &one, &given, &shopify, "f").unwrap();
        assert_eq!(p, Some(Preset::Shopify));
        assert_eq!(
            (map.customer.as_str(), map.invoice.as_str()),
            ("Billing Name", "Name")
        );
        let (p, map) = choose(PresetChoice::Off, &one, &given, &shopify, "f").unwrap();
        assert_eq!((p, map.invoice.as_str()), (None, "InvoiceNo"));
        assert_eq!(
            "Stripe".parse::<PresetChoice>(),
            Ok(PresetChoice::Named(Preset::Stripe))
        );
        assert!(
            "magento"
                .parse::<PresetChoice>()
                .unwrap_err()
                .contains("woocommerce")
        );
        assert_eq!(
            "usd".parse::<CurrencyChoice>(),
            Ok(CurrencyChoice::Code("USD".into()))
        );
        assert!("dollars".parse::<CurrencyChoice>().is_err());
    }
}
