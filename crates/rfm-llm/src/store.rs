//! Recorded exchanges on disk, one JSON file per request, named by a hash of the normalised
//! request (provider, model, messages, schema, temperature, token limit; never the key or
//! the base URL). The same files serve as fixtures for `--llm replay` and as the cache.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ChatRequest, ChatResponse};

/// One recorded exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    pub key: String,
    pub provider: String,
    pub model: String,
    pub request: ChatRequest,
    pub response: ChatResponse,
}

fn hash(parts: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(parts).expect("requests serialise");
    let digest = Sha256::digest(&bytes);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of a request to `provider`/`model`.
pub fn key(provider: &str, model: &str, req: &ChatRequest) -> String {
    hash(&(provider, model, req))
}

/// The key of a request's content alone (any provider, any model).
pub fn content_key(req: &ChatRequest) -> String {
    hash(req)
}

/// A folder of exchanges.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The exchange stored under `key`, if any (an unreadable file counts as absent).
    pub fn get(&self, key: &str) -> Option<Exchange> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores an exchange atomically: a file is either complete or absent.
    pub fn put(&self, exchange: &Exchange) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer_pretty(&mut tmp, exchange)?;
        std::io::Write::write_all(&mut tmp, b"\n")?;
        tmp.persist(self.path(&exchange.key)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Every readable exchange in the folder.
    pub fn all(&self) -> std::io::Result<Vec<Exchange>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(&path)?;
                match serde_json::from_slice::<Exchange>(&bytes) {
                    Ok(x) => out.push(x),
                    Err(e) => tracing::warn!("{}: not a recorded exchange: {e}", path.display()),
                }
            }
        }
        Ok(out)
    }
}

/// The default cache folder: `$XDG_CACHE_HOME/rfm-agent/llm` or `~/.cache/rfm-agent/llm`.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("rfm-agent").join("llm")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Role, Usage};

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            system: "s".into(),
            messages: vec![Message {
                role: Role::User,
                content: text.into(),
            }],
            schema_name: "campaign".into(),
            schema: serde_json::json!({"type": "object"}),
            temperature: 0.2,
            max_tokens: 100,
        }
    }

    #[test]
    fn keys_depend_on_provider_model_and_content() {
        let a = request("a");
        assert_eq!(key("openai", "m", &a), key("openai", "m", &a));
        assert_ne!(key("openai", "m", &a), key("gemini", "m", &a));
        assert_ne!(key("openai", "m", &a), key("openai", "n", &a));
        assert_ne!(key("openai", "m", &a), key("openai", "m", &request("b")));
        assert_eq!(key("openai", "m", &a).len(), 32);
    }

    #[test]
    fn stored_exchanges_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("sub"));
        let x = Exchange {
            key: "k1".into(),
            provider: "openai".into(),
            model: "m".into(),
            request: request("a"),
            response: ChatResponse {
                text: "{}".into(),
                usage: Usage::default(),
            },
        };
        store.put(&x).unwrap();
        assert_eq!(store.get("k1").unwrap().request, x.request);
        assert!(store.get("k2").is_none());
        assert_eq!(store.all().unwrap().len(), 1);
    }
}
