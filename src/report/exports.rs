//! Exports for email tools (Mailchimp, Klaviyo and the like): UTF-8 CSV with a header row
//! and RFC 4180 quoting; one file per segment and one with every customer (with `email`
//! when the input maps one).

use anyhow::Result;

use crate::pipeline::SegmentRun;

const HEADER: [&str; 6] = [
    "customer_id",
    "segment",
    "cluster",
    "recency",
    "frequency",
    "monetary",
];

/// A file-name-safe form of a segment name: "Can't Lose Them" → "cant-lose-them".
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for ch in name.chars() {
        if ch.is_alphanumeric() {
            s.extend(ch.to_lowercase());
        } else if (ch.is_whitespace() || ch == '-' || ch == '_' || ch == '/') && !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "segment".into() } else { s }
}

fn write_rows(run: &SegmentRun, names: &[String], only: Option<usize>) -> Result<Vec<u8>> {
    let mut w = crate::output::CsvWriter::new();
    let mut header = HEADER.to_vec();
    if run.emails.is_some() {
        header.push("email");
    }
    w.write(&header)?;
    let r = &run.rfm;
    for i in 0..r.len() {
        let c = run.segmentation.labels[i];
        if only.is_some_and(|o| o != c) {
            continue;
        }
        let mut row = vec![
            r.customer_ids[i].clone(),
            names[c].clone(),
            c.to_string(),
            r.recency[i].to_string(),
            r.frequency[i].to_string(),
            format!("{:.2}", r.monetary[i]),
        ];
        if let Some(e) = &run.emails {
            row.push(e[i].clone());
        }
        w.write(&row)?;
    }
    w.finish()
}

/// `customers.csv`: every kept customer with segment, cluster, R, F and M.
pub fn customers_csv(run: &SegmentRun, names: &[String]) -> Result<Vec<u8>> {
    write_rows(run, names, None)
}

/// `segments/<slug>.csv` per segment (slugs made unique with the cluster id if needed).
pub fn segment_files(run: &SegmentRun, names: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::new();
    for c in 0..names.len() {
        let mut s = slug(&names[c]);
        if !used.insert(s.clone()) {
            s = format!("{s}-{c}");
            used.insert(s.clone());
        }
        out.push((
            format!("segments/{s}.csv"),
            write_rows(run, names, Some(c))?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_safe_file_names() {
        assert_eq!(slug("Can't Lose Them"), "cant-lose-them");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("  "), "segment");
        assert_eq!(slug("Über Kunden"), "über-kunden");
    }
}
