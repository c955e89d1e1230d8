//! rfm-campaigns: what the agent writes for each segment. The deterministic [`agent`] names
//! the clusters and drafts the campaigns (or the LLM writes them, behind the content gate and
//! the grounding checks); [`batch`] writes copy per segment, channel, locale, tone and variant.

pub mod agent;
pub mod batch;
