//! Human-readable report for the terminal, and the cluster table as CSV.

use std::fmt::Write;

use anyhow::Result;

use super::OutputFormat;
use rfm_core::fmt::thousands;
use rfm_core::rfm::Frequency;
use rfm_core::run::SegmentRun;
use rfm_core::run_folder::CampaignsFile;

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// The segment table: the run's header, the cleaning ledger and the clusters.
pub fn render(run: &SegmentRun) -> String {
    let mut s = String::new();
    header(&mut s, run);
    ledger(&mut s, &run.ledger);
    clusters(&mut s, run);
    predicted(&mut s, run);
    s
}

/// The predictive models per cluster, or why they are missing.
fn predicted(s: &mut String, run: &SegmentRun) {
    use rfm_core::predict::outcome::Outcome;
    let r = match &run.predictions {
        None => return,
        Some(Outcome::Skipped { reason }) => {
            let _ = writeln!(s, "\nNo predictions: {reason}");
            return;
        }
        Some(Outcome::Fitted(r)) => r,
    };
    let days = r.model.horizon_days;
    let _ = writeln!(s, "\nPredicted, next {days} days (BG/NBD + Gamma-Gamma)");
    let _ = writeln!(
        s,
        "  {:>2} {:>9} {:>13} {:>16} {:>14}",
        "id", "P(alive)", "purchases", "revenue", "CLV"
    );
    for p in &r.segments {
        let _ = writeln!(
            s,
            "  {:>2} {:>9} {:>13} {:>16} {:>14}",
            p.cluster,
            pct(p.mean_p_alive),
            thousands(p.expected_purchases, 1),
            thousands(p.expected_revenue, 2),
            thousands(p.clv, 2)
        );
    }
}

/// Input, snapshot and k-means settings.
fn header(s: &mut String, run: &SegmentRun) {
    let src = &run.source;
    let mut how = vec![src.format.name().to_string()];
    how.extend(src.encoding.clone());
    if let Some(d) = &src.delimiter {
        how.push(format!("delimiter {d}"));
    }
    if let Some(sh) = &src.sheet {
        how.push(format!("sheet {sh}"));
    }
    let _ = writeln!(s, "Input     {} ({})", src.path, how.join(", "));
    if let Some(p) = src.preset {
        let _ = writeln!(s, "          preset: {} ({p})", p.spec().label);
    }
    if !src.sha256.is_empty() {
        let _ = writeln!(s, "          sha256 {}", src.sha256);
    }
    let p = &run.params;
    let _ = writeln!(
        s,
        "Snapshot  {} ({}); frequency = {}; dates {}",
        p.snapshot,
        p.snapshot_source.as_str(),
        match p.frequency {
            Frequency::Invoices => "distinct invoices",
            Frequency::Lines => "transaction lines",
        },
        p.date_format
    );
    let _ = writeln!(
        s,
        "k-means   k = {}, seed = {}, restarts = {}, inertia = {:.2}",
        p.k, p.seed, p.n_init, run.segmentation.inertia
    );
}

/// Rows in, each rule's removals with examples, rows kept.
fn ledger(s: &mut String, l: &rfm_core::clean::Ledger) {
    let _ = writeln!(s, "\nCleaning ledger");
    let _ = writeln!(
        s,
        "  {:<22} {:>10} {:>16}  example rows",
        "rule", "rows", "revenue"
    );
    let _ = writeln!(
        s,
        "  {:<22} {:>10} {:>16}",
        "rows in",
        thousands(l.rows_in as f64, 0),
        thousands(l.revenue_in, 2)
    );
    for r in &l.removed {
        let ex: Vec<String> = r.examples.iter().map(|e| e.to_string()).collect();
        let _ = writeln!(
            s,
            "  {:<22} {:>10} {:>16}  {}",
            format!("- {}", r.rule),
            thousands(r.rows as f64, 0),
            thousands(r.revenue, 2),
            ex.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "  {:<22} {:>10} {:>16}",
        "= rows kept",
        thousands(l.rows_kept as f64, 0),
        thousands(l.revenue_kept, 2)
    );
    if let Some(r) = &l.refunds_netted {
        let _ = writeln!(
            s,
            "  (net of {} partial refunds, {})",
            thousands(r.orders as f64, 0),
            thousands(r.amount, 2)
        );
    }
    if let Some(c) = &l.currency {
        let _ = writeln!(s, "  (money in {c})");
    }
    if let Some(n) = l.returns_netted {
        let _ = writeln!(
            s,
            "  (of which {} return lines netted)",
            thousands(n as f64, 0)
        );
    }
    let _ = writeln!(s, "  customers: {}", thousands(l.customers as f64, 0));
    if let Some(note) = &l.note {
        let _ = writeln!(s, "  ({note})");
    }
}

/// One line per cluster.
fn clusters(s: &mut String, run: &SegmentRun) {
    let _ = writeln!(s, "\nClusters (0 = most revenue)");
    let _ = writeln!(
        s,
        "  {:>2} {:>9} {:>6} {:>14} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "id",
        "customers",
        "share",
        "revenue",
        "rev %",
        "R mean",
        "R median",
        "F mean",
        "F median",
        "M mean",
        "M median"
    );
    for c in &run.segmentation.clusters {
        let _ = writeln!(
            s,
            "  {:>2} {:>9} {:>6} {:>14} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>11}",
            c.id,
            thousands(c.size as f64, 0),
            pct(c.share),
            thousands(c.revenue, 2),
            pct(c.revenue_share),
            c.recency.mean,
            c.recency.median,
            c.frequency.mean,
            c.frequency.median,
            thousands(c.monetary.mean, 2),
            thousands(c.monetary.median, 2),
        );
    }
}

pub fn clusters_csv(run: &SegmentRun) -> Result<String> {
    let mut w = crate::output::CsvWriter::new();
    w.write([
        "id",
        "size",
        "share",
        "revenue",
        "revenue_share",
        "recency_mean",
        "recency_median",
        "frequency_mean",
        "frequency_median",
        "monetary_mean",
        "monetary_median",
        "centroid_recency",
        "centroid_frequency",
        "centroid_monetary",
    ])?;
    for c in &run.segmentation.clusters {
        let f = |v: f64| format!("{v:.4}");
        w.write([
            c.id.to_string(),
            c.size.to_string(),
            f(c.share),
            format!("{:.2}", c.revenue),
            f(c.revenue_share),
            f(c.recency.mean),
            f(c.recency.median),
            f(c.frequency.mean),
            f(c.frequency.median),
            f(c.monetary.mean),
            f(c.monetary.median),
            f(c.centroid.recency),
            f(c.centroid.frequency),
            f(c.centroid.monetary),
        ])?;
    }
    Ok(String::from_utf8(w.finish()?)?)
}

/// The agent's table: the segment table, then each segment's campaign and who wrote it,
/// then what the LLM backend did and cost (when one was used).
pub fn campaigns(run: &SegmentRun, doc: &CampaignsFile) -> Result<String> {
    let mut t = super::render(run, OutputFormat::Table)?;
    t.push_str("\nSegments\n");
    for c in &doc.campaigns {
        let writer = match &c.fallback {
            Some(r) => format!("rules (fall-back: {r})"),
            None => c.source.to_string(),
        };
        t.push_str(&format!(
            "  {:>2}  {:<20} {}\n      subject: {}\n      written by: {writer}\n",
            c.cluster, c.name, c.rationale, c.email.subject,
        ));
    }
    let s = &doc.summary;
    if s.backend != "rules" {
        t.push_str(&format!(
            "\nBackend {} ({}): {} requests, {} retries, {} cache hits, {} tokens, estimated cost {:.4}\n",
            s.backend,
            s.model.as_deref().unwrap_or(""),
            s.requests,
            s.retries,
            s.cache_hits,
            s.tokens,
            s.estimated_cost
        ));
    }
    Ok(t)
}
