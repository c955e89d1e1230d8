//! The LLM agent: asks the configured backend for each cluster's name, strategy and email,
//! checks the answer against the schema and the grounding rules, asks once more naming what
//! was wrong, and otherwise falls back to the rule agent's campaign for that cluster.

use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::gate;
use super::grounding::{self, MAX_SUBJECT};
use super::prompts::{allowed_numbers, figures, figures_context};
use super::segments::Segment;
use super::{Campaign, Email, Prompts};
use crate::cluster::ClusterSummary;
use crate::llm::{ChatRequest, Client, LlmError, Message, Role};
use crate::settings::AgentSettings;

/// The JSON schema every answer must follow (strict: all fields required, no others).
pub fn schema() -> serde_json::Value {
    let text = json!({"type": "string"});
    json!({
        "type": "object",
        "properties": {
            "name": text,
            "rationale": text,
            "strategy": text,
            "channels": {"type": "array", "items": text},
            "email": {
                "type": "object",
                "properties": {"subject": text, "preheader": text, "body": text},
                "required": ["subject", "preheader", "body"],
                "additionalProperties": false
            }
        },
        "required": ["name", "rationale", "strategy", "channels", "email"],
        "additionalProperties": false
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    name: String,
    rationale: String,
    strategy: String,
    channels: Vec<String>,
    email: AnswerEmail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerEmail {
    subject: String,
    preheader: String,
    body: String,
}

/// What one cluster needs for its request and checks.
pub struct Brief<'a> {
    pub cluster: &'a ClusterSummary,
    pub segment: &'static Segment,
    pub rule: &'a Campaign,
    /// The predictive models' figures for the cluster, when they were fitted.
    pub outlook: Option<super::Outlook>,
    /// Names the other clusters have (the LLM may not reuse them).
    pub taken: Vec<String>,
}

/// Parses and checks an answer: the content gate, then grounding. The problems are written
/// for the model to fix, each led by its violation's name.
fn check(
    text: &str,
    brief: &Brief,
    agent: &AgentSettings,
    instructions: &str,
) -> Result<Answer, Vec<String>> {
    let answer: Answer = serde_json::from_str(text.trim()).map_err(|e| {
        vec![format!(
            "not_json: the answer is not JSON that follows the schema: {e}"
        )]
    })?;
    // The brief's figures, and the percentiles the rule agent's rationale quotes.
    let mut allowed = allowed_numbers(&brief_figures(brief));
    allowed.extend(grounding::numbers(&brief.rule.rationale));
    let e = &answer.email;
    let draft = gate::Draft {
        name: answer.name.trim(),
        rationale: &answer.rationale,
        strategy: &answer.strategy,
        channels: &answer.channels,
        subject: &e.subject,
        preheader: &e.preheader,
        body: &e.body,
    };
    let rules = gate::Rules {
        channels: &agent.channels,
        taken: &brief.taken,
        figures: &allowed,
        language: gate::language(&agent.locale).unwrap_or(whatlang::Lang::Eng),
        urls: &agent.urls,
        instructions,
    };
    let mut problems: Vec<String> = gate::check(&draft, &rules)
        .iter()
        .map(ToString::to_string)
        .collect();
    for v in grounding::check(&e.subject, &e.preheader, &e.body, &allowed, &agent.offers) {
        problems.push(format!("ungrounded: email.{}: {}", v.field, v.problem));
    }
    if problems.is_empty() {
        Ok(answer)
    } else {
        Err(problems)
    }
}

/// The cluster's figures and, when the models were fitted, its predicted ones: what the
/// prompt gives and grounding accepts.
fn brief_figures(brief: &Brief<'_>) -> Vec<(&'static str, String)> {
    let mut all = figures(brief.cluster).to_vec();
    if let Some(o) = &brief.outlook {
        all.extend(o.figures());
    }
    all
}

fn request(
    prompts: &Prompts,
    agent: &AgentSettings,
    brief: &Brief<'_>,
) -> Result<ChatRequest, String> {
    let figures = brief_figures(brief);
    let ctx = context! {
        name => brief.segment.name,
        meaning => brief.segment.meaning,
        rule_rationale => &brief.rule.rationale,
        currency => prompts.currency(),
        frequency_unit => prompts.frequency_unit(),
        offers => agent.offers.clone(),
        channels => agent.channels.clone(),
        taken_names => brief.taken.clone(),
        max_subject => MAX_SUBJECT,
        ..figures_context(&figures)
    };
    let render = |field| {
        prompts
            .render_llm(field, ctx.clone())
            .map_err(|e| e.to_string())
    };
    Ok(ChatRequest {
        system: render("system")?,
        messages: vec![Message {
            role: Role::User,
            content: render("user")?,
        }],
        schema_name: "campaign".into(),
        schema: schema(),
        temperature: 0.0,
        max_tokens: 0,
    })
}

/// The checked answer as the cluster's campaign.
fn campaign(brief: &Brief<'_>, a: Answer) -> Campaign {
    Campaign {
        cluster: brief.cluster.id,
        name: a.name.trim().to_string(),
        rationale: a.rationale,
        strategy: a.strategy,
        channels: a.channels,
        email: Email {
            subject: a.email.subject,
            preheader: a.email.preheader,
            body: a.email.body,
            ..Email::default()
        },
        source: super::CopySource::Llm,
        fallback_reason: None,
    }
}

/// Writes one cluster's campaign with the LLM; `Err` only for errors that stop the run.
pub async fn write(
    client: &Client,
    prompts: &Prompts,
    agent: &AgentSettings,
    temperature: f32,
    max_tokens: u32,
    brief: &Brief<'_>,
) -> Result<Campaign, LlmError> {
    let mut req = match request(prompts, agent, brief) {
        Ok(req) => ChatRequest {
            temperature,
            max_tokens,
            ..req
        },
        Err(e) => return Ok(fallback(brief.rule, e)),
    };
    for attempt in 0..2 {
        let resp = match client.complete(&req).await {
            Ok(r) => r,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => return Ok(fallback(brief.rule, e.to_string())),
        };
        match check(&resp.text, brief, agent, &req.system) {
            Ok(a) => return Ok(campaign(brief, a)),
            Err(problems) if attempt == 0 => {
                tracing::info!(
                    "cluster {}: asking again: {}",
                    brief.cluster.id,
                    problems.join("; ")
                );
                let again = prompts
                    .render_llm("regenerate", context! { problems => &problems })
                    .map_err(|e| LlmError::Malformed(e.to_string()));
                let again = match again {
                    Ok(a) => a,
                    Err(e) => return Ok(fallback(brief.rule, e.to_string())),
                };
                req.ask_again(resp.text, again);
            }
            Err(problems) => {
                return Ok(fallback(
                    brief.rule,
                    format!(
                        "still invalid after one regeneration: {}",
                        problems.join("; ")
                    ),
                ));
            }
        }
    }
    unreachable!("the loop returns on its second pass")
}

/// The rule agent's campaign, marked as a fall-back with its reason.
pub fn fallback(rule: &Campaign, reason: String) -> Campaign {
    tracing::warn!(
        "cluster {}: using the rule-based campaign: {reason}",
        rule.cluster
    );
    Campaign {
        source: super::CopySource::Fallback,
        fallback_reason: Some(reason),
        ..rule.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{CATALOGUE, CopySource, Outlook};
    use crate::cluster::{Centroid, Stat};

    /// Grounding accepts the models' per-cluster figures when the brief has them, and
    /// only then.
    #[test]
    fn predicted_figures_are_grounded_only_when_given() {
        let stat = |m: f64| Stat { mean: m, median: m };
        let cluster = ClusterSummary {
            id: 0,
            size: 120,
            share: 0.3,
            revenue: 5000.0,
            revenue_share: 0.5,
            recency: stat(20.0),
            frequency: stat(4.0),
            monetary: stat(300.0),
            centroid: Centroid {
                recency: 20.0,
                frequency: 4.0,
                monetary: 300.0,
            },
        };
        let rule = Campaign {
            cluster: 0,
            name: "Loyal Customers".into(),
            rationale: "Loyal.".into(),
            strategy: String::new(),
            channels: vec![],
            email: Email::default(),
            source: CopySource::Rules,
            fallback_reason: None,
        };
        let outlook = Outlook {
            p_alive: 0.62,
            purchases_each: 1.4,
            expected_revenue: 2345.5,
            clv: 2300.0,
            horizon_days: 90,
        };
        let answer = r#"{"name": "Steady Buyers", "rationale": "62 % still active.",
            "strategy": "Thank them with early access.", "channels": ["email"], "email": {"subject": "Thank you",
            "preheader": "", "body": "Hi {{first_name}}, 62 % of our regulars will buy 1.4 times in the next 90 days, and we would love you to be one of them when the new season arrives."}}"#;
        let brief = |outlook| Brief {
            cluster: &cluster,
            segment: &CATALOGUE[1],
            rule: &rule,
            outlook,
            taken: vec![],
        };
        let agent = AgentSettings::default();
        assert_eq!(check(answer, &brief(Some(outlook)), &agent, "").err(), None);
        let problems = check(answer, &brief(None), &agent, "").unwrap_err();
        assert!(problems.iter().any(|p| p.contains("62")), "{problems:?}");
    }
}
