//! The built-in sample: deterministic, generated transactions in the UCI "Online Retail"
//! layout (thousands of customers, hundreds of thousands of lines, guest checkouts,
//! cancellations and a few bad rows), so that every command runs out of the box.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub customers: usize,
    pub seed: u64,
}

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            customers: 3000,
            seed: 2010,
        }
    }
}

/// The UCI "Online Retail" header.
pub const HEADER: [&str; 8] = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
];

const COLOURS: [&str; 10] = [
    "RED",
    "BLUE",
    "PINK",
    "WHITE",
    "IVORY",
    "GREEN",
    "VINTAGE",
    "RETROSPOT",
    "PAISLEY",
    "CAFÉ",
];
const THINGS: [&str; 12] = [
    "MUG",
    "LANTERN",
    "HEART T-LIGHT HOLDER",
    "LUNCH BAG",
    "CAKE STAND",
    "DOORMAT",
    "PHOTO FRAME",
    "BUNTING",
    "JAM JAR SET",
    "TEA TOWELS, SET OF 3",
    "NOËL BAUBLE",
    "PAPER CHAIN KIT",
];
const COUNTRIES: [(&str, f64); 6] = [
    ("United Kingdom", 0.88),
    ("Germany", 0.04),
    ("France", 0.04),
    ("EIRE", 0.02),
    ("Spain", 0.01),
    ("Netherlands", 0.01),
];

struct Product {
    code: String,
    description: String,
    price: f64,
}

/// How a customer behaves over the year.
#[derive(Clone, Copy)]
enum Persona {
    Champion,
    Loyal,
    New,
    Occasional,
    Lapsed,
}

struct Line {
    invoice: String,
    product: usize,
    quantity: i64,
    at: NaiveDateTime,
    price: f64,
    customer: Option<u32>,
    country: &'static str,
}

fn start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2010, 12, 1)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap()
}

const DAYS: i64 = 373;

/// Generates the sample as UTF-8 CSV bytes.
pub fn generate(spec: &SampleSpec) -> Vec<u8> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed);
    let products = products(&mut rng);
    let invoices = invoices(spec, &mut rng, &products);
    let lines = lines(&invoices, &mut rng, &products);
    write_csv(&lines, &products)
}

fn products(rng: &mut Xoshiro256PlusPlus) -> Vec<Product> {
    (0..360)
        .map(|i| Product {
            code: if i % 7 == 0 {
                format!("{}{}", 20000 + i * 13, ['A', 'B', 'C'][i % 3])
            } else {
                format!("{}", 20000 + i * 13)
            },
            description: format!(
                "{} {}",
                COLOURS[i % COLOURS.len()],
                THINGS[(i / 10) % THINGS.len()]
            ),
            price: (rng.gen_range(0.0f64..3.0).exp() * 0.4 * 100.0).round() / 100.0 + 0.19,
        })
        .collect()
}

/// An invoice before numbering: time, customer, country, (product, quantity) lines.
type Invoice = (NaiveDateTime, Option<u32>, &'static str, Vec<(usize, i64)>);

/// A moment between days `from` and `to` of the sample's year, in shop hours.
fn at(rng: &mut Xoshiro256PlusPlus, from: i64, to: i64) -> NaiveDateTime {
    let day = rng.gen_range(from..to.max(from + 1));
    start() + Duration::days(day) + Duration::minutes(rng.gen_range(0..9 * 60))
}

fn basket(
    rng: &mut Xoshiro256PlusPlus,
    lines: std::ops::Range<usize>,
    qty: i64,
    products: usize,
) -> Vec<(usize, i64)> {
    let n = rng.gen_range(lines);
    (0..n)
        .map(|_| (rng.gen_range(0..products), rng.gen_range(1..=qty)))
        .collect()
}

/// Every customer's invoices by persona, then guest checkouts, in time order.
fn invoices(spec: &SampleSpec, rng: &mut Xoshiro256PlusPlus, products: &[Product]) -> Vec<Invoice> {
    let mut invoices: Vec<Invoice> = Vec::new();
    for c in 0..spec.customers {
        let id = 12346 + c as u32;
        let u: f64 = rng.r#gen();
        let mut country = COUNTRIES[0].0;
        let mut acc = 0.0;
        for (name, p) in COUNTRIES {
            acc += p;
            if u < acc {
                country = name;
                break;
            }
        }
        let persona = match rng.gen_range(0..100) {
            0..12 => Persona::Champion,
            12..35 => Persona::Loyal,
            35..50 => Persona::New,
            50..75 => Persona::Occasional,
            _ => Persona::Lapsed,
        };
        let (count, from, to, lines, qty) = match persona {
            Persona::Champion => (rng.gen_range(10..40), 0, DAYS, 5..25, 48),
            Persona::Loyal => (rng.gen_range(5..15), 0, DAYS, 4..20, 24),
            Persona::New => (rng.gen_range(1..4), DAYS - 60, DAYS, 3..15, 12),
            Persona::Occasional => (rng.gen_range(1..5), 0, DAYS, 3..15, 12),
            Persona::Lapsed => (rng.gen_range(1..6), 0, 180, 3..15, 12),
        };
        for _ in 0..count {
            let when = at(rng, from, to);
            let items = basket(rng, lines.clone(), qty, products.len());
            invoices.push((when, Some(id), country, items));
        }
    }
    // Guest checkouts: no customer id.
    let guests = invoices.len() / 5;
    for _ in 0..guests {
        let when = at(rng, 0, DAYS);
        let items = basket(rng, 1..20, 6, products.len());
        invoices.push((when, None, "United Kingdom", items));
    }
    invoices.sort_by_key(|(t, c, _, _)| (*t, *c));
    invoices
}

/// The numbered invoices' lines, with about 3 % of customer invoices partly cancelled a
/// few days later, in time order.
fn lines(invoices: &[Invoice], rng: &mut Xoshiro256PlusPlus, products: &[Product]) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    let mut cancellations = Vec::new();
    for (n, (when, customer, country, items)) in invoices.iter().enumerate() {
        let number = 536365 + n;
        for &(product, quantity) in items {
            lines.push(Line {
                invoice: number.to_string(),
                product,
                quantity,
                at: *when,
                price: products[product].price,
                customer: *customer,
                country,
            });
        }
        if customer.is_some() && rng.gen_ratio(3, 100) {
            let later =
                (*when + Duration::days(rng.gen_range(0..5))).min(start() + Duration::days(DAYS));
            let (product, quantity) = items[0];
            cancellations.push(Line {
                invoice: format!("C{number}"),
                product,
                quantity: -quantity,
                at: later,
                price: products[product].price,
                customer: *customer,
                country,
            });
        }
    }
    lines.extend(cancellations);
    lines.sort_by_key(|l| l.at);
    lines
}

/// The lines as the reference export writes them, with a few bad rows and a bad-debt
/// adjustment.
fn write_csv(lines: &[Line], products: &[Product]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(lines.len() * 80));
    w.write_record(HEADER).expect("in-memory write");
    // (At least 1: a sample of a handful of lines has no bad rows rather than a panic.)
    let bad_every = (lines.len() / 9).max(1);
    for (i, l) in lines.iter().enumerate() {
        let p = &products[l.product];
        let mut date = l.at.format("%-m/%-d/%Y %-H:%M").to_string();
        let mut quantity = l.quantity.to_string();
        let mut price = format!("{}", l.price);
        // A few bad rows, spread through the file: an unreadable date, a quantity in
        // words, a free item (price 0).
        match (i % bad_every, i / bad_every) {
            (17, 1) | (17, 5) => date = "not recorded".into(),
            (17, 2) | (17, 6) => quantity = "two".into(),
            (17, 3) | (17, 7) => price = "0".into(),
            _ => {}
        }
        let customer = l.customer.map(|c| c.to_string()).unwrap_or_default();
        w.write_record([
            l.invoice.as_str(),
            &p.code,
            &p.description,
            &quantity,
            &date,
            &price,
            &customer,
            l.country,
        ])
        .expect("in-memory write");
    }
    // A bad-debt adjustment as in the reference export: no customer, negative price.
    let last = lines.last().map(|l| l.at).unwrap_or_else(start);
    w.write_record([
        "A563187",
        "B",
        "Adjust bad debt",
        "1",
        &last.format("%-m/%-d/%Y %-H:%M").to_string(),
        "-11062.06",
        "",
        "United Kingdom",
    ])
    .expect("in-memory write");
    w.into_inner().expect("in-memory write")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_samples_are_generated_too() {
        for customers in [0, 1, 2] {
            let spec = SampleSpec {
                customers,
                ..SampleSpec::default()
            };
            let text = String::from_utf8(generate(&spec)).unwrap();
            assert!(text.starts_with("InvoiceNo,"), "{customers} customers");
        }
    }

    #[test]
    fn sample_is_deterministic_and_shaped_like_the_reference() {
        let spec = SampleSpec::default();
        let a = generate(&spec);
        assert_eq!(a, generate(&spec));
        let text = String::from_utf8(a).unwrap();
        let rows = text.lines().count() - 1;
        assert!(rows > 100_000, "{rows} rows");
        assert!(text.starts_with("InvoiceNo,StockCode,Description,Quantity,InvoiceDate"));
        assert!(text.contains("\nC5"), "has cancellations");
        assert!(text.contains(",,United Kingdom"), "has guest rows");
        assert!(text.contains("not recorded") && text.contains(",two,"));
        assert!(
            text.contains("TEA TOWELS, SET OF 3\""),
            "quoted description"
        );
    }
}
