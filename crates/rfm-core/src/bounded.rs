//! Bounded text for messages: a value cut to a length, a list cut to a handful of names,
//! a whole message cut to about 2 KB, so that no input can make an error large.

/// Longest message the program prints, stores or answers with.
pub const MAX_MESSAGE: usize = 2048;
/// Names a list in a message shows before "… and N more".
pub const MAX_ITEMS: usize = 12;
/// Characters of one name or value shown in a message.
pub const MAX_VALUE: usize = 60;

/// `s` cut to `max` characters, with "…" when cut.
pub fn value(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// Names as "`a`, `b`, … and N more", each name cut to [`MAX_VALUE`] characters.
pub fn list<S: AsRef<str>>(items: &[S]) -> String {
    let mut shown: Vec<String> = items
        .iter()
        .take(MAX_ITEMS)
        .map(|s| format!("`{}`", value(s.as_ref(), MAX_VALUE)))
        .collect();
    if items.len() > MAX_ITEMS {
        shown.push(format!("… and {} more", items.len() - MAX_ITEMS));
    }
    shown.join(", ")
}

/// A whole message cut to [`MAX_MESSAGE`] bytes (on a character boundary).
pub fn message(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_and_values_are_cut() {
        let names: Vec<String> = (0..1000).map(|i| format!("col{i}")).collect();
        let l = list(&names);
        assert!(l.ends_with("… and 988 more") && l.len() < 200, "{l}");
        assert_eq!(value(&"é".repeat(100), 3), "ééé…");
        let m = message(&"ü".repeat(10_000));
        assert!(m.len() <= MAX_MESSAGE && m.ends_with('…'));
    }
}
