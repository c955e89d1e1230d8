//! A run's options as the API takes them (form fields or JSON strings), checked and laid
//! over the service's settings. Keys and URLs are never taken from a request.

use serde_json::{Map, Value};

use rfm_core::rfm::Frequency;
use rfm_run::settings::RunOptions;
use rfm_run::settings::{Backend, Settings};

/// The options a run accepts, with what each takes (also in the OpenAPI document).
pub const NAMES: [&str; 10] = [
    "k",
    "frequency",
    "snapshot",
    "columns",
    "preset",
    "currency",
    "llm",
    "predict",
    "sample",
    "source",
];

/// Longest option name and value taken (and echoed in messages).
pub const MAX_NAME: usize = 64;
pub const MAX_VALUE: usize = 4096;

/// Checks every option and applies it to `settings`. Messages name the option and the fix.
pub fn apply(settings: &mut Settings, options: &Map<String, Value>) -> Result<(), String> {
    let mut run = RunOptions::default();
    for (name, value) in options {
        let text = text_of(name, value)?;
        // An empty field of the form means "not given".
        if !(text.is_empty() && NAMES.contains(&name.as_str())) {
            take(&mut run, name, text)?;
        }
    }
    run.apply(settings)
        .map_err(|e| format!("option `columns`: {e}"))?;
    if let Some(name) = source(options) {
        settings.use_source(&name)?;
    }
    if let Some(b) = run.llm
        && !rfm_llm::client::backend_ready(&settings.llm, b)
    {
        return Err(format!(
            "llm `{}` is not set up on this service: its API key (or base URL) goes in the \
             server's environment or config; choose `rules` meanwhile",
            api_name(b)
        ));
    }
    Ok(())
}

/// An option's value as trimmed text, within the size limits.
fn text_of(name: &str, value: &Value) -> Result<String, String> {
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
    match value {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("option `{name}` must be a string or a number")),
    }
}

/// Parses one option into `run` with the same parsers as the command line.
fn take(run: &mut RunOptions, name: &str, text: String) -> Result<(), String> {
    match name {
        "k" => run.k = Some(text.parse()?),
        "frequency" => {
            run.frequency = Some(text.parse::<Frequency>().map_err(|_| {
                format!(
                    "frequency `{text}`: use `invoices` (distinct orders) or `lines` (order lines)"
                )
            })?)
        }
        "snapshot" => {
            rfm_core::dates::parse_snapshot(&text)
                .ok_or_else(|| format!("snapshot `{text}` is not a date; use e.g. 2011-12-10"))?;
            run.snapshot = Some(text);
        }
        "columns" => run.columns = Some(text),
        "preset" => run.preset = Some(text.parse().map_err(|e| format!("option `preset`: {e}"))?),
        "currency" => {
            run.currency = Some(
                text.parse()
                    .map_err(|e| format!("option `currency`: {e}"))?,
            )
        }
        // Checked against the operator's sources when applied.
        "source" => {}
        "llm" => run.llm = Some(backend(&text)?),
        "sample" => {
            flag(name, &text)?;
        }
        "predict" => run.predict = Some(flag(name, &text)?),
        other => check_name(other)?,
    }
    Ok(())
}

/// Refuses a name that is not an option, saying what to do (read before its value is).
pub fn check_name(name: &str) -> Result<(), String> {
    match name {
        n if NAMES.contains(&n) => Ok(()),
        n if n.contains("key") || n.contains("token") || n == "base_url" => Err(format!(
            "`{}` cannot be set through the API: keys and endpoints are the server's \
             settings (environment or config)",
            rfm_core::bounded::value(n, MAX_NAME)
        )),
        other => Err(format!(
            "unknown option `{}`; the options are {}",
            rfm_core::bounded::value(other, MAX_NAME),
            NAMES.join(", ")
        )),
    }
}

/// A true/false option.
fn flag(name: &str, text: &str) -> Result<bool, String> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{name} `{text}`: use true or false")),
    }
}

/// The backends a run may ask for, by the names the dashboard shows.
pub const BACKENDS: [(&str, Backend, &str); 3] = [
    ("rules", Backend::Off, "Rule-based agent (offline)"),
    ("gemini", Backend::Gemini, "Google Gemini"),
    ("openai", Backend::Openai, "OpenAI-compatible endpoint"),
];

fn backend(text: &str) -> Result<Backend, String> {
    match text {
        "off" => Ok(Backend::Off),
        "auto" => Ok(Backend::Auto),
        t => BACKENDS
            .iter()
            .find(|(name, ..)| *name == t)
            .map(|(_, b, _)| *b)
            .ok_or_else(|| format!("llm `{t}`: use `rules`, `auto`, `gemini` or `openai`")),
    }
}

/// The API's name of a backend (`rules` for the rule-based agent).
pub fn api_name(b: Backend) -> &'static str {
    match b {
        Backend::Off | Backend::Replay => "rules",
        Backend::Auto => "auto",
        Backend::Gemini => "gemini",
        Backend::Openai => "openai",
    }
}

/// The named source the options ask for, if any.
pub fn source(options: &Map<String, Value>) -> Option<String> {
    options
        .get("source")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
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
        assert_eq!(s.cluster.k, rfm_core::options::KChoice::Auto);
        assert_eq!(s.rfm.frequency, Frequency::Lines);
        assert_eq!(s.llm.backend, Backend::Off);

        let err = |v| apply(&mut Settings::default(), &opts(v)).unwrap_err();
        assert!(err(json!({"k": "0"})).contains("between 1 and 20"));
        assert!(err(json!({"k": "21"})).contains("between 1 and 20"));
        assert!(err(json!({"k": "many"})).contains("auto"));
        assert!(err(json!({"frequency": "weekly"})).contains("invoices"));
        assert!(err(json!({"snapshot": "soon"})).contains("not a date"));
        assert!(err(json!({"colour": "red"})).contains("unknown option `colour`"));
        assert!(err(json!({"openai_api_key": "sk-x"})).contains("cannot be set through the API"));
        assert!(err(json!({"base_url": "http://evil"})).contains("cannot be set"));
        assert!(err(json!({"llm": "replay"})).contains("rules"));
    }
}
