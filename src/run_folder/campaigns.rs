//! `campaigns.json`: the agent's campaign for every cluster and what the run cost.

use serde::{Deserialize, Serialize};

use crate::agent::{Campaign, RunSummary};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Campaigns {
    pub summary: RunSummary,
    pub campaigns: Vec<Campaign>,
}
