//! The agent's campaigns as Markdown, for pasting into docs and tickets.

use rfm_campaigns::agent::Campaign;

/// Markdown for pasting into docs and tickets.
pub fn markdown(campaigns: &[Campaign]) -> String {
    let mut s = String::from("# Campaigns\n");
    for c in campaigns {
        s.push_str(&format!(
            "\n## Cluster {}: {}\n\n{}\n\n**Strategy.** {}\n\n**Channels.** {}\n\n**Written by:** {}\n\n**From:** {}  \n**Subject:** {}  \n**Preheader:** {}\n\n{}\n",
            c.cluster,
            c.name,
            c.rationale,
            c.strategy,
            c.channels.join(", "),
            match &c.fallback {
                Some(r) => format!("rules (fall-back: {r})"),
                None => c.source.to_string(),
            },
            c.email.from,
            c.email.subject,
            c.email.preheader,
            c.email.body
                .lines()
                .map(str::to_string)
                .chain([String::new(), c.email.footer.clone()])
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    s
}
