//! Channel rules for copy: SMS at most 160 GSM-7 characters with an opt-out, push title at
//! most 50 and body at most 120 characters; email as the agent checks it.

use serde::{Deserialize, Serialize};

pub const SMS_MAX: usize = 160;
pub const PUSH_TITLE_MAX: usize = 50;
pub const PUSH_BODY_MAX: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
        })
    }
}

/// The GSM 03.38 basic character set (and the extension table, whose characters count
/// twice).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED: &str = "^{}\\[~]|€\x0c";

/// Length in GSM-7 septets, or the first character GSM-7 cannot carry.
pub fn gsm7_len(text: &str) -> Result<usize, char> {
    let mut n = 0;
    for ch in text.chars() {
        if GSM7_BASIC.contains(ch) {
            n += 1;
        } else if GSM7_EXTENDED.contains(ch) {
            n += 2;
        } else {
            return Err(ch);
        }
    }
    Ok(n)
}

/// Problems with an SMS.
pub fn check_sms(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    match gsm7_len(text) {
        Ok(n) if n > SMS_MAX => problems.push(format!(
            "the SMS is {n} GSM-7 characters, more than {SMS_MAX}"
        )),
        Ok(_) => {}
        Err(ch) => problems.push(format!(
            "the SMS has `{ch}`, which GSM-7 cannot send; use plain characters"
        )),
    }
    if !text.contains("STOP") {
        problems.push("the SMS needs an opt-out (\"Reply STOP to opt out\")".into());
    }
    problems
}

/// Problems with a push notification.
pub fn check_push(title: &str, body: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (what, text, max) in [
        ("title", title, PUSH_TITLE_MAX),
        ("body", body, PUSH_BODY_MAX),
    ] {
        let n = text.chars().count();
        if n == 0 {
            problems.push(format!("the push {what} is empty"));
        } else if n > max {
            problems.push(format!(
                "the push {what} has {n} characters, more than {max}"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_rules() {
        // Braces are in GSM-7's extension table: they count twice.
        assert_eq!(gsm7_len("{{first_name}}"), Ok(18));
        assert!(check_sms("Hi {{first_name}}: new in. Reply STOP to opt out").is_empty());
        assert!(check_sms("New in this week. Reply STOP to opt out").is_empty());
        assert_eq!(gsm7_len("€5"), Ok(3));
        let long = format!("{} Reply STOP", "a".repeat(150));
        assert!(check_sms(&long)[0].contains("161 GSM-7 characters"));
        assert!(check_sms("Sale 🎉 Reply STOP")[0].contains("`🎉`"));
        assert!(check_sms("New in this week")[0].contains("opt-out"));
    }

    #[test]
    fn push_rules() {
        assert!(check_push("New arrivals", "Picked for you").is_empty());
        let p = check_push(&"t".repeat(51), "");
        assert_eq!(p.len(), 2);
        assert!(p[0].contains("51 characters"));
    }
}
