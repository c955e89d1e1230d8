//! The workbook's shared-strings table, measured before calamine reads it. calamine reserves
//! room for the count the file declares (`<sst uniqueCount="N">`) and then keeps every
//! string whole when it opens the book, before one cell is read; a 3 KB file can declare
//! 10¹⁴ strings, and 2 MB of `<si/>` inflate to 80 million of them. So the part is read once
//! here, streamed (nothing of it kept), and what calamine would hold is charged to the
//! reader's memory budget first.

use std::io::{BufRead, BufReader, Read};

use quick_xml::events::Event;

/// What calamine holds for a table of `entries` strings of `text` bytes in all: a `String`
/// (24 bytes) per entry in a vector reserved at the declared count, or grown by doubling
/// past it (old and new buffers together: three slots an entry); each string's text at up
/// to twice its length (it is built by appending) plus the allocator's rounding.
const SLOT: u64 = 24;
const PER_STRING: u64 = 16;

/// The measure of one shared-strings part.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    /// `uniqueCount` as written (`u64::MAX` when it does not fit), if given.
    pub declared: Option<u64>,
    /// `<si>` entries in the part.
    pub entries: u64,
    /// Bytes of text in them, as written (entities and escapes only shrink when decoded).
    pub text: u64,
    /// The longest single text node: calamine reads it into a buffer and then a string.
    pub longest: u64,
}

impl Measure {
    /// Bytes calamine holds for the table at its peak.
    pub fn bytes(&self) -> u64 {
        let vector = match self.declared {
            Some(d) if d >= self.entries => d.saturating_mul(SLOT),
            _ => self.entries.saturating_mul(3 * SLOT),
        };
        self.strings().saturating_add(vector)
    }

    /// The least the entries read so far hold, whatever the declared count: the measure
    /// stops once this passes the budget (a declared count is judged when the part ends).
    pub fn least(&self) -> u64 {
        self.strings()
            .saturating_add(self.entries.saturating_mul(SLOT))
    }

    /// The strings themselves, without the vector.
    fn strings(&self) -> u64 {
        self.text
            .saturating_mul(2)
            .saturating_add(self.entries.saturating_mul(PER_STRING))
            .saturating_add(self.longest.saturating_mul(3))
    }

    /// The declared count is more than the part holds: only a file that lies says so.
    pub fn overstated(&self) -> bool {
        self.declared.is_some_and(|d| d > self.entries)
    }

    fn merge(self, other: Measure) -> Measure {
        Measure {
            declared: match (self.declared, other.declared) {
                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                (a, b) => a.or(b),
            },
            entries: self.entries + other.entries,
            text: self.text + other.text,
            longest: self.longest.max(other.longest),
        }
    }
}

/// Why a part could not be measured.
#[derive(Debug)]
pub enum Failure {
    /// Its strings would take more than the budget whatever it declares (measured up to
    /// that point).
    OverBudget(Measure),
    /// Not well-formed XML: calamine would refuse it too.
    Xml(String),
}

/// Measures every part named `…sharedStrings.xml` (any case, either slash: calamine looks
/// one up through such a table of names), stopping as soon as their strings alone would
/// pass `budget` bytes. The caller judges [`Measure::bytes`], the declared count included.
pub fn measure_book<R: Read + std::io::Seek>(
    zip: &mut ::zip::ZipArchive<R>,
    budget: u64,
) -> Result<Measure, Failure> {
    let names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| {
            n.replace('\\', "/")
                .to_ascii_lowercase()
                .ends_with("sharedstrings.xml")
        })
        .map(String::from)
        .collect();
    let mut total = Measure::default();
    for name in names {
        let part = zip
            .by_name(&name)
            .map_err(|e| Failure::Xml(format!("{name}: {e}")))?;
        let left = budget.saturating_sub(total.least());
        total = total.merge(measure(BufReader::new(part), left)?);
    }
    Ok(total)
}

/// Streams one part: the `<sst>` element's `uniqueCount`, then each `<si>` and its text.
pub fn measure<R: BufRead>(part: R, budget: u64) -> Result<Measure, Failure> {
    let mut xml = quick_xml::Reader::from_reader(part);
    let config = xml.config_mut();
    config.expand_empty_elements = true;
    config.trim_text(false);
    config.check_end_names = false;
    config.check_comments = false;
    let mut m = Measure::default();
    let mut buf = Vec::new();
    // Text is counted while bytes come in, checked against the budget every so often.
    let mut since_check = 0u64;
    loop {
        buf.clear();
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|e| Failure::Xml(format!("at byte {}: {e}", xml.buffer_position())))?;
        let text = match event {
            Event::Start(e) => {
                match e.local_name().as_ref() {
                    "sst" => m.declared = declared(&e),
                    "si" => m.entries += 1,
                    _ => {}
                }
                0
            }
            Event::Text(t) => t.len() as u64,
            Event::CData(t) => t.len() as u64,
            Event::GeneralRef(r) => r.len() as u64 + 2,
            Event::Eof => break,
            _ => 0,
        };
        m.text += text;
        m.longest = m.longest.max(text);
        since_check += text + 8;
        if since_check >= 1 << 16 {
            since_check = 0;
            if m.least() > budget {
                return Err(Failure::OverBudget(m));
            }
        }
    }
    if m.least() > budget {
        return Err(Failure::OverBudget(m));
    }
    Ok(m)
}

/// `uniqueCount` as calamine reads it (digits only; anything else it ignores), saturating.
fn declared(e: &quick_xml::events::BytesStart<'_>) -> Option<u64> {
    let attr = e.try_get_attribute("uniqueCount").ok().flatten()?;
    let digits = attr.value.as_bytes();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sst(count: &str, items: &str) -> String {
        format!(r#"<?xml version="1.0"?><sst xmlns="x" count="9" {count}>{items}</sst>"#)
    }

    #[test]
    fn counts_entries_text_and_the_declared_count() {
        let xml = sst(
            r#"uniqueCount="3""#,
            "<si><t>abc</t></si><si><r><t>de</t></r><r><t>f&amp;</t></r></si><si/>",
        );
        let m = measure(xml.as_bytes(), u64::MAX).unwrap();
        assert_eq!(m.declared, Some(3));
        assert_eq!(m.entries, 3);
        assert_eq!(m.text, 3 + 2 + 1 + 5);
        assert!(!m.overstated());
        assert_eq!(m.longest, 5, "`&amp;` is the longest node as written");
        assert_eq!(m.bytes(), 3 * SLOT + 2 * m.text + 3 * PER_STRING + 3 * 5);
    }

    #[test]
    fn a_huge_declared_count_is_charged_and_called_overstated() {
        for (attr, want) in [
            (
                r#"uniqueCount="100000000000000""#,
                Some(100_000_000_000_000),
            ),
            (r#"uniqueCount="900000000000000000000000""#, Some(u64::MAX)),
            (r#"uniqueCount="-1""#, None),
            ("", None),
        ] {
            let xml = sst(attr, "<si><t>x</t></si>");
            let m = measure(xml.as_bytes(), 1 << 30).unwrap();
            assert_eq!((m.declared, m.entries), (want, 1), "{attr}");
            assert_eq!(m.overstated(), want.is_some(), "{attr}");
            assert_eq!(m.bytes() > 1 << 30, want.is_some(), "{attr}");
        }
    }

    #[test]
    fn many_empty_entries_stop_at_the_budget() {
        let items = "<si><t/></si>".repeat(200_000);
        let xml = sst("", &items);
        let Err(Failure::OverBudget(m)) = measure(xml.as_bytes(), 1 << 20) else {
            panic!("200,000 entries hold more than 1 MiB");
        };
        assert!(m.entries < 200_000, "stopped early: {}", m.entries);
        assert!(m.least() > 1 << 20);
        assert_eq!(measure(xml.as_bytes(), 1 << 30).unwrap().entries, 200_000);
    }

    #[test]
    fn broken_xml_is_a_failure_not_a_panic() {
        for broken in [
            "<si><t>x</t></si><!-- not closed",
            "<si><t>x</t></si><![CDATA[ no end",
        ] {
            let xml = format!("<sst>{broken}");
            let m = measure(xml.as_bytes(), u64::MAX);
            assert!(matches!(m, Err(Failure::Xml(_))), "{broken}: {m:?}");
        }
    }
}
