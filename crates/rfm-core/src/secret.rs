//! A secret read from settings or the environment, never printed or serialised.

use serde::{Deserialize, Serialize};

/// An API key: read from settings, never printed or serialised.
#[derive(Clone, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct ApiKey(pub String);

impl ApiKey {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

impl Serialize for ApiKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Only the empty default is ever serialised (as the settings' bottom layer).
        s.serialize_str("")
    }
}
