//! A batch's summary for the terminal.

use rfm_campaigns::batch::run::{BatchOptions, Summary};

/// The summary for the terminal.
pub fn table(s: &Summary, opts: &BatchOptions) -> String {
    let mut t = String::new();
    if opts.dry_run {
        t.push_str(&format!(
            "{} items ({} already in {}), {} to write with {}; about {} tokens, estimated cost {:.4}\n",
            s.items, s.already_done, opts.out.display(), s.remaining, s.backend, s.tokens, s.estimated_cost
        ));
        return t;
    }
    t.push_str(&format!(
        "{} items: {} written now, {} already done, {} remaining\n",
        s.items, s.written, s.already_done, s.remaining
    ));
    for (source, n) in &s.by_source {
        t.push_str(&format!("  {source}: {n}\n"));
    }
    if s.backend != "rules" {
        t.push_str(&format!(
            "{}: {} requests, {} retries, {} cache hits, {} tokens, estimated cost {:.4}\n",
            s.backend, s.requests, s.retries, s.cache_hits, s.tokens, s.estimated_cost
        ));
    }
    if !s.fallback_reasons.is_empty() {
        let by: Vec<String> = (s.fallback_reasons.iter())
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        t.push_str(&format!("fall-backs by reason: {}\n", by.join(", ")));
    }
    for (key, reason) in s.fallbacks.iter().take(10) {
        t.push_str(&format!("  fall-back {key}: {reason}\n"));
    }
    if s.fallbacks.len() > 10 {
        t.push_str(&format!(
            "  … and {} more fall-backs (see the .summary.json)\n",
            s.fallbacks.len() - 10
        ));
    }
    if let Some(why) = &s.stopped {
        t.push_str(&format!(
            "stopped: {why}; rerun the same command to finish\n"
        ));
    }
    t
}
