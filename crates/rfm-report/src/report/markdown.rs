//! `report.md`: the HTML report's content as Markdown, for docs and tickets; charts are
//! linked as the PNG files beside it.

use std::fmt::Write;

use super::charts::Chart;
use super::html::pct;
use super::{ReportInput, kpis};
use rfm_core::fmt::thousands;

pub fn render(input: &ReportInput, charts: &[Chart]) -> String {
    let cur = input.currency;
    let money = |v: f64| format!("{cur}{}", thousands(v, 2));
    let run = input.run;
    let mut s = String::new();
    let _ = writeln!(s, "# Customer segments\n");
    let _ = writeln!(
        s,
        "{} · {} customers in {} segments · rfm-agent {}\n",
        run.source.path,
        run.ledger.customers,
        run.segmentation.clusters.len(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(s, "## Segments\n");
    let unit = match run.params.frequency {
        rfm_core::rfm::Frequency::Invoices => "order",
        rfm_core::rfm::Frequency::Lines => "order line",
    };
    let _ = writeln!(
        s,
        "| Segment | Customers | Share | Revenue | Revenue share | Avg {unit} | Recency (d) | Frequency | Monetary |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for k in kpis(input) {
        let _ = writeln!(
            s,
            "| {}: {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {} |",
            k.cluster,
            k.name.replace('|', "\\|"),
            thousands(k.customers as f64, 0),
            pct(k.customer_share),
            money(k.revenue),
            pct(k.revenue_share),
            money(k.average_order_value),
            k.recency_median,
            k.frequency_median,
            money(k.monetary_median)
        );
    }
    if let Some(doc) = input.campaigns {
        s.push('\n');
        s.push_str(
            crate::output::campaigns::markdown(&doc.campaigns).trim_start_matches("# Campaigns\n"),
        );
    }
    let _ = writeln!(s, "\n## Charts\n");
    for c in charts {
        let _ = writeln!(s, "![{}]({}.png)\n", c.title, c.name);
    }
    let l = &run.ledger;
    let _ = writeln!(
        s,
        "## Cleaning ledger\n\n| Rule | Rows | Revenue |\n|---|---:|---:|\n| rows read | {} | {} |",
        l.rows_in,
        money(l.revenue_in)
    );
    for r in &l.removed {
        let _ = writeln!(s, "| {} | {} | {} |", r.rule, r.rows, money(r.revenue));
    }
    let _ = writeln!(
        s,
        "| **kept** | **{}** | **{}** |\n",
        l.rows_kept,
        money(l.revenue_kept)
    );
    let _ = writeln!(
        s,
        "## Run manifest\n\n- input: `{}` ({} bytes)\n- sha256: `{}`\n- parameters: `{}`",
        run.source.path,
        run.source.bytes,
        run.source.sha256,
        serde_json::to_string(&run.params).unwrap_or_default()
    );
    s
}
