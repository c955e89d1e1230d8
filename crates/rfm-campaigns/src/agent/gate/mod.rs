//! The content gate: what an LLM's campaign must be before it can reach an inbox. Each
//! failure is a named [`Violation`], written for the model to fix and for the fall-back
//! reason. Grounding (figures and offers) is checked apart, in [`super::grounding`].

use whatlang::Lang;

mod heuristics;
mod locales;
mod violation;

pub use locales::{LANGUAGES, language};
pub use violation::Violation;

use super::channels::{PUSH_BODY_MAX, PUSH_TITLE_MAX, SMS_MAX, gsm7_len};
use heuristics::*;
use rfm_llm::ask::Problem;
use rfm_llm::schema::{object, text};
use violation::clip;

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
