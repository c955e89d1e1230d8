//! Copy for one batch item: offline from the templates in `prompts/batch.toml`, or from the
//! LLM with the agent's grounding checks plus the channel's rules, one regeneration naming
//! the problems, then the offline copy as the fall-back.

use crate::agent::CopySource;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Item;
use super::channels::{Channel, check_push, check_sms};
use crate::agent::grounding;
use crate::agent::prompts::{allowed_numbers, figures, figures_context};
use crate::cluster::ClusterSummary;
use crate::llm::{ChatRequest, Client, LlmError, Message, Role};

const BUILT_IN: &str = include_str!("../../prompts/batch.toml");

/// The copy of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Copy {
    Email {
        subject: String,
        preheader: String,
        body: String,
    },
    Sms {
        text: String,
    },
    Push {
        title: String,
        body: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocaleTemplates {
    language: String,
    email_subject: Vec<String>,
    email_preheader: Vec<String>,
    email_body: Vec<String>,
    sms: Vec<String>,
    push_title: Vec<String>,
    push_body: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchTemplates {
    system: String,
    user: String,
    regenerate: String,
    rules: BTreeMap<String, LocaleTemplates>,
}

/// Loaded batch templates.
pub struct Templates {
    origin: String,
    t: BatchTemplates,
    currency: String,
    frequency_unit: &'static str,
}

impl Templates {
    pub fn load(
        dir: Option<&Path>,
        currency: &str,
        frequency_unit: &'static str,
    ) -> anyhow::Result<Templates> {
        let (text, origin) = match dir.map(|d| d.join("batch.toml")).filter(|p| p.exists()) {
            Some(p) => (std::fs::read_to_string(&p)?, p.display().to_string()),
            None => (BUILT_IN.to_string(), "<built-in batch prompts>".to_string()),
        };
        let t: BatchTemplates = toml::from_str(&text)
            .with_context(|| format!("{origin}: cannot read the batch templates"))?;
        Ok(Templates {
            origin,
            t,
            currency: currency.to_string(),
            frequency_unit,
        })
    }

    /// Locales with offline templates.
    pub fn locales(&self) -> Vec<String> {
        self.t.rules.keys().cloned().collect()
    }

    fn locale(&self, locale: &str) -> anyhow::Result<&LocaleTemplates> {
        self.t.rules.get(locale).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no templates for locale `{locale}`; add a [rules.{locale}] table or use one of: {}",
                self.origin,
                self.locales().join(", ")
            )
        })
    }

    fn context(
        &self,
        item: &Item,
        variants: u32,
        c: &ClusterSummary,
        offers: &[String],
    ) -> anyhow::Result<Value> {
        let f = figures(c);
        Ok(context! {
            segment => &item.segment,
            currency => &self.currency,
            frequency_unit => self.frequency_unit,
            channel => item.channel.to_string(),
            locale => &item.locale,
            language => &self.locale(&item.locale)?.language,
            tone => &item.tone,
            variant => item.variant,
            variants => variants,
            offers => offers.to_vec(),
            first_name => "{{first_name}}",
            ..figures_context(&f)
        })
    }

    fn render(&self, template: &str, ctx: &Value) -> anyhow::Result<String> {
        crate::templates::render(template, ctx.clone())
            .with_context(|| format!("{}: a template does not render", self.origin))
    }

    /// The offline copy for `item`.
    pub fn rules_copy(
        &self,
        item: &Item,
        c: &ClusterSummary,
        offers: &[String],
    ) -> anyhow::Result<Copy> {
        let l = self.locale(&item.locale)?;
        let ctx = self.context(item, 1, c, offers)?;
        let pick = |list: &[String]| -> anyhow::Result<String> {
            let t = list
                .get((item.variant as usize - 1) % list.len().max(1))
                .ok_or_else(|| anyhow::anyhow!("{}: an empty template list", self.origin))?;
            self.render(t, &ctx)
        };
        Ok(match item.channel {
            Channel::Email => Copy::Email {
                subject: pick(&l.email_subject)?,
                preheader: pick(&l.email_preheader)?,
                body: pick(&l.email_body)?,
            },
            Channel::Sms => Copy::Sms {
                text: pick(&l.sms)?,
            },
            Channel::Push => Copy::Push {
                title: pick(&l.push_title)?,
                body: pick(&l.push_body)?,
            },
        })
    }
}

/// The answer schema for a channel.
pub fn schema(channel: Channel) -> serde_json::Value {
    let text = json!({"type": "string"});
    let (props, required) = match channel {
        Channel::Email => (
            json!({"subject": text, "preheader": text, "body": text}),
            json!(["subject", "preheader", "body"]),
        ),
        Channel::Sms => (json!({"text": text}), json!(["text"])),
        Channel::Push => (
            json!({"title": text, "body": text}),
            json!(["title", "body"]),
        ),
    };
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// Parses an answer for `channel` and lists every rule it breaks.
pub fn check(
    channel: Channel,
    text: &str,
    c: &ClusterSummary,
    offers: &[String],
) -> Result<Copy, Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| vec![format!("the answer is not JSON: {e}")])?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let copy = match channel {
        Channel::Email => field("subject")
            .zip(field("body"))
            .map(|(subject, body)| Copy::Email {
                subject,
                preheader: field("preheader").unwrap_or_default(),
                body,
            }),
        Channel::Sms => field("text").map(|text| Copy::Sms { text }),
        Channel::Push => field("title")
            .zip(field("body"))
            .map(|(title, body)| Copy::Push { title, body }),
    }
    .ok_or_else(|| vec![format!("the answer does not follow the {channel} schema")])?;
    let allowed = allowed_numbers(&figures(c));
    let mut problems: Vec<String> = match &copy {
        Copy::Email {
            subject,
            preheader,
            body,
        } => {
            let mut p: Vec<String> = grounding::check(subject, preheader, body, &allowed, offers)
                .into_iter()
                .map(|v| format!("{}: {}", v.field, v.problem))
                .collect();
            if body.trim().is_empty() {
                p.push("the email body is empty".into());
            }
            p
        }
        Copy::Sms { text } => {
            let mut p = check_sms(text);
            p.extend(
                grounding::check("", "", text, &allowed, offers)
                    .into_iter()
                    .map(|v| v.problem),
            );
            p
        }
        Copy::Push { title, body } => {
            let mut p = check_push(title, body);
            p.extend(
                grounding::check(title, "", body, &allowed, offers)
                    .into_iter()
                    .map(|v| v.problem),
            );
            p
        }
    };
    problems.dedup();
    if problems.is_empty() {
        Ok(copy)
    } else {
        Err(problems)
    }
}

/// What the LLM path produced for one item.
pub struct Written {
    pub copy: Copy,
    pub source: CopySource,
    pub fallback_reason: Option<String>,
    pub violations: Vec<String>,
    pub tokens: u64,
}

/// The item's request from the templates (temperature and token limit left at zero).
fn request(
    templates: &Templates,
    item: &Item,
    variants: u32,
    c: &ClusterSummary,
    offers: &[String],
) -> Result<ChatRequest, String> {
    let ctx = (templates.context(item, variants, c, offers)).map_err(|e| e.to_string())?;
    let system = (templates.render(&templates.t.system, &ctx)).map_err(|e| e.to_string())?;
    let user = (templates.render(&templates.t.user, &ctx)).map_err(|e| e.to_string())?;
    Ok(ChatRequest {
        system,
        messages: vec![Message {
            role: Role::User,
            content: user,
        }],
        schema_name: format!("{}_copy", item.channel),
        schema: schema(item.channel),
        temperature: 0.0,
        max_tokens: 0,
    })
}

/// Writes one item with the LLM; `Err` only for errors that stop the run.
#[allow(clippy::too_many_arguments)]
pub async fn write(
    client: &Client,
    templates: &Templates,
    item: &Item,
    variants: u32,
    c: &ClusterSummary,
    offers: &[String],
    temperature: f32,
    max_tokens: u32,
) -> Result<Written, LlmError> {
    let fallback =
        |reason: String, violations: Vec<String>, tokens: u64| -> Result<Written, LlmError> {
            let copy = templates
                .rules_copy(item, c, offers)
                .map_err(|e| LlmError::Malformed(e.to_string()))?;
            Ok(Written {
                copy,
                source: CopySource::Fallback,
                fallback_reason: Some(reason),
                violations,
                tokens,
            })
        };
    let mut req = match request(templates, item, variants, c, offers) {
        Ok(req) => ChatRequest {
            temperature,
            max_tokens,
            ..req
        },
        Err(e) => return fallback(e, vec![], 0),
    };
    let mut tokens = 0;
    let mut violations = Vec::new();
    for attempt in 0..2 {
        let resp = match client.complete(&req).await {
            Ok(r) => r,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                return fallback(
                    e.to_string(),
                    violations,
                    tokens + e.usage().input_tokens + e.usage().output_tokens,
                );
            }
        };
        tokens += resp.usage.input_tokens + resp.usage.output_tokens;
        match check(item.channel, &resp.text, c, offers) {
            Ok(copy) => {
                return Ok(Written {
                    copy,
                    source: CopySource::Llm,
                    fallback_reason: None,
                    violations,
                    tokens,
                });
            }
            Err(problems) if attempt == 0 => {
                violations.extend(problems.iter().cloned());
                let again = templates
                    .render(&templates.t.regenerate, &context! { problems => &problems })
                    .unwrap_or_else(|_| problems.join("; "));
                req.ask_again(resp.text, again);
            }
            Err(problems) => {
                violations.extend(problems.iter().cloned());
                return fallback(
                    format!(
                        "still invalid after one regeneration: {}",
                        problems.join("; ")
                    ),
                    violations,
                    tokens,
                );
            }
        }
    }
    unreachable!("the loop returns on its second pass")
}
