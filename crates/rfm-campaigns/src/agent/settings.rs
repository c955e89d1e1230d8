//! The agent's settings: the `[agent]` section.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Offers campaign copy may make, e.g. "free shipping", "10 % off".
    pub offers: Vec<String>,
    /// Sender of every email, added by code (never written by the LLM).
    pub sender: String,
    /// Footer added by code to every email; `{{unsubscribe_url}}` is left for the email tool.
    pub footer: String,
    /// The channels a campaign may name; an LLM answer naming another is refused.
    pub channels: Vec<String>,
    /// Links copy may carry (prefixes, e.g. "https://shop.example.com"); none by default.
    pub urls: Vec<String>,
    /// The language of the campaigns the agent writes: en, de, fr, es or it.
    pub locale: String,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            offers: Vec::new(),
            sender: "Your Shop <hello@example.com>".into(),
            footer: "You receive this email because you bought from us. Unsubscribe: {{unsubscribe_url}}".into(),
            channels: [
                "email",
                "SMS",
                "push",
                "direct mail",
                "phone",
                "retargeting",
                "loyalty programme",
                "social media",
            ]
            .map(String::from)
            .to_vec(),
            urls: Vec::new(),
            locale: "en".into(),
        }
    }
}

/// Why the `[agent]` section cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentSettingsError {
    #[error("agent.locale `{0}` is not a language the agent writes in; use en, de, fr, es or it")]
    Locale(String),
}

impl AgentSettings {
    /// Checks the section: the locale is one the agent writes in.
    pub fn check(&self) -> Result<(), AgentSettingsError> {
        match super::gate::language(&self.locale) {
            Some(_) => Ok(()),
            None => Err(AgentSettingsError::Locale(self.locale.clone())),
        }
    }
}
