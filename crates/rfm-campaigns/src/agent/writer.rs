//! The LLM agent: asks the configured backend for each cluster's name, strategy and email
//! through the validated ask ([`rfm_llm::ask`]), and falls back to the rule agent's
//! campaign for that cluster when no answer passes.

use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::AgentSettings;
use super::gate::{self, Message, Plan};
use super::grounding::{self, MAX_SUBJECT};
use super::prompts::{allowed_numbers, figures, figures_context};
use super::segments::Segment;
use super::{Campaign, Email, Prompts};
use rfm_core::cluster::ClusterSummary;
use rfm_llm::ask::{self, Fallback, Problem};
use rfm_llm::schema::{object, text};
use rfm_llm::{ChatRequest, Client, LlmError, Message as ChatMessage, Role};

/// Most channels an answer may name.
const MAX_CHANNELS: usize = 3;

/// The JSON schema every answer must follow: all fields required, no others, each text
/// within the lengths the gate accepts, channels from `channels`.
pub fn schema(channels: &[String]) -> serde_json::Value {
    let channel = json!({"type": "string", "enum": channels});
    object(&[
        ("name", text(2, gate::MAX_NAME)),
        ("rationale", text(20, 250)),
        ("strategy", text(20, 300)),
        (
            "channels",
            json!({"type": "array", "items": channel, "minItems": 1, "maxItems": MAX_CHANNELS}),
        ),
        ("email", gate::email_schema()),
    ])
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

/// How the agent judges an answer: the content gate, then grounding.
struct Judge<'a> {
    brief: &'a Brief<'a>,
    agent: &'a AgentSettings,
    prompts: &'a Prompts,
}

impl ask::Check for Judge<'_> {
    type Answer = Answer;

    fn check(&self, text: &str, req: &ChatRequest) -> Result<Answer, Vec<Problem>> {
        check(text, self.brief, self.agent, &req.system)
    }

    fn regenerate(&self, problems: &[Problem]) -> Result<String, String> {
        let lines: Vec<String> = problems.iter().map(|p| p.text.clone()).collect();
        self.prompts
            .render_llm("regenerate", context! { problems => lines })
            .map_err(|e| e.to_string())
    }
}

/// Parses and checks an answer. The problems are written for the model to fix, each led
/// by its violation's name.
fn check(
    text: &str,
    brief: &Brief,
    agent: &AgentSettings,
    instructions: &str,
) -> Result<Answer, Vec<Problem>> {
    let answer: Answer = serde_json::from_str(text.trim()).map_err(|e| {
        vec![Problem::new(
            "not_json",
            format!("the answer is not JSON that follows the schema: {e}"),
        )]
    })?;
    // The brief's figures, and the percentiles the rule agent's rationale quotes.
    let mut allowed = allowed_numbers(&brief_figures(brief));
    allowed.extend(grounding::numbers(&brief.rule.rationale));
    let e = &answer.email;
    let draft = gate::Draft {
        plan: Some(Plan {
            name: answer.name.trim(),
            rationale: &answer.rationale,
            strategy: &answer.strategy,
            channels: &answer.channels,
        }),
        message: Message::Email {
            subject: &e.subject,
            preheader: &e.preheader,
            body: &e.body,
        },
    };
    let rules = gate::Rules {
        channels: &agent.channels,
        taken: &brief.taken,
        figures: &allowed,
        language: gate::language(&agent.locale),
        urls: &agent.urls,
        instructions,
    };
    let problems = gate::problems(&draft, &rules, &allowed, &agent.offers);
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
    temperature: f32,
    max_tokens: u32,
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
        language => gate::language(&agent.locale).map_or("English", |l| l.eng_name()),
        ..figures_context(&figures)
    };
    let render = |field| {
        prompts
            .render_llm(field, ctx.clone())
            .map_err(|e| e.to_string())
    };
    let schema = schema(&agent.channels);
    Ok(ChatRequest {
        system: render("system")?,
        messages: vec![ChatMessage {
            role: Role::User,
            content: render("user")?,
        }],
        schema_name: "campaign".into(),
        max_tokens,
        schema,
        temperature,
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
        fallback: None,
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
    let req = request(prompts, agent, brief, temperature, max_tokens);
    let judge = Judge {
        brief,
        agent,
        prompts,
    };
    Ok(match ask::ask(client, req, &judge).await?.answer {
        Ok(a) => campaign(brief, a),
        Err(why) => fallback(brief.rule, why),
    })
}

/// The rule agent's campaign, marked as a fall-back with its reason.
pub fn fallback(rule: &Campaign, why: Fallback) -> Campaign {
    tracing::warn!(
        "cluster {}: using the rule-based campaign: {why}",
        rule.cluster
    );
    Campaign {
        source: super::CopySource::Fallback,
        fallback: Some(why),
        ..rule.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{CATALOGUE, CopySource, Outlook};
    use rfm_core::cluster::{Centroid, Stat};

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
            fallback: None,
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
        assert!(
            problems
                .iter()
                .any(|p| p.code == "ungrounded" && p.text.contains("62")),
            "{problems:?}"
        );
    }
}
