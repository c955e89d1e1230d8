//! The predictive models' settings: the `[predict]` section.

use serde::{Deserialize, Serialize};

/// The predictive models: fitted by `segment`, `agent` and the service when the data
/// allow, and by `rfm-agent clv`, which needs them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PredictSettings {
    /// Fit the models in segment runs (`--no-predict` turns it off).
    pub enabled: bool,
    /// The run fails when the models cannot be fitted (`clv`); otherwise it goes on and
    /// says why the predictions are missing.
    #[serde(skip)]
    pub required: bool,
    /// day | week
    pub period: crate::rfm::histories::Period,
    /// Empty = no hold-out: the models are fitted up to the snapshot.
    pub calibration_end: String,
    /// Days ahead that expected purchases and CLV cover.
    pub horizon_days: u32,
    /// Monthly discount rate of the CLV.
    pub discount_rate: f64,
    /// L2 penalty on the parameters, as `lifetimes`' `penalizer_coef`.
    pub penalizer: f64,
}

impl Default for PredictSettings {
    fn default() -> Self {
        PredictSettings {
            enabled: true,
            required: false,
            period: Default::default(),
            calibration_end: String::new(),
            horizon_days: 90,
            discount_rate: 0.01,
            penalizer: 0.0,
        }
    }
}
