//! The exports shops have: Shopify orders, WooCommerce orders and Stripe payments, built
//! here from each platform's documented columns, run with `--input` alone (and a currency
//! where the export holds two); each removal is counted under its own rule. And one clock
//! for every way of writing a time.

use serde_json::Value;

use crate::common::*;

/// A CSV with `header`, one line per row: each row names the cells it fills.
fn csv(header: &[&str], rows: &[Vec<(&str, String)>]) -> String {
    let quote = |v: &str| {
        if v.contains([',', '"']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    let mut out = header.join(",") + "\n";
    for row in rows {
        for (name, _) in row {
            assert!(header.contains(name), "fixture column {name}");
        }
        let cells: Vec<String> = header
            .iter()
            .map(|h| {
                row.iter()
                    .find(|(n, _)| n == h)
                    .map_or(String::new(), |(_, v)| quote(v))
            })
            .collect();
        out += &(cells.join(",") + "\n");
    }
    out
}

fn removed(doc: &Value, rule: &str) -> (u64, f64) {
    let line = doc["ledger"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .unwrap_or_else(|| panic!("no ledger line `{rule}`: {}", doc["ledger"]));
    (
        line["rows"].as_u64().unwrap(),
        line["revenue"].as_f64().unwrap(),
    )
}

/// The ledger's removal lines as (rule, rows).
fn rules(doc: &Value) -> Vec<(String, u64)> {
    doc["ledger"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_string(),
                r["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Shopify's order export header (help.shopify.com, "Order export CSV file format").
const SHOPIFY: &[&str] = &[
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Billing City",
    "Billing Country",
    "Notes",
    "Cancelled at",
    "Payment Method",
    "Payment Reference",
    "Refunded Amount",
    "Vendor",
    "Outstanding Balance",
    "Id",
    "Tags",
    "Risk Level",
    "Source",
];

/// One Shopify order: its first line carries the order's fields, the others only the
/// order number, email, date and their line item.
fn shopify_order(
    name: &str,
    email: &str,
    status: &str,
    created: &str,
    lines: &[(u32, f64)],
    extra: &[(&'static str, &str)],
) -> Vec<Vec<(&'static str, String)>> {
    let total: f64 = lines.iter().map(|(q, p)| f64::from(*q) * p).sum();
    lines
        .iter()
        .enumerate()
        .map(|(i, (q, p))| {
            let mut row = vec![
                ("Name", name.to_string()),
                ("Email", email.to_string()),
                ("Created at", created.to_string()),
                ("Lineitem quantity", q.to_string()),
                ("Lineitem price", format!("{p:.2}")),
                ("Lineitem name", format!("Item {i}")),
            ];
            if i == 0 {
                row.extend([
                    ("Financial Status", status.to_string()),
                    ("Currency", "USD".to_string()),
                    ("Total", format!("{:.2}", total + 4.99)),
                    ("Payment Method", "shopify_payments".to_string()),
                    ("Billing Name", format!("Buyer {email}")),
                ]);
                for (k, v) in extra {
                    row.retain(|(n, _)| n != k);
                    row.push((k, v.to_string()));
                }
            }
            row
        })
        .collect()
}

fn shopify_fixture() -> String {
    let mut rows = Vec::new();
    let mut order = 1000;
    let mut next = || {
        order += 1;
        format!("#{order}")
    };
    // Twelve regular customers, one to three paid orders each, at offsets east and west.
    for c in 0..12u32 {
        for o in 0..=(c % 3) {
            let day = 1 + (c * 2 + o * 5) % 27;
            let created = format!(
                "2023-03-{day:02} 1{}:30:00 {}",
                o,
                if c % 2 == 0 { "-0500" } else { "+0100" }
            );
            let lines = [(1 + c % 4, 10.0 + f64::from(c)), (1, 3.5)];
            rows.extend(shopify_order(
                &next(),
                &format!("c{c}@example.com"),
                "paid",
                &created,
                &lines,
                &[],
            ));
        }
    }
    let at = "2023-04-02 10:00:00 -0500";
    rows.extend(shopify_order(
        &next(),
        "c1@example.com",
        "refunded",
        at,
        &[(1, 30.0)],
        &[],
    ));
    rows.extend(shopify_order(
        &next(),
        "c2@example.com",
        "partially_refunded",
        at,
        &[(1, 20.0), (2, 7.5)],
        &[("Refunded Amount", "5.00")],
    ));
    rows.extend(shopify_order(
        &next(),
        "c3@example.com",
        "paid",
        at,
        &[(1, 40.0), (1, 2.0)],
        &[("Cancelled at", "2023-04-02 11:00:00 -0500")],
    ));
    rows.extend(shopify_order(
        &next(),
        "c4@example.com",
        "paid",
        at,
        &[(3, 9.0)],
        &[("Payment Method", "bogus")],
    ));
    rows.extend(shopify_order(
        &next(),
        "c5@example.com",
        "paid",
        at,
        &[(1, 50.0), (1, 1.0)],
        &[("Currency", "EUR")],
    ));
    rows.extend(shopify_order(
        &next(),
        "c6@example.com",
        "voided",
        at,
        &[(1, 12.0)],
        &[],
    ));
    rows.extend(shopify_order(
        &next(),
        "c7@example.com",
        "pending",
        at,
        &[(1, 14.0)],
        &[],
    ));
    csv(SHOPIFY, &rows)
}

#[test]
fn a_shopify_orders_export_runs_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders_export.csv", shopify_fixture());
    // Two currencies: refused, each with its rows, until one is chosen.
    let e = fails(&["segment", "--input", &path]);
    assert!(e.contains("column `Currency` holds 2 currencies"), "{e}");
    assert!(e.contains("USD: ") && e.contains("EUR: 2 rows"), "{e}");
    assert!(e.contains("--currency"), "{e}");
    let doc = segment_json(&["--input", &path, "--currency", "USD"]);
    assert_eq!(doc["input"]["preset"], "shopify", "{}", doc["input"]);
    assert_eq!(doc["input"]["columns"]["quantity"], "Lineitem quantity");
    assert_eq!(removed(&doc, "refunded"), (1, 30.0));
    assert_eq!(
        removed(&doc, "order cancelled"),
        (2, 42.0),
        "both lines of the order"
    );
    assert_eq!(removed(&doc, "test order"), (1, 27.0));
    assert_eq!(removed(&doc, "other currency"), (2, 51.0));
    assert_eq!(removed(&doc, "payment voided"), (1, 12.0));
    assert_eq!(removed(&doc, "payment pending"), (1, 14.0));
    let ledger = &doc["ledger"];
    assert_eq!(ledger["refunds_netted"]["orders"], 1);
    assert_eq!(ledger["refunds_netted"]["amount"], 5.0);
    assert_eq!(ledger["currency"], "USD");
    let kept = ledger["rows_kept"].as_u64().unwrap();
    let gone: u64 = rules(&doc).iter().map(|(_, n)| n).sum();
    assert_eq!(kept + gone, ledger["rows_in"].as_u64().unwrap());
    // The partly refunded order counts its lines net of the refund: 20 + 15 - 5.
    let out = tempfile::tempdir().unwrap();
    let o = out.path().display().to_string();
    let mut cmd = bin();
    cmd.args([
        "segment",
        "--input",
        &path,
        "--currency",
        "USD",
        "--out",
        &o,
    ]);
    assert_ok(&cmd.output().unwrap());
    let rfm = customers(out.path());
    let c2 = rfm["c2@example.com"];
    // c2: three paid orders of 3 × 12.00 + 1 × 3.50, then 1 × 20 + 2 × 7.50 - 5.
    assert!((c2.2 - (3.0 * 39.5 + 30.0)).abs() < 1e-9, "{c2:?}");
    assert_eq!(c2.1, 4.0, "four orders");
    // --columns still overrides one role of the preset.
    let doc = segment_json(&[
        "--input",
        &path,
        "--currency",
        "usd",
        "--columns",
        "customer=Billing Name",
    ]);
    assert_eq!(doc["input"]["columns"]["customer"], "Billing Name");
    assert!(ledger_rule(&doc, "missing customer").unwrap() > 0);
}

/// WooCommerce's order export columns (woocommerce.com, "Import and Export of WooCommerce
/// Orders" → "Mapping of WooCommerce Orders").
const WOO: &[&str] = &[
    "order_id",
    "order_number",
    "order_date",
    "paid_date",
    "status",
    "shipping_total",
    "shipping_tax_total",
    "fee_total",
    "fee_tax_total",
    "tax_total",
    "cart_discount",
    "order_discount",
    "discount_total",
    "order_total",
    "order_subtotal",
    "order_currency",
    "payment_method",
    "payment_method_title",
    "transaction_id",
    "customer_ip_address",
    "customer_user_agent",
    "shipping_method",
    "customer_id",
    "customer_user",
    "customer_email",
    "billing_first_name",
    "billing_last_name",
    "billing_email",
];

fn woo_fixture() -> String {
    let mut rows = Vec::new();
    let mut add = |n: u32, status: &str, email: &str, total: f64, currency: &str, date: String| {
        rows.push(vec![
            ("order_id", (5000 + n).to_string()),
            ("order_number", (5000 + n).to_string()),
            ("order_date", date),
            ("status", status.to_string()),
            ("order_total", format!("{total:.2}")),
            ("order_currency", currency.to_string()),
            ("customer_id", "0".to_string()),
            ("customer_email", email.to_string()),
            ("billing_email", email.to_string()),
            ("payment_method", "stripe".to_string()),
        ]);
    };
    let mut n = 0;
    for c in 0..12u32 {
        for o in 0..=(c % 3) {
            n += 1;
            let status = if o % 2 == 0 {
                "completed"
            } else {
                "processing"
            };
            let date = format!("2023-03-{:02}T1{o}:15:00+02:00", 1 + (c * 2 + o * 5) % 27);
            add(
                n,
                status,
                &format!("w{c}@example.com"),
                20.0 + f64::from(c * 3),
                "EUR",
                date,
            );
        }
    }
    let at = || "2023-04-03T09:00:00+02:00".to_string();
    for (i, status) in ["cancelled", "refunded", "failed", "on-hold", "pending"]
        .iter()
        .enumerate()
    {
        add(100 + i as u32, status, "w1@example.com", 11.0, "EUR", at());
    }
    add(200, "completed", "w2@example.com", 70.0, "GBP", at());
    csv(WOO, &rows)
}

#[test]
fn a_woocommerce_orders_export_runs_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "woo-orders.csv", woo_fixture());
    let e = fails(&["segment", "--input", &path]);
    assert!(
        e.contains("`order_currency` holds 2 currencies (EUR: ") && e.contains("GBP: 1 rows"),
        "{e}"
    );
    let doc = segment_json(&["--input", &path, "--currency", "EUR"]);
    assert_eq!(doc["input"]["preset"], "woocommerce");
    assert_eq!(doc["input"]["columns"]["amount"], "order_total");
    for rule in [
        "order cancelled",
        "refunded",
        "payment failed",
        "other currency",
    ] {
        assert_eq!(removed(&doc, rule).0, 1, "{rule}");
    }
    assert_eq!(
        removed(&doc, "payment pending"),
        (2, 22.0),
        "on-hold and pending"
    );
    assert_eq!(doc["ledger"]["currency"], "EUR");
}

/// Stripe's payments export columns (Dashboard → Payments → Export).
const STRIPE: &[&str] = &[
    "id",
    "Description",
    "Seller Message",
    "Created date (UTC)",
    "Amount",
    "Amount Refunded",
    "Currency",
    "Converted Amount",
    "Converted Amount Refunded",
    "Fee",
    "Tax",
    "Converted Currency",
    "Status",
    "Statement Descriptor",
    "Customer ID",
    "Customer Description",
    "Customer Email",
    "Captured",
    "Card ID",
    "Invoice ID",
    "Transfer",
];

pub fn stripe_fixture() -> String {
    let mut rows = Vec::new();
    let mut add =
        |n: u32, status: &str, customer: u32, amount: f64, refunded: f64, currency: &str| {
            let rate = if currency == "eur" { 1.1 } else { 1.0 };
            rows.push(vec![
                ("id", format!("ch_3N{n:06}")),
                (
                    "Created date (UTC)",
                    format!("2023-03-{:02} {:02}:05:00", 1 + n % 27, n % 24),
                ),
                ("Amount", format!("{amount:.2}")),
                ("Amount Refunded", format!("{refunded:.2}")),
                ("Currency", currency.to_string()),
                ("Converted Amount", format!("{:.2}", amount * rate)),
                (
                    "Converted Amount Refunded",
                    format!("{:.2}", refunded * rate),
                ),
                ("Converted Currency", "usd".to_string()),
                ("Status", status.to_string()),
                ("Customer ID", format!("cus_{customer:04}")),
                ("Customer Email", format!("s{customer}@example.com")),
                ("Captured", "true".to_string()),
            ]);
        };
    let mut n = 0;
    for c in 0..12u32 {
        for _ in 0..=(c % 3) {
            n += 1;
            add(n, "Paid", c, 15.0 + f64::from(c * 2), 0.0, "usd");
        }
    }
    add(101, "Failed", 1, 99.0, 0.0, "usd");
    add(102, "Refunded", 2, 30.0, 30.0, "usd");
    add(103, "Paid", 3, 40.0, 40.0, "usd");
    add(104, "Paid", 4, 50.0, 10.0, "usd");
    add(105, "Paid", 5, 60.0, 0.0, "eur");
    csv(STRIPE, &rows)
}

#[test]
fn a_stripe_payments_export_runs_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "unified_payments.csv", stripe_fixture());
    let e = fails(&["segment", "--input", &path]);
    assert!(e.contains("USD: ") && e.contains("EUR: 1 rows"), "{e}");
    let doc = segment_json(&["--input", &path, "--currency", "USD"]);
    assert_eq!(doc["input"]["preset"], "stripe");
    assert_eq!(removed(&doc, "payment failed"), (1, 99.0));
    assert_eq!(
        removed(&doc, "refunded"),
        (2, 70.0),
        "by status, and refunded in full"
    );
    assert_eq!(removed(&doc, "other currency"), (1, 60.0));
    assert_eq!(doc["ledger"]["refunds_netted"]["amount"], 10.0);
    assert!(
        ledger_rule(&doc, "cancellation").is_none(),
        "ch_… ids are not cancellations"
    );
    // The converted amounts: one currency, the EUR payment kept at its USD value.
    let doc = segment_json(&["--input", &path, "--currency", "converted"]);
    assert_eq!(doc["input"]["columns"]["amount"], "Converted Amount");
    assert!(ledger_rule(&doc, "other currency").is_none());
    assert_eq!(doc["ledger"]["currency"], "USD");
}

/// The same instants in three ways of writing them: the same RFM table and snapshot.
#[test]
fn one_clock_for_every_way_of_writing_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let instants = [(0, 20, 16), (1, 23, 45), (2, 3, 5), (5, 19, 0), (7, 4, 30)];
    let forms: [fn(u32, u32, u32) -> String; 3] = [
        // Local time in New York (UTC-5 in this week), ISO with `Z`, and Paris (UTC+2).
        |d, h, m| {
            let t = wall(d, h, m, -5);
            format!("{t} -0500")
        },
        |d, h, m| format!("{}Z", wall(d, h, m, 0).replace(' ', "T")),
        |d, h, m| format!("{}+02:00", wall(d, h, m, 2).replace(' ', "T")),
    ];
    let mut seen = Vec::new();
    for (i, form) in forms.iter().enumerate() {
        let mut text =
            String::from("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n");
        for (n, (d, h, m)) in instants.iter().enumerate() {
            for c in 0..5 {
                text += &format!(
                    "{}{c},S,{},{},2.5,{}\n",
                    500 + n,
                    1 + c,
                    form(*d, *h, *m),
                    100 + (c + n) % 4
                );
            }
        }
        let path = write(dir.path(), &format!("t{i}.csv"), text);
        let out = dir.path().join(format!("out{i}"));
        let doc = segment_json(&[
            "--input",
            &path,
            "--k",
            "2",
            "--out",
            &out.display().to_string(),
        ]);
        seen.push((doc["params"]["snapshot"].clone(), customers(&out)));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    assert_eq!(
        seen[0].0, "2023-04-28 04:30:00",
        "last instant (UTC) + 1 day"
    );
    // A column that mixes offset and naive times is refused with one example of each.
    let mixed = write(
        dir.path(),
        "mixed.csv",
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,S,1,2023-04-20 20:16:00 -0500,1,7\n2,S,1,2023-04-21 01:16:00,1,8\n",
    );
    let e = fails(&["segment", "--input", &mixed]);
    assert!(
        e.contains("`2023-04-20 20:16:00 -0500`") && e.contains("`2023-04-21 01:16:00`"),
        "{e}"
    );
    // --timezone puts instants on a zone's clock: Paris is UTC+2 in April.
    let doc = segment_json(&[
        "--input",
        &write(
            dir.path(),
            "z.csv",
            "CustomerID,InvoiceDate,Quantity,UnitPrice\n1,2023-04-21T01:16:00Z,1,1\n2,2023-04-20T01:16:00Z,1,1\n",
        ),
        "--k",
        "2",
        "--timezone",
        "Europe/Paris",
    ]);
    assert_eq!(doc["params"]["snapshot"], "2023-04-22 03:16:00");
}

/// The UTC instant April 20 + `day`, `h`:`m`, as `2023-04-DD HH:MM:00` on a clock `offset`
/// hours east of UTC.
fn wall(day: u32, h: u32, m: u32, offset: i32) -> String {
    let minutes =
        (i64::from(20 + day) * 24 * 60 + i64::from(h) * 60 + i64::from(m)) + i64::from(offset) * 60;
    let (d, rest) = (minutes / (24 * 60), minutes % (24 * 60));
    format!("2023-04-{d:02} {:02}:{:02}:00", rest / 60, rest % 60)
}

/// A Shopify order whose first line (with its status) is in one block of the file and
/// whose other lines are in the next: those lines are removed with their order.
#[test]
fn an_orders_fields_reach_its_lines_in_the_next_block() {
    const LINES: usize = 50;
    let statuses = ["paid", "refunded", "paid", "voided"];
    let mut rows = Vec::new();
    for o in 0..400usize {
        let created = format!("2023-03-{:02} 10:00:00 +0100", 1 + o % 28);
        let lines = vec![(1, 2.0); LINES];
        let email = format!("b{}@example.com", o % 37);
        rows.extend(shopify_order(
            &format!("#{}", 2000 + o),
            &email,
            statuses[o % 4],
            &created,
            &lines,
            &[],
        ));
    }
    let text = csv(SHOPIFY, &rows);
    // The reader's first block ends near 1 MiB: inside an order, well past its first line.
    let line_at = text[..1 << 20].matches('\n').count();
    assert!(
        line_at % LINES > 5 && line_at % LINES < LINES - 5,
        "line {line_at}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders_export.csv", &text);
    let doc = segment_json(&["--input", &path]);
    let per_status = (400 / 4 * LINES) as u64;
    assert_eq!(removed(&doc, "refunded").0, per_status);
    assert_eq!(removed(&doc, "payment voided").0, per_status);
    assert_eq!(doc["ledger"]["rows_kept"], 2 * per_status);
}
