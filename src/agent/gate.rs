//! The content gate: what an LLM's campaign must be before it can reach an inbox. Each
//! failure is a named [`Violation`], written for the model to fix and for the fall-back
//! reason. Grounding (figures and offers) is checked apart, in [`super::grounding`].

use std::fmt;

use whatlang::{Detector, Lang};

use crate::batch::channels::{PUSH_BODY_MAX, PUSH_TITLE_MAX, SMS_MAX, gsm7_len};
use crate::llm::ask::Problem;
use crate::llm::schema::{object, text};

/// Longest segment name, in characters, and most words in it.
pub const MAX_NAME: usize = 40;
const MAX_NAME_WORDS: usize = 5;
/// Fewest words in a strategy and in an email body.
pub const MIN_STRATEGY_WORDS: usize = 4;
pub const MIN_BODY_WORDS: usize = 20;
/// Longest email body accepted, in characters.
pub const MAX_BODY: usize = 3000;
/// Longest email body the answer schema asks for, in characters: a real email, well
/// inside [`MAX_BODY`], and fewer tokens to wait for.
const SCHEMA_BODY: usize = 1000;
/// Longest preheader the answer schema asks for.
const MAX_PREHEADER: usize = 100;
/// A text shorter than this many words is not judged for its language.
const LANGUAGE_MIN_WORDS: usize = 12;
/// The same character this many times in a row is a run.
const RUN: usize = 5;

/// Languages copy is written in, by the locale names the settings use.
pub const LANGUAGES: [(&str, Lang); 5] = [
    ("en", Lang::Eng),
    ("de", Lang::Deu),
    ("fr", Lang::Fra),
    ("es", Lang::Spa),
    ("it", Lang::Ita),
];

/// The language of locale `code` (`en`, `de-CH`, …), when we ship it.
pub fn language(code: &str) -> Option<Lang> {
    let base = code.split(['-', '_']).next().unwrap_or("");
    LANGUAGES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(base))
        .map(|(_, l)| *l)
}

/// Why an answer was refused, one per problem found.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    Empty(&'static str),
    NameLength(usize),
    NameNotWords,
    NameTooManyWords(usize),
    NameIsSentence,
    NameIsChannel(String),
    NameTaken(String),
    RationaleWithoutFigure,
    StrategyTooShort(usize),
    UnknownChannel(String),
    NoWords(&'static str),
    SubjectTooLong(usize),
    BodyTooShort(usize),
    BodyTooLong(usize),
    SmsTooLong(usize),
    NotGsm7(char),
    NoOptOut,
    PushTooLong(&'static str, usize, usize),
    NoGreeting,
    RepeatedLine(String),
    CharacterRun(&'static str),
    WrongLanguage {
        field: &'static str,
        found: &'static str,
        wanted: &'static str,
    },
    Markup(&'static str),
    UnlistedUrl(&'static str, String),
    SecretLike(&'static str),
    PromptEcho(&'static str),
}

impl Violation {
    /// The violation's stable name, as fall-back reasons and the evaluation count them.
    pub fn code(&self) -> &'static str {
        use Violation::*;
        match self {
            Empty(_) => "empty_field",
            NameLength(_) => "name_length",
            NameNotWords => "name_not_words",
            NameTooManyWords(_) => "name_too_many_words",
            NameIsSentence => "name_is_sentence",
            NameIsChannel(_) => "name_is_channel",
            NameTaken(_) => "name_taken",
            RationaleWithoutFigure => "rationale_without_figure",
            StrategyTooShort(_) => "strategy_too_short",
            UnknownChannel(_) => "unknown_channel",
            NoWords(_) => "no_words",
            SubjectTooLong(_) => "subject_too_long",
            BodyTooShort(_) => "body_too_short",
            BodyTooLong(_) => "body_too_long",
            SmsTooLong(_) => "sms_too_long",
            NotGsm7(_) => "not_gsm7",
            NoOptOut => "no_opt_out",
            PushTooLong(..) => "push_too_long",
            NoGreeting => "no_greeting",
            RepeatedLine(_) => "repeated_line",
            CharacterRun(_) => "character_run",
            WrongLanguage { .. } => "wrong_language",
            Markup(_) => "markup",
            UnlistedUrl(..) => "unlisted_url",
            SecretLike(_) => "secret_like",
            PromptEcho(_) => "prompt_echo",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Violation::*;
        let code = self.code();
        match self {
            SubjectTooLong(_) | BodyTooShort(_) | BodyTooLong(_) | SmsTooLong(_) | NotGsm7(_)
            | NoOptOut | PushTooLong(..) | NoGreeting | RepeatedLine(_) => self.fmt_copy(f),
            Empty(field) => write!(f, "{code}: {field} is empty"),
            NameLength(n) => write!(f, "{code}: name has {n} characters; use 2 to {MAX_NAME}"),
            NameNotWords => write!(f, "{code}: name must be mostly letters"),
            NameTooManyWords(n) => write!(
                f,
                "{code}: name has {n} words; use at most {MAX_NAME_WORDS}"
            ),
            NameIsSentence => write!(f, "{code}: name is a sentence; give a short label"),
            NameIsChannel(c) => write!(f, "{code}: name `{c}` is a channel, not a segment name"),
            NameTaken(t) => write!(f, "{code}: name `{t}` is already used by another segment"),
            RationaleWithoutFigure => write!(
                f,
                "{code}: rationale must cite at least one of the segment's figures"
            ),
            StrategyTooShort(n) => write!(
                f,
                "{code}: strategy has {n} words; write at least {MIN_STRATEGY_WORDS}"
            ),
            UnknownChannel(c) => write!(f, "{code}: `{c}` is not one of the channels listed"),
            NoWords(field) => write!(f, "{code}: {field} has no words, only symbols"),
            CharacterRun(field) => write!(
                f,
                "{code}: {field} repeats one character or emoji {RUN} times or more in a row"
            ),
            WrongLanguage {
                field,
                found,
                wanted,
            } => write!(f, "{code}: {field} is in {found}; write it in {wanted}"),
            Markup(field) => write!(
                f,
                "{code}: {field} has HTML or Markdown markup; write plain text"
            ),
            UnlistedUrl(field, u) => write!(
                f,
                "{code}: {field} links to `{}`, which is not in the settings",
                clip(u)
            ),
            SecretLike(field) => write!(
                f,
                "{code}: {field} holds text that looks like a key or token"
            ),
            PromptEcho(field) => write!(
                f,
                "{code}: {field} talks about being an AI or repeats the instructions"
            ),
        }
    }
}

impl Violation {
    /// The message of a violation of an email's, SMS's or push's own rules.
    fn fmt_copy(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Violation::*;
        let code = self.code();
        match self {
            SubjectTooLong(n) => write!(
                f,
                "{code}: email.subject has {n} characters, more than {}",
                super::grounding::MAX_SUBJECT
            ),
            BodyTooShort(n) => write!(
                f,
                "{code}: email.body has {n} words; write at least {MIN_BODY_WORDS}"
            ),
            BodyTooLong(n) => write!(
                f,
                "{code}: email.body has {n} characters, more than {MAX_BODY}"
            ),
            SmsTooLong(n) => write!(
                f,
                "{code}: the SMS is {n} GSM-7 characters, more than {SMS_MAX}"
            ),
            NotGsm7(c) => write!(
                f,
                "{code}: the SMS has `{c}`, which GSM-7 cannot send; use plain characters"
            ),
            NoOptOut => write!(
                f,
                "{code}: the SMS needs an opt-out (\"Reply STOP to opt out\")"
            ),
            PushTooLong(field, n, max) => {
                write!(f, "{code}: {field} has {n} characters, more than {max}")
            }
            NoGreeting => write!(
                f,
                "{code}: email.body must open with a greeting to {{{{first_name}}}}"
            ),
            RepeatedLine(l) => write!(
                f,
                "{code}: email.body repeats the line `{}` three times or more",
                clip(l)
            ),
            _ => f.write_str(code),
        }
    }
}

/// At most 60 characters of `s`, for messages.
fn clip(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// One answer's texts: the campaign's plan (the agent's; batch copy has none) and the
/// message for its channel.
pub struct Draft<'a> {
    pub plan: Option<Plan<'a>>,
    pub message: Message<'a>,
}

/// A segment's name, why, what to do and where.
pub struct Plan<'a> {
    pub name: &'a str,
    pub rationale: &'a str,
    pub strategy: &'a str,
    pub channels: &'a [String],
}

/// The copy itself, by channel.
pub enum Message<'a> {
    Email {
        subject: &'a str,
        preheader: &'a str,
        body: &'a str,
    },
    Sms {
        text: &'a str,
    },
    Push {
        title: &'a str,
        body: &'a str,
    },
}

impl<'a> Message<'a> {
    /// Every text with its field name.
    fn fields(&self) -> Vec<(&'static str, &'a str)> {
        match *self {
            Message::Email {
                subject,
                preheader,
                body,
            } => vec![
                ("email.subject", subject),
                ("email.preheader", preheader),
                ("email.body", body),
            ],
            Message::Sms { text } => vec![("sms.text", text)],
            Message::Push { title, body } => vec![("push.title", title), ("push.body", body)],
        }
    }

    /// The text long enough to judge its language by.
    fn main_text(&self) -> (&'static str, &'a str) {
        match *self {
            Message::Email { body, .. } => ("email.body", body),
            Message::Sms { text } => ("sms.text", text),
            Message::Push { body, .. } => ("push.body", body),
        }
    }
}

/// What an answer is checked against.
pub struct Rules<'a> {
    /// The channels an answer may name (`[agent] channels`).
    pub channels: &'a [String],
    /// Names other segments have.
    pub taken: &'a [String],
    /// The segment's figures (grounding's allowed numbers).
    pub figures: &'a [f64],
    /// The language asked for; `None` for a locale we ship no detector for.
    pub language: Option<Lang>,
    /// Links copy may carry (`[agent] urls`).
    pub urls: &'a [String],
    /// The instructions' own lines, which an answer must not echo.
    pub instructions: &'a str,
}

/// Every violation of `d` against `r`.
pub fn check(d: &Draft, r: &Rules) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut texts = Vec::new();
    if let Some(p) = &d.plan {
        plan(p, r, &mut found);
        texts.extend([
            ("name", p.name),
            ("rationale", p.rationale),
            ("strategy", p.strategy),
        ]);
    }
    message(&d.message, r, &mut found);
    texts.extend(d.message.fields());
    for (field, text) in texts {
        text_checks(field, text, r, &mut found);
    }
    found
}

/// The plan: every field written, a real name, a figure in the rationale, known channels.
fn plan(p: &Plan, r: &Rules, found: &mut Vec<Violation>) {
    for (field, text) in [
        ("name", p.name),
        ("rationale", p.rationale),
        ("strategy", p.strategy),
    ] {
        if text.trim().is_empty() {
            found.push(Violation::Empty(field));
        }
    }
    name(p.name, r, found);
    if !p.rationale.trim().is_empty() && !cites_figure(p.rationale, r.figures) {
        found.push(Violation::RationaleWithoutFigure);
    }
    let strategy_words = words(p.strategy);
    if !p.strategy.trim().is_empty() && strategy_words < MIN_STRATEGY_WORDS {
        found.push(Violation::StrategyTooShort(strategy_words));
    }
    channels(p.channels, r.channels, found);
    judge_language("rationale", p.rationale, r.language, found);
}

/// The name: a short label in letters, not a channel, not another segment's.
fn name(name: &str, r: &Rules, found: &mut Vec<Violation>) {
    let n = name.trim();
    if n.is_empty() {
        return;
    }
    let chars = n.chars().count();
    if !(2..=MAX_NAME).contains(&chars) {
        found.push(Violation::NameLength(chars));
    }
    let letters = n.chars().filter(|c| c.is_alphabetic()).count();
    let other = n
        .chars()
        .filter(|c| !c.is_alphabetic() && !c.is_whitespace())
        .count();
    if letters == 0 || other * 4 > letters {
        found.push(Violation::NameNotWords);
    }
    let w = n.split_whitespace().count();
    if w > MAX_NAME_WORDS {
        found.push(Violation::NameTooManyWords(w));
    }
    if n.ends_with(['.', '!', '?']) || (w >= 3 && n.contains(", ")) {
        found.push(Violation::NameIsSentence);
    }
    if let Some(c) = r.channels.iter().find(|c| c.eq_ignore_ascii_case(n)) {
        found.push(Violation::NameIsChannel(c.clone()));
    }
    if let Some(t) = r.taken.iter().find(|t| t.eq_ignore_ascii_case(n)) {
        found.push(Violation::NameTaken(t.clone()));
    }
}

/// Each channel one of the configured ones; at least one.
fn channels(given: &[String], allowed: &[String], found: &mut Vec<Violation>) {
    if given.iter().all(|c| c.trim().is_empty()) {
        found.push(Violation::Empty("channels"));
    }
    for c in given {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(c.trim())) {
            found.push(Violation::UnknownChannel(clip(c)));
        }
    }
}

/// The message: its texts written and made of words, in the language asked for, and the
/// channel's own rules.
fn message(m: &Message, r: &Rules, found: &mut Vec<Violation>) {
    for (field, text) in m.fields() {
        if text.trim().is_empty() {
            if field != "email.preheader" {
                found.push(Violation::Empty(field));
            }
        } else if words(text) == 0 {
            found.push(Violation::NoWords(field));
        }
    }
    match *m {
        Message::Email { subject, body, .. } => email(subject, body, found),
        Message::Sms { text } => sms(text, found),
        Message::Push { title, body } => {
            for (field, text, max) in [
                ("push.title", title, PUSH_TITLE_MAX),
                ("push.body", body, PUSH_BODY_MAX),
            ] {
                let n = text.chars().count();
                if n > max {
                    found.push(Violation::PushTooLong(field, n, max));
                }
            }
        }
    }
    let (field, text) = m.main_text();
    judge_language(field, text, r.language, found);
}

/// Subject and body: lengths, a greeting, no repeated lines.
fn email(subject: &str, body: &str, found: &mut Vec<Violation>) {
    let n = subject.chars().count();
    if n > super::grounding::MAX_SUBJECT {
        found.push(Violation::SubjectTooLong(n));
    }
    let n = body.chars().count();
    if n > MAX_BODY {
        found.push(Violation::BodyTooLong(n));
    }
    if body.trim().is_empty() {
        return;
    }
    let body_words = words(body);
    if body_words < MIN_BODY_WORDS {
        found.push(Violation::BodyTooShort(body_words));
    }
    if !greets(body) {
        found.push(Violation::NoGreeting);
    }
    if let Some(line) = repeated_line(body) {
        found.push(Violation::RepeatedLine(line));
    }
}

/// An SMS: GSM-7 only, within one message, with an opt-out.
fn sms(text: &str, found: &mut Vec<Violation>) {
    match gsm7_len(text) {
        Ok(n) if n > SMS_MAX => found.push(Violation::SmsTooLong(n)),
        Ok(_) => {}
        Err(c) => found.push(Violation::NotGsm7(c)),
    }
    if !text.contains("STOP") {
        found.push(Violation::NoOptOut);
    }
}

/// A text long enough to judge that is reliably in another language than `want`.
fn judge_language(field: &'static str, text: &str, want: Option<Lang>, found: &mut Vec<Violation>) {
    let Some(want) = want else { return };
    if let Some(lang) = wrong_language(text, want) {
        found.push(Violation::WrongLanguage {
            field,
            found: lang.eng_name(),
            wanted: want.eng_name(),
        });
    }
}

/// Every problem of an answer's draft for the model to fix: the gate's violations, then
/// grounding's (figures from `allowed`, offers from `offers`).
pub fn problems(d: &Draft, r: &Rules, allowed: &[f64], offers: &[String]) -> Vec<Problem> {
    let mut all: Vec<Problem> = check(d, r)
        .iter()
        .map(|v| Problem {
            code: v.code(),
            text: v.to_string(),
        })
        .collect();
    let (subject, preheader, body, fields) = match d.message {
        Message::Email {
            subject,
            preheader,
            body,
        } => (
            subject,
            preheader,
            body,
            ["email.subject", "email.preheader", "email.body"],
        ),
        Message::Sms { text } => ("", "", text, ["", "", "sms.text"]),
        Message::Push { title, body } => (title, "", body, ["push.title", "", "push.body"]),
    };
    for v in super::grounding::check(subject, preheader, body, allowed, offers) {
        let field = match v.field {
            "subject" => fields[0],
            "preheader" => fields[1],
            _ => fields[2],
        };
        all.push(Problem::new(
            "ungrounded",
            format!("{field}: {}", v.problem),
        ));
    }
    all
}

/// The schema of an email, within the gate's lengths.
pub fn email_schema() -> serde_json::Value {
    object(&[
        ("subject", text(5, super::grounding::MAX_SUBJECT)),
        ("preheader", text(0, MAX_PREHEADER)),
        ("body", text(MIN_BODY_WORDS * 5, SCHEMA_BODY)),
    ])
}

/// What every text is checked for: runs, markup, links, keys and echoes.
fn text_checks(field: &'static str, text: &str, r: &Rules, found: &mut Vec<Violation>) {
    if has_run(text) {
        found.push(Violation::CharacterRun(field));
    }
    if has_markup(text) {
        found.push(Violation::Markup(field));
    }
    for url in urls(text) {
        if !r.urls.iter().any(|u| url.starts_with(u.as_str())) {
            found.push(Violation::UnlistedUrl(field, url));
        }
    }
    if looks_like_secret(text) {
        found.push(Violation::SecretLike(field));
    }
    if echoes(text, r.instructions) {
        found.push(Violation::PromptEcho(field));
    }
}

/// Words: runs of letters (a number alone is not a word).
fn words(text: &str) -> usize {
    text.split(|c: char| !c.is_alphabetic() && c != '\'')
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .count()
}

fn cites_figure(text: &str, figures: &[f64]) -> bool {
    super::grounding::numbers(text).iter().any(|n| {
        figures
            .iter()
            .any(|f| (f - n).abs() <= 0.005 * f.abs().max(1.0))
    })
}

/// The body's first line greets: the placeholder, or a greeting word.
fn greets(body: &str) -> bool {
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
fn repeated_line(body: &str) -> Option<String> {
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
fn has_run(text: &str) -> bool {
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
fn has_markup(text: &str) -> bool {
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
fn urls(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')'))
        .filter(|w| {
            let l = w.to_lowercase();
            l.starts_with("http://") || l.starts_with("https://") || l.starts_with("www.")
        })
        .map(|w| w.trim_end_matches(['.', ',', ';', '!', '?']).to_string())
        .collect()
}

/// Text shaped like an API key: a known prefix, or a long run of letters and digits mixed.
fn looks_like_secret(text: &str) -> bool {
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
fn echoes(text: &str, instructions: &str) -> bool {
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
fn wrong_language(text: &str, want: Lang) -> Option<Lang> {
    if words(text) < LANGUAGE_MIN_WORDS {
        return None;
    }
    let detector = Detector::with_allowlist(LANGUAGES.iter().map(|(_, l)| *l).collect());
    let info = detector.detect(text)?;
    (info.lang() != want && info.is_reliable()).then_some(info.lang())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Vec<String> {
        ["email", "SMS", "direct mail"].map(String::from).to_vec()
    }

    const BODY: &str = "Hi {{first_name}},\n\nThank you for shopping with us so often this year. \
        We picked a few new arrivals we think you will like, and we would love to hear what you \
        think of them when you next visit the shop.\n\nSee you soon";

    fn draft<'a>(name: &'a str, body: &'a str, ch: &'a [String]) -> Draft<'a> {
        Draft {
            plan: Some(Plan {
                name,
                rationale: "120 customers who buy often.",
                strategy: "Thank them and show new arrivals.",
                channels: ch,
            }),
            message: Message::Email {
                subject: "New arrivals for you",
                preheader: "Picked for our regulars",
                body,
            },
        }
    }

    fn rules<'a>(ch: &'a [String], taken: &'a [String], urls: &'a [String]) -> Rules<'a> {
        Rules {
            channels: ch,
            taken,
            figures: &[120.0],
            language: Some(Lang::Eng),
            urls,
            instructions: "You are a senior CRM marketer at an online shop. For one customer segment you name it",
        }
    }

    fn codes(d: &Draft) -> Vec<&'static str> {
        let ch = channels();
        let taken = ["Champions".to_string()];
        let urls = ["https://shop.example.com".to_string()];
        check(d, &rules(&ch, &taken, &urls))
            .iter()
            .map(Violation::code)
            .collect()
    }

    fn plan<'a, 'b>(d: &'b mut Draft<'a>) -> &'b mut Plan<'a> {
        d.plan.as_mut().unwrap()
    }

    #[test]
    fn a_good_answer_passes() {
        let ch = channels();
        assert_eq!(
            codes(&draft("Loyal Regulars", BODY, &ch)),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn each_kind_of_junk_is_named() {
        let ch = channels();
        let emoji = "👍👍👍👍👍";
        assert!(codes(&draft(emoji, BODY, &ch)).contains(&"name_not_words"));
        assert!(codes(&draft(emoji, BODY, &ch)).contains(&"character_run"));
        assert!(codes(&draft("email", BODY, &ch)).contains(&"name_is_channel"));
        assert!(codes(&draft("champions", BODY, &ch)).contains(&"name_taken"));
        let sentence = "These are our very best customers.";
        assert!(codes(&draft(sentence, BODY, &ch)).contains(&"name_is_sentence"));
        let german = "Hallo {{first_name}},\n\nvielen Dank, dass Sie in diesem Jahr so oft bei uns \
            eingekauft haben. Wir haben einige neue Artikel ausgewählt, die Ihnen gefallen werden, \
            und freuen uns auf Ihren nächsten Besuch in unserem Geschäft.";
        assert!(codes(&draft("Loyal Regulars", german, &ch)).contains(&"wrong_language"));
        let long = format!(
            "Hi {{{{first_name}}}},\n{}",
            "We have news for you. ".repeat(500)
        );
        assert!(codes(&draft("Loyal Regulars", &long, &ch)).contains(&"body_too_long"));
        let repeated = format!(
            "Hi {{{{first_name}}}},\n{}",
            "Come back and see our new range today.\n".repeat(4)
        );
        assert!(codes(&draft("Loyal Regulars", &repeated, &ch)).contains(&"repeated_line"));
        let html = format!("{BODY} <img src=x onerror=alert()>");
        assert!(codes(&draft("Loyal Regulars", &html, &ch)).contains(&"markup"));
        let link = format!("{BODY} https://evil.example.net/win");
        assert!(codes(&draft("Loyal Regulars", &link, &ch)).contains(&"unlisted_url"));
        let ok_link = format!("{BODY} https://shop.example.com/new");
        assert!(!codes(&draft("Loyal Regulars", &ok_link, &ch)).contains(&"unlisted_url"));
        let ai = format!("{BODY} As an AI language model I cannot know your name.");
        assert!(codes(&draft("Loyal Regulars", &ai, &ch)).contains(&"prompt_echo"));
        let key = format!("{BODY} sk-abcdefghijklmnop1234567890");
        assert!(codes(&draft("Loyal Regulars", &key, &ch)).contains(&"secret_like"));
        let bad_channel = vec!["Need Attention".to_string()];
        assert!(codes(&draft("Loyal Regulars", BODY, &bad_channel)).contains(&"unknown_channel"));
        let mut d = draft("Loyal Regulars", BODY, &ch);
        plan(&mut d).strategy = "";
        assert!(codes(&d).contains(&"empty_field"));
        plan(&mut d).strategy = "Email.";
        assert!(codes(&d).contains(&"strategy_too_short"));
        plan(&mut d).rationale = "They buy often.";
        assert!(codes(&d).contains(&"rationale_without_figure"));
        d.message = Message::Email {
            subject: "🎉🎉",
            preheader: "",
            body: BODY,
        };
        assert!(codes(&d).contains(&"no_words"));
    }

    fn copy(message: Message) -> Vec<&'static str> {
        codes(&Draft {
            plan: None,
            message,
        })
    }

    #[test]
    fn sms_rules() {
        // Braces are in GSM-7's extension table: they count twice.
        assert_eq!(gsm7_len("{{first_name}}"), Ok(18));
        let sms = |text| copy(Message::Sms { text });
        assert!(sms("Hi {{first_name}}: new in. Reply STOP to opt out").is_empty());
        assert_eq!(gsm7_len("€5"), Ok(3));
        let long = format!("{} Reply STOP", "a ".repeat(75));
        assert!(sms(&long).contains(&"sms_too_long"));
        assert!(sms("Sale 🎉 Reply STOP").contains(&"not_gsm7"));
        assert!(sms("New in this week").contains(&"no_opt_out"));
        assert!(sms("").contains(&"empty_field"));
    }

    #[test]
    fn push_rules() {
        let push = |title, body| copy(Message::Push { title, body });
        assert!(push("New arrivals", "Picked for you").is_empty());
        let title = "to ".repeat(18);
        assert_eq!(push(&title, ""), ["empty_field", "push_too_long"]);
        assert!(push("🎉🎉🎉", "Picked for you").contains(&"no_words"));
    }

    /// The language is judged on texts long enough to tell, against the locale asked for.
    #[test]
    fn german_is_refused_for_english_and_accepted_for_german() {
        let german = "Hallo {{first_name}},\n\nvielen Dank, dass Sie in diesem Jahr so oft bei uns \
            eingekauft haben. Wir haben einige neue Artikel ausgewählt, die Ihnen gefallen werden, \
            und freuen uns auf Ihren nächsten Besuch in unserem Geschäft.";
        let message = || Message::Email {
            subject: "Neu für Sie",
            preheader: "",
            body: german,
        };
        let with = |lang| {
            let d = Draft {
                plan: None,
                message: message(),
            };
            let r = Rules {
                language: lang,
                ..rules(&[], &[], &[])
            };
            check(&d, &r)
                .iter()
                .map(Violation::code)
                .collect::<Vec<_>>()
        };
        assert_eq!(with(Some(Lang::Eng)), ["wrong_language"]);
        assert!(with(Some(Lang::Deu)).is_empty());
        assert!(with(None).is_empty());
        // Too short to tell: not judged.
        let short = copy(Message::Push {
            title: "Neu für Sie",
            body: "Wir haben etwas Neues für Sie.",
        });
        assert!(short.is_empty(), "{short:?}");
    }

    #[test]
    fn locales_map_to_languages() {
        assert_eq!(language("de-CH"), Some(Lang::Deu));
        assert_eq!(language("EN"), Some(Lang::Eng));
        assert_eq!(language("xx"), None);
    }
}
