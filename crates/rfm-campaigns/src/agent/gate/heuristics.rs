//! Text heuristics: words, figures, greetings, repeats, runs, markup, links, secrets, echoes
//! and the language a text is in.

use whatlang::{Detector, Lang};

use super::locales::LANGUAGES;
use super::{LANGUAGE_MIN_WORDS, RUN};

/// Words: runs of letters (a number alone is not a word).
pub(super) fn words(text: &str) -> usize {
    text.split(|c: char| !c.is_alphabetic() && c != '\'')
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .count()
}

pub(super) fn cites_figure(text: &str, figures: &[f64]) -> bool {
    crate::agent::grounding::numbers(text).iter().any(|n| {
        figures
            .iter()
            .any(|f| (f - n).abs() <= 0.005 * f.abs().max(1.0))
    })
}

/// The body's first line greets: the placeholder, or a greeting word.
pub(super) fn greets(body: &str) -> bool {
    const GREETINGS: [&str; 12] = [
        "hi", "hello", "dear", "hey", "good", "hallo", "liebe", "lieber", "bonjour", "cher",
        "chère", "hola",
    ];
    let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let lower = first.to_lowercase();
    lower.contains("{{first_name}}")
        || GREETINGS
            .iter()
            .any(|g| lower.split(|c: char| !c.is_alphabetic()).any(|w| w == *g))
}

/// A non-empty line that appears three times or more.
pub(super) fn repeated_line(body: &str) -> Option<String> {
    let mut seen: std::collections::HashMap<&str, usize> = Default::default();
    for l in body
        .lines()
        .map(str::trim)
        .filter(|l| l.chars().count() > 3)
    {
        let n = seen.entry(l).or_default();
        *n += 1;
        if *n == 3 {
            return Some(l.to_string());
        }
    }
    None
}

/// The same non-space character [`RUN`] times in a row (letters, digits, emoji: "!!!!!",
/// "👍👍👍👍👍"; a row of `=` or `-` as a divider too).
pub(super) fn has_run(text: &str) -> bool {
    let mut last = None;
    let mut n = 0;
    for c in text.chars() {
        if Some(c) == last && !c.is_whitespace() {
            n += 1;
            if n >= RUN {
                return true;
            }
        } else {
            (last, n) = (Some(c), 1);
        }
    }
    false
}

/// HTML tags or Markdown emphasis, headings, links or lists.
pub(super) fn has_markup(text: &str) -> bool {
    // A tag: `<` then a letter (or `/` and a letter), closed by a later `>`; "<3" is not one.
    let html = text.match_indices('<').any(|(i, _)| {
        let rest = text[i + 1..].trim_start_matches('/');
        rest.starts_with(|c: char| c.is_ascii_alphabetic()) && rest.contains('>')
    });
    let markdown = text.contains("**")
        || text.contains("](")
        || text.contains("__")
        || text.lines().any(|l| {
            let t = l.trim_start();
            t.starts_with("# ") || t.starts_with("## ") || t.starts_with("```")
        });
    html || markdown
}

/// Links in `text`: http(s) URLs and bare `www.` hosts.
pub(super) fn urls(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')'))
        .filter(|w| {
            let l = w.to_lowercase();
            l.starts_with("http://") || l.starts_with("https://") || l.starts_with("www.")
        })
        .map(|w| w.trim_end_matches(['.', ',', ';', '!', '?']).to_string())
        .collect()
}

/// Text shaped like an API key: a known prefix, or a long run of letters and digits mixed.
pub(super) fn looks_like_secret(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';'))
        .any(|w| {
            let known = ["sk-", "AIza", "ghp_", "xoxb-", "AKIA"]
                .iter()
                .any(|p| w.starts_with(p) && w.len() >= 20);
            let long = w.len() >= 32
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && w.chars().any(|c| c.is_ascii_digit())
                && w.chars().any(|c| c.is_ascii_alphabetic());
            known || long
        })
}

/// "As an AI…" and its kin, or a line of the instructions repeated.
pub(super) fn echoes(text: &str, instructions: &str) -> bool {
    let lower = text.to_lowercase();
    let ai = [
        "as an ai",
        "language model",
        "i cannot",
        "i'm sorry, but",
        "as a large",
    ]
    .iter()
    .any(|p| lower.contains(p));
    ai || instructions
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 30)
        .any(|l| text.contains(l))
}

/// The language `text` is in when it is long enough to judge, reliably so, and not `want`.
pub(super) fn wrong_language(text: &str, want: Lang) -> Option<Lang> {
    if words(text) < LANGUAGE_MIN_WORDS {
        return None;
    }
    let detector = Detector::with_allowlist(LANGUAGES.iter().map(|(_, l)| *l).collect());
    let info = detector.detect(text)?;
    (info.lang() != want && info.is_reliable()).then_some(info.lang())
}
