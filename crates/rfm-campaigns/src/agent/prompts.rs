//! Campaign templates: `prompts/segments.toml` (minijinja strings per segment) and
//! `prompts/llm.toml` (the LLM's instructions), embedded in the binary and overridable with
//! `--prompts DIR`.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, context};
use serde::Deserialize;

use super::Email;
use super::segments::Segment;
use rfm_core::cluster::ClusterSummary;

const BUILT_IN: &str = include_str!("../../../../prompts/segments.toml");
const BUILT_IN_LLM: &str = include_str!("../../../../prompts/llm.toml");

#[derive(Debug, thiserror::Error)]
pub enum PromptsError {
    #[error("{path}: cannot read the prompts: {detail}")]
    Read { path: String, detail: String },
    #[error("{path}: segment `{segment}` has no templates; add a [{segment}] table")]
    Missing { path: String, segment: String },
    #[error(
        "{path}: the `{segment}` email is not grounded: {problems}. Use only the cluster's figures, or list the offer under [agent] offers in the settings"
    )]
    Ungrounded {
        path: String,
        segment: String,
        problems: String,
    },
    #[error("{path}: template for `{segment}.{field}` does not render: {detail}")]
    Render {
        path: String,
        segment: String,
        field: &'static str,
        detail: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentTemplates {
    strategy: String,
    channels: Vec<String>,
    subject: String,
    preheader: String,
    body: String,
}

/// The LLM's instructions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LlmTemplates {
    system: String,
    user: String,
    regenerate: String,
}

/// Rendered texts for one cluster.
pub struct Rendered {
    /// The figures the templates could quote (grounding allows exactly these numbers).
    pub allowed: Vec<f64>,
    pub strategy: String,
    pub channels: Vec<String>,
    pub email: Email,
}

/// Loaded templates.
pub struct Prompts {
    origin: String,
    segments: BTreeMap<String, SegmentTemplates>,
    llm: LlmTemplates,
    llm_origin: String,
    currency: String,
    frequency_unit: &'static str,
}

/// The built-in text of `segments.toml` or `llm.toml`.
pub fn built_in_text(name: &str) -> &'static str {
    if name == "llm.toml" {
        BUILT_IN_LLM
    } else {
        BUILT_IN
    }
}

impl Prompts {
    /// The copies built into the binary.
    pub fn built_in() -> Prompts {
        Self::parse(
            (BUILT_IN, "<built-in prompts>"),
            (BUILT_IN_LLM, "<built-in llm prompts>"),
        )
        .expect("built-in prompts parse")
    }

    /// `dir/segments.toml`, and `dir/llm.toml` when present (else the built-in one).
    pub fn from_dir(dir: &Path) -> Result<Prompts, PromptsError> {
        let read = |name: &str| {
            let path = dir.join(name);
            let origin = path.display().to_string();
            std::fs::read_to_string(&path)
                .map(|text| (text, origin.clone()))
                .map_err(|e| PromptsError::Read {
                    path: origin,
                    detail: e.to_string(),
                })
        };
        let (segments, origin) = read("segments.toml")?;
        let (llm, llm_origin) = if dir.join("llm.toml").exists() {
            read("llm.toml")?
        } else {
            (
                BUILT_IN_LLM.to_string(),
                "<built-in llm prompts>".to_string(),
            )
        };
        Self::parse((&segments, &origin), (&llm, &llm_origin))
    }

    fn parse(
        (text, origin): (&str, &str),
        (llm_text, llm_origin): (&str, &str),
    ) -> Result<Prompts, PromptsError> {
        let toml_error = |path: &str, e: toml::de::Error| PromptsError::Read {
            path: path.to_string(),
            detail: e.to_string(),
        };
        let segments = toml::from_str(text).map_err(|e| toml_error(origin, e))?;
        let llm = toml::from_str(llm_text).map_err(|e| toml_error(llm_origin, e))?;
        let prompts = Prompts {
            origin: origin.to_string(),
            segments,
            llm,
            llm_origin: llm_origin.to_string(),
            currency: String::new(),
            frequency_unit: "orders",
        };
        prompts.validate(!origin.starts_with("<built-in"))?;
        Ok(prompts)
    }

    /// Every catalogue segment has templates, and each of them compiles.
    /// A user's templates (`user`) must also keep to the safe subset of the language.
    fn validate(&self, user: bool) -> Result<(), PromptsError> {
        let env = Environment::new();
        let check = |text: &str| -> Result<(), minijinja::Error> {
            env.template_from_str(text)?;
            if user {
                rfm_llm::templates::check_user_template(text).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e)
                })?;
            }
            Ok(())
        };
        for seg in &super::CATALOGUE {
            let t = self.templates(seg.key)?;
            for (field, text) in [
                ("strategy", &t.strategy),
                ("subject", &t.subject),
                ("preheader", &t.preheader),
                ("body", &t.body),
            ] {
                check(text).map_err(|e| self.render_error(seg.key, field, e))?;
            }
        }
        for (field, text) in [
            ("system", &self.llm.system),
            ("user", &self.llm.user),
            ("regenerate", &self.llm.regenerate),
        ] {
            check(text).map_err(|e| self.llm_error(field, e))?;
        }
        Ok(())
    }

    fn llm_error(&self, field: &'static str, e: minijinja::Error) -> PromptsError {
        PromptsError::Render {
            path: self.llm_origin.clone(),
            segment: "llm".into(),
            field,
            detail: e.to_string(),
        }
    }

    /// Renders one of the LLM templates (`system`, `user`, `regenerate`).
    pub fn render_llm(
        &self,
        field: &'static str,
        ctx: minijinja::Value,
    ) -> Result<String, PromptsError> {
        let template = match field {
            "system" => &self.llm.system,
            "user" => &self.llm.user,
            _ => &self.llm.regenerate,
        };
        rfm_llm::templates::render(template, ctx).map_err(|e| self.llm_error(field, e))
    }

    /// Quotes money with `symbol`.
    pub fn with_currency(mut self, symbol: &str) -> Prompts {
        self.currency = symbol.to_string();
        self
    }

    /// Names what Frequency counts: "orders", or "order lines" with `--frequency lines`.
    pub fn with_frequency(mut self, f: rfm_core::rfm::Frequency) -> Prompts {
        self.frequency_unit = match f {
            rfm_core::rfm::Frequency::Invoices => "orders",
            rfm_core::rfm::Frequency::Lines => "order lines",
        };
        self
    }

    /// What Frequency counts, as the templates say it.
    pub fn frequency_unit(&self) -> &'static str {
        self.frequency_unit
    }

    /// The currency symbol figures are quoted with.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    fn templates(&self, key: &str) -> Result<&SegmentTemplates, PromptsError> {
        self.segments.get(key).ok_or_else(|| PromptsError::Missing {
            path: self.origin.clone(),
            segment: key.to_string(),
        })
    }

    fn render_error(&self, key: &str, field: &'static str, e: minijinja::Error) -> PromptsError {
        PromptsError::Render {
            path: self.origin.clone(),
            segment: key.to_string(),
            field,
            detail: e.to_string(),
        }
    }

    /// Where the templates came from, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn render(&self, segment: &Segment, c: &ClusterSummary) -> Result<Rendered, PromptsError> {
        let t = self.templates(segment.key)?;
        let figures = figures(c);
        let ctx = context! {
            name => segment.name,
            currency => self.currency.as_str(),
            frequency_unit => self.frequency_unit,
            first_name => "{{first_name}}",
            ..figures_context(&figures)
        };
        let render = |field: &'static str, template: &str| {
            rfm_llm::templates::render(template, ctx.clone())
                .map_err(|e| self.render_error(segment.key, field, e))
        };
        Ok(Rendered {
            allowed: allowed_numbers(&figures),
            strategy: render("strategy", &t.strategy)?,
            channels: t.channels.clone(),
            email: Email {
                subject: render("subject", &t.subject)?,
                preheader: render("preheader", &t.preheader)?,
                body: render("body", &t.body)?,
                ..Email::default()
            },
        })
    }
}

/// The cluster's figures that copy may quote, by template variable, as they are written.
pub fn figures(c: &ClusterSummary) -> [(&'static str, String); 7] {
    [
        ("customers", c.size.to_string()),
        ("share_pct", format!("{:.0}", c.share * 100.0)),
        ("revenue", format!("{:.2}", c.revenue)),
        (
            "revenue_share_pct",
            format!("{:.0}", c.revenue_share * 100.0),
        ),
        ("recency_days", format!("{:.0}", c.recency.median)),
        ("frequency", format!("{:.0}", c.frequency.median)),
        ("monetary", format!("{:.2}", c.monetary.median)),
    ]
}

/// The figures as template variables.
pub fn figures_context(figures: &[(&'static str, String)]) -> minijinja::Value {
    let map: BTreeMap<String, String> = figures
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    minijinja::Value::from(map)
}

/// The numbers grounding allows: exactly the figures.
pub fn allowed_numbers(figures: &[(&'static str, String)]) -> Vec<f64> {
    figures
        .iter()
        .flat_map(|(_, f)| super::grounding::numbers(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::CATALOGUE;

    #[test]
    fn built_in_prompts_cover_the_catalogue() {
        let p = Prompts::built_in();
        for s in &CATALOGUE {
            assert!(p.segments.contains_key(s.key), "{}", s.key);
        }
    }
}
