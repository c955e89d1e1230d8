//! The channels batch copy is written for, and their limits: SMS at most 160 GSM-7
//! characters, push title at most 50 and body at most 120 characters. The content gate
//! ([`super::gate`]) checks them.

use serde::{Deserialize, Serialize};

pub const SMS_MAX: usize = 160;
pub const PUSH_TITLE_MAX: usize = 50;
pub const PUSH_BODY_MAX: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
