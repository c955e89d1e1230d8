//! The replay backend: answers from recorded exchanges (`--record DIR`), with no network.
//! Requests are matched by content; `--model` picks among recordings of several models.

use std::collections::HashMap;

use super::store::{Exchange, Store, content_key};
use super::{BoxFuture, ChatRequest, ChatResponse, LlmError, Provider};

pub struct Replay {
    dir: String,
    model: String,
    by_content: HashMap<String, Vec<Exchange>>,
}

impl Replay {
    /// Loads the recordings in `dir`; `model` (may be empty) selects among several models.
    pub fn open(dir: &std::path::Path, model: &str) -> Result<Replay, String> {
        let store = Store::new(dir);
        let all = store.all().map_err(|e| {
            format!(
                "{}: cannot read the recorded responses: {e}; record them first with --record {}",
                dir.display(),
                dir.display()
            )
        })?;
        let mut by_content: HashMap<String, Vec<Exchange>> = HashMap::new();
        for x in all {
            by_content
                .entry(content_key(&x.request))
                .or_default()
                .push(x);
        }
        for v in by_content.values_mut() {
            v.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        }
        Ok(Replay {
            dir: dir.display().to_string(),
            model: model.to_string(),
            by_content,
        })
    }

    fn find(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let key = content_key(req);
        self.by_content
            .get(&key)
            .and_then(|v| {
                v.iter()
                    .find(|x| self.model.is_empty() || x.model == self.model)
            })
            .map(|x| x.response.clone())
            .ok_or_else(|| LlmError::ReplayMiss {
                key,
                dir: self.dir.clone(),
            })
    }
}

impl Provider for Replay {
    fn name(&self) -> &'static str {
        "replay"
    }
    fn model(&self) -> &str {
        if self.model.is_empty() {
            "recorded"
        } else {
            &self.model
        }
    }
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move { self.find(req) })
    }
}
