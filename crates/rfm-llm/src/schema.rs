//! Answer schemas that constrain generation: string lengths, channel enums and array sizes,
//! cut down to what each provider enforces ([`Dialect`]), and the output-token limit an
//! answer of the schema's largest size needs.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A string field of `min..=max` characters.
pub fn text(min: usize, max: usize) -> Value {
    let mut t = json!({"type": "string", "maxLength": max});
    if min > 0 {
        t["minLength"] = json!(min);
    }
    t
}

/// An object whose every property is required and no other allowed (OpenAI's strict mode
/// asks for exactly this shape).
pub fn object(properties: &[(&str, Value)]) -> Value {
    let props: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let required: Vec<&str> = properties.iter().map(|(k, _)| *k).collect();
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false
    })
}

/// Which JSON-schema keywords a provider enforces while it generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Decided by the backend: `gemini` for Gemini, `openai` for OpenAI's public API,
    /// `full` for any other OpenAI-compatible server (llama.cpp, Ollama, vLLM).
    #[default]
    Auto,
    /// Everything: llama.cpp and vLLM turn the whole schema into a grammar.
    Full,
    /// OpenAI's strict structured outputs: enums and item counts, no string lengths.
    Openai,
    /// Gemini's `responseJsonSchema`: enums and item counts, no string lengths.
    Gemini,
}

impl Dialect {
    /// The keywords this dialect does not take.
    fn unsupported(self) -> &'static [&'static str] {
        match self {
            Dialect::Auto | Dialect::Full => &[],
            Dialect::Openai | Dialect::Gemini => &["minLength", "maxLength"],
        }
    }

    /// The output-token limit to send: what the schema needs (at most `cap`), except for
    /// Gemini, whose thinking models spend output tokens on thinking too and get `cap`.
    pub fn token_limit(self, schema: &Value, cap: u32) -> u32 {
        match self {
            Dialect::Gemini => cap,
            _ => token_limit(schema, cap),
        }
    }

    /// `schema` without the keywords this dialect does not take.
    pub fn fit(self, schema: &Value) -> Value {
        let drop = self.unsupported();
        match schema {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(k, _)| !drop.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), self.fit(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.fit(v)).collect()),
            other => other.clone(),
        }
    }
}

/// Characters per token assumed for the limit. English averages about four, but a small
/// model's copy measured about 2.2 (SmolLM2 on llama.cpp), so an answer at every field's
/// longest still fits.
const CHARS_PER_TOKEN: usize = 2;
/// Tokens for a field's key, quotes, separators and the whitespace a grammar allows.
const PER_FIELD: usize = 8;

/// Output tokens an answer of `schema` needs at its largest: every string at its
/// `maxLength`, every array at its `maxItems`, every enum at its longest value.
pub fn max_tokens(schema: &Value) -> u32 {
    let tokens = size(schema);
    u32::try_from(tokens + PER_FIELD).unwrap_or(u32::MAX)
}

fn size(s: &Value) -> usize {
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let longest = values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| v.chars().count())
            .max()
            .unwrap_or(0);
        return longest.div_ceil(CHARS_PER_TOKEN) + 2;
    }
    match s.get("type").and_then(Value::as_str) {
        Some("string") => {
            let max = s.get("maxLength").and_then(Value::as_u64).unwrap_or(400) as usize;
            max.div_ceil(CHARS_PER_TOKEN) + 2
        }
        Some("array") => {
            let n = s.get("maxItems").and_then(Value::as_u64).unwrap_or(4) as usize;
            n * (s.get("items").map(size).unwrap_or(0) + 1) + 2
        }
        Some("object") => s
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.values().map(|v| size(v) + PER_FIELD).sum())
            .unwrap_or(0),
        _ => PER_FIELD,
    }
}

/// The output-token limit of a request: what its schema needs, at most `cap`
/// (`llm.max_tokens`; 0 for no cap).
pub fn token_limit(schema: &Value, cap: u32) -> u32 {
    let need = max_tokens(schema);
    if cap == 0 { need } else { need.min(cap) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        object(&[
            ("name", text(2, 40)),
            (
                "channels",
                json!({"type": "array", "items": {"type": "string", "enum": ["email", "SMS"]},
                       "minItems": 1, "maxItems": 2}),
            ),
            ("body", text(100, 1200)),
        ])
    }

    #[test]
    fn each_dialect_gets_what_it_enforces() {
        let full = Dialect::Full.fit(&schema());
        assert_eq!(full, schema());
        assert_eq!(full["properties"]["body"]["maxLength"], 1200);
        for d in [Dialect::Openai, Dialect::Gemini] {
            let s = d.fit(&schema());
            let text = s.to_string();
            assert!(!text.contains("Length"), "{d:?}: {text}");
            assert_eq!(s["properties"]["channels"]["maxItems"], 2);
            assert_eq!(s["properties"]["channels"]["items"]["enum"][1], "SMS");
            assert_eq!(s["required"], json!(["name", "channels", "body"]));
            assert_eq!(s["additionalProperties"], false);
        }
    }

    #[test]
    fn the_token_limit_fits_the_longest_answer() {
        // 40/2 + 1200/2 characters, two channels, keys, braces and whitespace.
        let need = max_tokens(&schema());
        assert!((640..720).contains(&need), "{need}");
        assert_eq!(Dialect::Full.token_limit(&schema(), 2048), need);
        assert_eq!(Dialect::Gemini.token_limit(&schema(), 2048), 2048);
        assert_eq!(token_limit(&schema(), 0), need);
        assert_eq!(token_limit(&schema(), 96), 96);
        let longer = object(&[("body", text(0, 3000))]);
        assert!(max_tokens(&longer) > need);
    }
}
