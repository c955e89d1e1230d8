//! Campaign templates: `prompts/segments.toml` (minijinja strings per segment), embedded in
//! the binary and overridable with `--prompts DIR`.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, context};
use serde::Deserialize;

use super::Email;
use super::segments::Segment;
use crate::cluster::ClusterSummary;

const BUILT_IN: &str = include_str!("../../prompts/segments.toml");

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
    currency: String,
}

impl Prompts {
    /// The copies built into the binary.
    pub fn built_in() -> Prompts {
        Self::parse(BUILT_IN, "<built-in prompts>").expect("built-in prompts parse")
    }

    /// `dir/segments.toml`.
    pub fn from_dir(dir: &Path) -> Result<Prompts, PromptsError> {
        let path = dir.join("segments.toml");
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| PromptsError::Read {
            path: origin.clone(),
            detail: e.to_string(),
        })?;
        Self::parse(&text, &origin)
    }

    fn parse(text: &str, origin: &str) -> Result<Prompts, PromptsError> {
        let segments = toml::from_str(text).map_err(|e| PromptsError::Read {
            path: origin.to_string(),
            detail: e.to_string(),
        })?;
        let prompts = Prompts {
            origin: origin.to_string(),
            segments,
            currency: String::new(),
        };
        prompts.validate()?;
        Ok(prompts)
    }

    /// Every catalogue segment has templates, and each of them compiles.
    fn validate(&self) -> Result<(), PromptsError> {
        let env = Environment::new();
        for seg in &super::CATALOGUE {
            let t = self.templates(seg.key)?;
            for (field, text) in [
                ("strategy", &t.strategy),
                ("subject", &t.subject),
                ("preheader", &t.preheader),
                ("body", &t.body),
            ] {
                env.template_from_str(text)
                    .map_err(|e| self.render_error(seg.key, field, e))?;
            }
        }
        Ok(())
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
        let env = Environment::new();
        let figures = [
            c.size.to_string(),
            format!("{:.0}", c.share * 100.0),
            format!("{:.2}", c.revenue),
            format!("{:.0}", c.revenue_share * 100.0),
            format!("{:.0}", c.recency.median),
            format!("{:.0}", c.frequency.median),
            format!("{:.2}", c.monetary.median),
        ];
        let ctx = context! {
            name => segment.name,
            customers => &figures[0],
            share_pct => &figures[1],
            revenue => &figures[2],
            revenue_share_pct => &figures[3],
            recency_days => &figures[4],
            frequency => &figures[5],
            monetary => &figures[6],
            currency => self.currency.as_str(),
            first_name => "{{first_name}}",
        };
        let render = |field: &'static str, template: &str| {
            env.render_str(template, &ctx)
                .map_err(|e| self.render_error(segment.key, field, e))
        };
        Ok(Rendered {
            allowed: figures
                .iter()
                .flat_map(|f| super::grounding::numbers(f))
                .collect(),
            strategy: render("strategy", &t.strategy)?,
            channels: t.channels.clone(),
            email: Email {
                subject: render("subject", &t.subject)?,
                preheader: render("preheader", &t.preheader)?,
                body: render("body", &t.body)?,
            },
        })
    }
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
