//! `report.html`: one self-contained page (charts embedded as PNG data, no network needed).
//! Rendered with minijinja's HTML auto-escaping, so text from the data or from an LLM is
//! shown as text.

use anyhow::{Context, Result};
use base64::Engine;
use minijinja::value::Serde;
use minijinja::{Environment, context};

use super::charts::{Chart, colour};
use super::{ReportInput, kpis};
use rfm_core::fmt::thousands;

const TEMPLATE: &str = include_str!("report.html");

pub fn pct(v: f64) -> String {
    format!("{:.1}\u{a0}%", v * 100.0)
}

pub fn render(input: &ReportInput, charts: &[Chart]) -> Result<String> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let cur = input.currency;
    let money = |v: f64| format!("{cur}{}", thousands(v, 2));
    let all_kpis = kpis(input);
    let prediction = input.run.predictions.as_ref();
    let segments = segment_contexts(input, &all_kpis, &money);
    let b64 = base64::engine::general_purpose::STANDARD;
    let charts: Vec<_> = charts
        .iter()
        .map(|c| context! { name => c.name, title => &c.title, png => b64.encode(&c.png) })
        .collect();
    let ledger = &input.run.ledger;
    let removed: Vec<_> = ledger
        .removed
        .iter()
        .map(|r| {
            context! { rule => &r.rule, rows => r.rows, revenue_fmt => money(r.revenue), examples => &r.examples }
        })
        .collect();
    let params = serde_json::to_value(&input.run.params)?;
    let params: Vec<(String, String)> = params
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    env.get_template("report.html")?
        .render(context! {
            version => env!("CARGO_PKG_VERSION"),
            unit => match input.run.params.frequency {
                rfm_core::rfm::Frequency::Invoices => "order",
                rfm_core::rfm::Frequency::Lines => "order line",
            },
            source => Serde(&input.run.source),
            ledger => context! {
                customers => ledger.customers, rows_in => ledger.rows_in,
                rows_kept => ledger.rows_kept, removed => removed,
            },
            money_in => money(ledger.revenue_in),
            money_kept => money(ledger.revenue_kept),
            kpis => Serde(&all_kpis),
            segments => segments,
            charts => charts,
            params => params.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            campaigns => Serde(input.campaigns),
            predict => prediction.map(predict_context),
        })
        .context("cannot render report.html")
}

/// Each segment card's and table row's values, formatted.
fn segment_contexts(
    input: &ReportInput,
    all_kpis: &[super::Kpis],
    money: &dyn Fn(f64) -> String,
) -> Vec<minijinja::Value> {
    let fitted = input.run.predictions.as_ref().and_then(|p| p.fitted());
    let predicted = |cluster: usize| {
        let s = fitted?.segments.get(cluster)?;
        let each = s.expected_purchases / s.customers.max(1) as f64;
        Some(context! {
            p_alive => format!("{:.0}\u{a0}%", s.mean_p_alive * 100.0),
            purchases_each => format!("{each:.1}"),
            expected_revenue => money(s.expected_revenue),
            recent_revenue => money(s.recent_revenue),
            clv => money(s.clv),
        })
    };
    all_kpis
        .iter()
        .cloned()
        .map(|k| {
            let c = colour(k.cluster);
            context! {
                colour => format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2),
                customers => thousands(k.customers as f64, 0),
                customer_share => pct(k.customer_share),
                revenue => money(k.revenue),
                revenue_share => pct(k.revenue_share),
                aov => money(k.average_order_value),
                recency => format!("{:.0}", k.recency_median),
                frequency => format!("{:.0}", k.frequency_median),
                monetary => money(k.monetary_median),
                campaign => Serde(input.campaign(k.cluster)),
                predicted => predicted(k.cluster),
                kpi => Serde(k),
            }
        })
        .collect()
}

/// The models' parameters for the report, or why they are missing.
fn predict_context(p: &rfm_core::predict::outcome::Outcome) -> minijinja::Value {
    match p {
        rfm_core::predict::outcome::Outcome::Fitted(r) => context! {
            horizon_days => r.model.horizon_days,
            period => r.model.period.name(),
            calibration_end => &r.calibration.end,
            bgnbd => Serde(&r.model.bgnbd),
            gamma_gamma => Serde(&r.model.gamma_gamma),
        },
        rfm_core::predict::outcome::Outcome::Skipped { reason } => context! { skipped => reason },
    }
}
