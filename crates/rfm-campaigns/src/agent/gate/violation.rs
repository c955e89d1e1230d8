//! Why an answer was refused: one named violation per problem, worded for the model to fix.

use std::fmt;

use super::*;

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
                crate::agent::grounding::MAX_SUBJECT
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
pub(super) fn clip(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
