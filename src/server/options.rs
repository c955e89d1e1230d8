//! A run's options as the API takes them (form fields or JSON strings), checked and laid
//! over the service's settings. Keys and URLs are never taken from a request.

use serde_json::{Map, Value};

use crate::rfm::Frequency;
use crate::settings::{Backend, KChoice, Settings};

/// The options a run accepts, with what each takes (also in the OpenAPI document).
pub const NAMES: [&str; 6] = ["k", "frequency", "snapshot", "columns", "llm", "sample"];

/// Longest option name and value taken (and echoed in messages).
pub const MAX_NAME: usize = 64;
pub const MAX_VALUE: usize = 4096;

/// Checks every option and applies it to `settings`. Messages name the option and the fix.
pub fn apply(settings: &mut Settings, options: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in options {
        if name.len() > MAX_NAME {
            return Err(format!(
                "an option name of {} bytes is too long; the options are {}",
                name.len(),
                NAMES.join(", ")
            ));
        }
        if value.as_str().is_some_and(|v| v.len() > MAX_VALUE) {
            return Err(format!(
                "the option `{name}` is longer than {MAX_VALUE} bytes; send a shorter value"
            ));
        }
        let text = match value {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(format!("option `{name}` must be a string or a number")),
        };
        match name.as_str() {
            "k" if text.is_empty() => {}
            "k" => {
                let k: KChoice = text.parse()?;
                if let KChoice::Fixed(n) = k
                    && !(2..=20).contains(&n)
                {
                    return Err(format!("k = {n}: choose between 2 and 20, or `auto`"));
                }
                settings.cluster.k = k;
            }
            "frequency" => {
                settings.rfm.frequency = match text.as_str() {
                    "" => settings.rfm.frequency,
                    "invoices" => Frequency::Invoices,
                    "lines" => Frequency::Lines,
                    other => {
                        return Err(format!(
                            "frequency `{other}`: use `invoices` (distinct orders) or `lines` \
                             (order lines)"
                        ));
                    }
                }
            }
            "snapshot" => {
                if !text.is_empty() {
                    crate::dates::parse_snapshot(&text).ok_or_else(|| {
                        format!("snapshot `{text}` is not a date; use e.g. 2011-12-10")
                    })?;
                }
                settings.rfm.snapshot = text;
            }
            "columns" => settings
                .input
                .columns
                .apply_overrides(&text)
                .map_err(|e| e.replace("`--columns`", "`columns`"))?,
            "llm" => {
                settings.llm.backend = match text.as_str() {
                    "" => settings.llm.backend,
                    "rules" | "off" => Backend::Off,
                    "auto" => Backend::Auto,
                    "gemini" => Backend::Gemini,
                    "openai" => Backend::Openai,
                    other => {
                        return Err(format!(
                            "llm `{other}`: use `rules`, `auto`, `gemini` or `openai`"
                        ));
                    }
                };
                if !crate::llm::client::backend_ready(&settings.llm, settings.llm.backend) {
                    return Err(format!(
                        "llm `{text}` is not set up on this service: its API key (or base URL) \
                         goes in the server's environment or config; choose `rules` meanwhile"
                    ));
                }
            }
            "sample" => {
                if !matches!(text.as_str(), "" | "true" | "false" | "1" | "0") {
                    return Err(format!("sample `{text}`: use true or false"));
                }
            }
            n if n.contains("key") || n.contains("token") || n == "base_url" => {
                return Err(format!(
                    "`{n}` cannot be set through the API: keys and endpoints are the server's \
                     settings (environment or config)"
                ));
            }
            other => {
                return Err(format!(
                    "unknown option `{other}`; the options are {}",
                    NAMES.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Whether the options ask for the built-in sample.
pub fn wants_sample(options: &Map<String, Value>) -> bool {
    matches!(
        options.get("sample").and_then(Value::as_str),
        Some("true" | "1")
    ) || options.get("sample") == Some(&Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn options_apply_and_bad_ones_say_what_to_do() {
        let mut s = Settings::default();
        apply(
            &mut s,
            &opts(json!({"k": "auto", "frequency": "lines", "columns": "customer=Client", "llm": "rules"})),
        )
        .unwrap();
        assert_eq!(s.cluster.k, KChoice::Auto);
        assert_eq!(s.rfm.frequency, Frequency::Lines);
        assert_eq!(s.llm.backend, Backend::Off);

        let err = |v| apply(&mut Settings::default(), &opts(v)).unwrap_err();
        assert!(err(json!({"k": "1"})).contains("between 2 and 20"));
        assert!(err(json!({"k": "many"})).contains("auto"));
        assert!(err(json!({"frequency": "weekly"})).contains("invoices"));
        assert!(err(json!({"snapshot": "soon"})).contains("not a date"));
        assert!(err(json!({"colour": "red"})).contains("unknown option `colour`"));
        assert!(err(json!({"openai_api_key": "sk-x"})).contains("cannot be set through the API"));
        assert!(err(json!({"base_url": "http://evil"})).contains("cannot be set"));
        assert!(err(json!({"llm": "replay"})).contains("rules"));
    }
}
