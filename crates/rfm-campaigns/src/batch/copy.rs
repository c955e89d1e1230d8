//! Copy for one batch item: offline from the templates in `prompts/batch.toml`, or from the
//! LLM through the validated ask ([`rfm_llm::ask`]), judged by the content gate for the
//! item's channel and locale and by grounding, with the offline copy as the fall-back.

use crate::agent::CopySource;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::Item;
use crate::agent::AgentSettings;
use crate::agent::channels::{Channel, PUSH_BODY_MAX, PUSH_TITLE_MAX, SMS_MAX};
use crate::agent::gate::{self, Message};
use crate::agent::prompts::{allowed_numbers, figures, figures_context};
use rfm_core::cluster::ClusterSummary;
use rfm_llm::ask::{self, Fallback, Problem};
use rfm_llm::schema::{object, text};
use rfm_llm::{ChatRequest, Client, LlmError, Message as ChatMessage, Role};

const BUILT_IN: &str = include_str!("../../../../prompts/batch.toml");

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
        rfm_llm::templates::render(template, ctx.clone())
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

/// The answer schema for a channel, within the content gate's lengths.
pub fn schema(channel: Channel) -> serde_json::Value {
    match channel {
        Channel::Email => gate::email_schema(),
        Channel::Sms => object(&[("text", text(20, SMS_MAX))]),
        Channel::Push => object(&[
            ("title", text(5, PUSH_TITLE_MAX)),
            ("body", text(10, PUSH_BODY_MAX)),
        ]),
    }
}

/// Parses an answer for `channel`.
fn parse(channel: Channel, text: &str) -> Result<Copy, Problem> {
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| Problem::new("not_json", format!("the answer is not JSON: {e}")))?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    match channel {
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
    .ok_or_else(|| {
        Problem::new(
            "not_json",
            format!("the answer does not follow the {channel} schema"),
        )
    })
}

/// How batch judges an item's answer: the content gate for its channel and locale, then
/// grounding.
pub struct Judge<'a> {
    pub channel: Channel,
    pub locale: &'a str,
    pub cluster: &'a ClusterSummary,
    pub agent: &'a AgentSettings,
    pub templates: &'a Templates,
}

impl ask::Check for Judge<'_> {
    type Answer = Copy;

    fn check(&self, text: &str, req: &ChatRequest) -> Result<Copy, Vec<Problem>> {
        let copy = parse(self.channel, text).map_err(|p| vec![p])?;
        let message = match &copy {
            Copy::Email {
                subject,
                preheader,
                body,
            } => Message::Email {
                subject,
                preheader,
                body,
            },
            Copy::Sms { text } => Message::Sms { text },
            Copy::Push { title, body } => Message::Push { title, body },
        };
        let allowed = allowed_numbers(&figures(self.cluster));
        let rules = gate::Rules {
            channels: &[],
            taken: &[],
            figures: &allowed,
            language: gate::language(self.locale),
            urls: &self.agent.urls,
            instructions: &req.system,
        };
        let draft = gate::Draft {
            plan: None,
            message,
        };
        let problems = gate::problems(&draft, &rules, &allowed, &self.agent.offers);
        if problems.is_empty() {
            Ok(copy)
        } else {
            Err(problems)
        }
    }

    fn regenerate(&self, problems: &[Problem]) -> Result<String, String> {
        let lines: Vec<String> = problems.iter().map(|p| p.text.clone()).collect();
        let t = self.templates;
        t.render(&t.t.regenerate, &context! { problems => lines })
            .map_err(|e| format!("{e:#}"))
    }
}

/// What the LLM path produced for one item.
pub struct Written {
    pub copy: Copy,
    pub source: CopySource,
    pub fallback: Option<Fallback>,
    /// The names of the problems of every refused answer.
    pub violations: Vec<String>,
    pub tokens: u64,
}

/// The item's request from the templates.
fn request(
    templates: &Templates,
    item: &Item,
    variants: u32,
    c: &ClusterSummary,
    offers: &[String],
    (temperature, max_tokens): (f32, u32),
) -> Result<ChatRequest, String> {
    let ctx = (templates.context(item, variants, c, offers)).map_err(|e| e.to_string())?;
    let system = (templates.render(&templates.t.system, &ctx)).map_err(|e| e.to_string())?;
    let user = (templates.render(&templates.t.user, &ctx)).map_err(|e| e.to_string())?;
    let schema = schema(item.channel);
    Ok(ChatRequest {
        system,
        messages: vec![ChatMessage {
            role: Role::User,
            content: user,
        }],
        schema_name: format!("{}_copy", item.channel),
        max_tokens,
        schema,
        temperature,
    })
}

/// Writes one item with the LLM; `Err` only for errors that stop the run.
pub async fn write(
    client: &Client,
    judge: &Judge<'_>,
    item: &Item,
    variants: u32,
    llm: (f32, u32),
) -> Result<Written, LlmError> {
    let (templates, offers) = (judge.templates, &judge.agent.offers);
    let req = request(templates, item, variants, judge.cluster, offers, llm);
    let asked = ask::ask(client, req, judge).await?;
    let violations = asked.refused;
    let (copy, source, fallback) = match asked.answer {
        Ok(copy) => (copy, CopySource::Llm, None),
        Err(why) => {
            let copy = templates
                .rules_copy(item, judge.cluster, offers)
                .map_err(|e| LlmError::Malformed(e.to_string()))?;
            (copy, CopySource::Fallback, Some(why))
        }
    };
    Ok(Written {
        copy,
        source,
        fallback,
        violations,
        tokens: asked.tokens,
    })
}
