//! The options of one run that the command line and the API both take, laid over the
//! settings in one place.

use rfm_core::clean::Returns;
use rfm_core::options::{KChoice, KRange};
use rfm_core::rfm::Frequency;

use super::{Backend, Settings};

/// The options of one run that the command line and the API both take, each already
/// checked; `None` keeps the setting. [`RunOptions::apply`] is the one place they meet the
/// settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    pub k: Option<KChoice>,
    pub k_range: Option<KRange>,
    pub frequency: Option<Frequency>,
    pub returns: Option<Returns>,
    pub drop_zero_price: bool,
    pub snapshot: Option<String>,
    /// `ROLE=COLUMN,…` overrides of the column mapping.
    pub columns: Option<String>,
    pub preset: Option<rfm_core::ingest::PresetChoice>,
    pub currency: Option<rfm_core::ingest::CurrencyChoice>,
    pub llm: Option<Backend>,
    pub seed: Option<u64>,
    pub n_init: Option<usize>,
    pub max_iter: Option<usize>,
    /// Fit the predictive models (`false`: `--no-predict`).
    pub predict: Option<bool>,
}

impl RunOptions {
    /// Lays the options over `s`. Only the column mapping can fail (an unknown role).
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        if let Some(spec) = &self.columns {
            s.input.columns.apply_overrides(spec)?;
        }
        s.input.preset = self.preset.unwrap_or(s.input.preset);
        if let Some(c) = &self.currency {
            s.input.currency = c.clone();
        }
        s.clean.returns = self.returns.unwrap_or(s.clean.returns);
        s.clean.drop_zero_price |= self.drop_zero_price;
        s.rfm.frequency = self.frequency.unwrap_or(s.rfm.frequency);
        if let Some(v) = &self.snapshot {
            s.rfm.snapshot = v.clone();
        }
        let c = &mut s.cluster;
        c.k = self.k.unwrap_or(c.k);
        if let Some(r) = self.k_range {
            (c.k_min, c.k_max) = (r.min, r.max);
        }
        c.seed = self.seed.unwrap_or(c.seed);
        c.n_init = self.n_init.unwrap_or(c.n_init);
        c.max_iter = self.max_iter.unwrap_or(c.max_iter);
        s.llm.backend = self.llm.unwrap_or(s.llm.backend);
        s.predict.enabled = self.predict.unwrap_or(s.predict.enabled);
        Ok(())
    }
}
