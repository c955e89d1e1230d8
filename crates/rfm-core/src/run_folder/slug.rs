//! Segment names as the run folder's file names.

/// A file-name-safe form of a segment name: "Can't Lose Them" → "cant-lose-them".
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for ch in name.chars() {
        if ch.is_alphanumeric() {
            s.extend(ch.to_lowercase());
        } else if (ch.is_whitespace() || ch == '-' || ch == '_' || ch == '/') && !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "segment".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_safe_file_names() {
        assert_eq!(slug("Can't Lose Them"), "cant-lose-them");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("  "), "segment");
        assert_eq!(slug("Über Kunden"), "über-kunden");
    }
}
