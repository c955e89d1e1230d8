//! The languages copy is written in, by the locale names the settings use.

use whatlang::Lang;

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
