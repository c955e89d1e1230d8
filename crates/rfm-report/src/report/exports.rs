//! Exports for email tools (Mailchimp, Klaviyo and the like): UTF-8 CSV with a header row
//! and RFC 4180 quoting; one file per segment and one with every customer (with `email`
//! when the input maps one).

use anyhow::Result;

use rfm_core::run::SegmentRun;

const HEADER: [&str; 6] = [
    "customer_id",
    "segment",
    "cluster",
    "recency",
    "frequency",
    "monetary",
];

/// The predictive models' columns, when they were fitted.
const PREDICTED: [&str; 4] = ["p_alive", "expected_purchases", "expected_spend", "clv"];

/// A customer's predictions as cells; empty for a customer with no purchase before the
/// calibration end.
fn predicted_cells(
    p: Option<(rfm_core::predict::Summary, rfm_core::predict::Prediction)>,
) -> [String; 4] {
    match p {
        Some((_, p)) => [
            format!("{:.4}", p.p_alive),
            format!("{:.4}", p.expected_purchases),
            format!("{:.2}", p.expected_spend),
            format!("{:.2}", p.clv),
        ],
        None => Default::default(),
    }
}

/// Writes the customers of cluster `only` (every customer when `None`) as CSV to `w`.
fn write_rows(
    w: &mut dyn std::io::Write,
    run: &SegmentRun,
    names: &[String],
    only: Option<usize>,
) -> Result<()> {
    let mut w = crate::output::CsvWriter::to(w);
    let mut header = HEADER.to_vec();
    if run.emails.is_some() {
        header.push("email");
    }
    let predicted = run.predictions.as_ref().and_then(|p| p.fitted());
    if predicted.is_some() {
        header.extend(PREDICTED);
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
        if let Some(p) = predicted {
            row.extend(predicted_cells(p.customers.get(i).copied().flatten()));
        }
        w.write(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// `customers.csv` and `segments/<slug>.csv` per segment (slugs made unique with the
/// cluster id if needed), each written straight to its file.
pub fn exports<'a>(
    run: &'a SegmentRun,
    names: &'a [String],
) -> Vec<(String, Box<crate::output::Writer<'a>>)> {
    let mut used = std::collections::HashSet::new();
    let mut out: Vec<(String, Box<crate::output::Writer<'a>>)> = vec![(
        "customers.csv".into(),
        Box::new(move |w| write_rows(w, run, names, None)),
    )];
    for c in 0..names.len() {
        let mut s = rfm_core::run_folder::slug(&names[c]);
        if !used.insert(s.clone()) {
            s = format!("{s}-{c}");
            used.insert(s.clone());
        }
        out.push((
            format!("segments/{s}.csv"),
            Box::new(move |w| write_rows(w, run, names, Some(c))),
        ));
    }
    out
}
