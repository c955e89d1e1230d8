//! Text-file plumbing for delimited input: gzip, character encoding, delimiter sniffing,
//! whitespace-aligned layouts and a quote-aware shape check that finds ragged rows.

use memchr::memchr;
use std::borrow::Cow;

use super::IngestError;

/// Character encoding of a text input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Encoding {
    #[default]
    Auto,
    Utf8,
    Latin1,
    /// Windows' Western code page: Latin-1 plus €, curly quotes, dashes and the like in
    /// 0x80–0x9F, where Latin-1 has control characters.
    Windows1252,
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Encoding, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "auto" | "" => Ok(Encoding::Auto),
            "utf8" => Ok(Encoding::Utf8),
            "latin1" | "iso88591" => Ok(Encoding::Latin1),
            "cp1252" | "windows1252" => Ok(Encoding::Windows1252),
            _ => Err(format!(
                "unknown encoding `{s}`; use auto, utf-8, latin1 or windows-1252"
            )),
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "utf-8",
            Encoding::Latin1 => "latin1",
            Encoding::Windows1252 => "windows-1252",
        })
    }
}

impl Encoding {
    /// One byte per character: nothing to validate, every byte is a character.
    pub fn is_single_byte(self) -> bool {
        matches!(self, Encoding::Latin1 | Encoding::Windows1252)
    }
}

/// Single-byte text as UTF-8: Windows-1252 through encoding_rs, anything else as Latin-1.
pub fn single_byte_to_utf8(bytes: &[u8], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Windows1252 => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned()
            .into_bytes(),
        _ => latin1_to_utf8(bytes),
    }
}

/// Decompresses gzip (by magic number) and decodes to UTF-8 bytes (borrowed when the input
/// already is UTF-8). Returns the text and the name of the encoding used.
pub fn decode_text<'a>(
    raw: &'a [u8],
    path: &str,
    encoding: Encoding,
    limits: &super::InputLimits,
) -> Result<(Cow<'a, [u8]>, &'static str), IngestError> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let inflated =
            limits.read_capped(|| flate2::read::MultiGzDecoder::new(raw), path, "gzip")?;
        if inflated.is_empty() {
            return Err(IngestError::Empty { path: path.into() });
        }
        let (text, enc) = decode_plain(&inflated, path, encoding)?;
        let text = match text {
            Cow::Borrowed(b) if b.len() == inflated.len() => Cow::Owned(inflated),
            other => Cow::Owned(other.into_owned()),
        };
        return Ok((text, enc));
    }
    decode_plain(raw, path, encoding)
}

fn decode_plain<'a>(
    bytes: &'a [u8],
    path: &str,
    encoding: Encoding,
) -> Result<(Cow<'a, [u8]>, &'static str), IngestError> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match (encoding, std::str::from_utf8(body).err()) {
        (Encoding::Auto | Encoding::Utf8, None) => Ok((Cow::Borrowed(body), "utf-8")),
        (Encoding::Utf8, Some(e)) => {
            let offset = e.valid_up_to();
            let line = body[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(IngestError::Encoding {
                path: path.into(),
                offset,
                line,
            })
        }
        (Encoding::Windows1252, _) => Ok((
            Cow::Owned(single_byte_to_utf8(body, encoding)),
            "windows-1252",
        )),
        (Encoding::Latin1, _) | (Encoding::Auto, Some(_)) => {
            Ok((Cow::Owned(latin1_to_utf8(body)), "latin-1"))
        }
    }
}

pub(crate) fn latin1_to_utf8(bytes: &[u8]) -> Vec<u8> {
    let extra = bytes.iter().filter(|&&b| b >= 0x80).count();
    let mut out = Vec::with_capacity(bytes.len() + extra);
    for &b in bytes {
        if b < 0x80 {
            out.push(b);
        } else {
            out.push(0xC0 | (b >> 6));
            out.push(0x80 | (b & 0x3F));
        }
    }
    out
}

/// How the fields of a line are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Delimited(u8),
    /// Runs of whitespace separate fields (no field contains a space).
    WhitespaceSplit,
    /// Columns aligned with spaces; boundaries are the byte ranges between all-blank gaps.
    FixedWidth,
}

impl Layout {
    pub fn describe(&self) -> String {
        match self {
            Layout::Delimited(b'\t') => "tab".into(),
            Layout::Delimited(b) => (*b as char).to_string(),
            Layout::WhitespaceSplit => "whitespace".into(),
            Layout::FixedWidth => "whitespace-aligned".into(),
        }
    }
}

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Widest line taken for whitespace-aligned columns.
const MAX_ALIGNED_WIDTH: usize = 1 << 16;

/// The first non-blank line (the header), for its length.
pub fn first_line(text: &[u8]) -> &[u8] {
    sample_lines(text, 1).into_iter().next().unwrap_or_default()
}

/// The first non-blank line with a line break, to put in front of later blocks.
pub fn first_line_with_break(text: &[u8]) -> Vec<u8> {
    let mut line = first_line(text).to_vec();
    line.push(b'\n');
    line
}

/// Sample lines (non-blank) from the start of the text.
fn sample_lines(text: &[u8], max: usize) -> Vec<&[u8]> {
    text.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
        .take(max)
        .collect()
}

/// Counts `delim` outside double quotes in one line.
fn count_outside_quotes(line: &[u8], delim: u8) -> usize {
    let mut quoted = false;
    let mut n = 0;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if b == delim && !quoted {
            n += 1;
        }
    }
    n
}

/// Picks the layout: a delimiter that appears the same number of times on (nearly) every
/// sampled line, else whitespace-separated or whitespace-aligned columns.
pub fn sniff_layout(text: &[u8], path: &str) -> Result<Layout, IngestError> {
    let lines = sample_lines(text, 200);
    if lines.is_empty() {
        return Err(IngestError::Empty { path: path.into() });
    }
    // The delimiter found on the header that most lines agree with; the shape check later
    // names any line that does not.
    let mut best: Option<(u8, usize, usize)> = None;
    for &d in &CANDIDATES {
        let header = count_outside_quotes(lines[0], d);
        if header == 0 {
            continue;
        }
        let agree = lines
            .iter()
            .filter(|l| count_outside_quotes(l, d) == header)
            .count();
        let better = best.is_none_or(|(_, n, a)| agree > a || (agree == a && header > n));
        if agree * 2 > lines.len() && better {
            best = Some((d, header, agree));
        }
    }
    if let Some((d, _, _)) = best {
        return Ok(Layout::Delimited(d));
    }
    let tokens = |l: &[u8]| {
        l.split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .count()
    };
    let n = tokens(lines[0]);
    if n >= 2 && lines.iter().all(|l| tokens(l) == n) {
        return Ok(Layout::WhitespaceSplit);
    }
    // Aligned columns are a printed report's layout: never wider than a screenful of pages,
    // and the column finder allocates by the width.
    let narrow = lines.iter().all(|l| l.len() <= MAX_ALIGNED_WIDTH);
    if narrow && fixed_width_columns(&lines).len() >= 2 {
        return Ok(Layout::FixedWidth);
    }
    Err(IngestError::Layout {
        path: path.into(),
        detail: "no delimiter (, ; tab |) is used consistently and the columns are not aligned"
            .into(),
    })
}

/// Byte ranges of the columns of aligned text: spans between positions blank on every line.
/// Gaps of two or more blanks separate columns; single blanks (which also occur between
/// words of a text column) only when that is all there is.
fn fixed_width_columns(lines: &[&[u8]]) -> Vec<(usize, usize)> {
    let wide = columns_between_gaps(lines, 2);
    if wide.len() >= 2 {
        wide
    } else {
        columns_between_gaps(lines, 1)
    }
}

fn columns_between_gaps(lines: &[&[u8]], min_gap: usize) -> Vec<(usize, usize)> {
    let width = lines.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut blank = vec![true; width];
    for l in lines {
        for (i, &b) in l.iter().enumerate() {
            if b != b' ' && b != b'\t' {
                blank[i] = false;
            }
        }
    }
    // Blank runs shorter than `min_gap` inside a column do not split it.
    let mut cols: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < width {
        if blank[i] {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while i < width {
            if !blank[i] {
                i += 1;
                end = i;
            } else {
                let run = blank[i..].iter().take_while(|&&b| b).count();
                if run >= min_gap || i + run >= width {
                    break;
                }
                i += run;
            }
        }
        cols.push((start, end));
    }
    cols
}

/// Column spans of a whitespace-aligned layout, from the first lines of `text`.
pub fn fixed_width_spans(text: &[u8], layout: Layout) -> Vec<(usize, usize)> {
    match layout {
        Layout::FixedWidth => fixed_width_columns(&sample_lines(text, 1000)),
        _ => Vec::new(),
    }
}

/// Rewrites whitespace-separated or aligned text as tab-separated text without quoting.
pub fn to_tab_separated(text: &[u8], layout: Layout) -> Vec<u8> {
    to_tab_separated_with(text, layout, &fixed_width_spans(text, layout))
}

/// [`to_tab_separated`] with the spans of an aligned layout already known.
pub fn to_tab_separated_with(text: &[u8], layout: Layout, cols: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let mut first = true;
        let mut push = |field: &[u8], out: &mut Vec<u8>| {
            if !first {
                out.push(b'\t');
            }
            first = false;
            out.extend(field.iter().map(|&b| if b == b'"' { b'\'' } else { b }));
        };
        if layout == Layout::WhitespaceSplit {
            for t in line
                .split(|b| b.is_ascii_whitespace())
                .filter(|t| !t.is_empty())
            {
                push(t, &mut out);
            }
        } else {
            for (i, &(s, e)) in cols.iter().enumerate() {
                let end = if i + 1 == cols.len() {
                    line.len()
                } else {
                    e.min(line.len())
                };
                let field = if s < end { &line[s..end] } else { &[][..] };
                push(field.trim_ascii(), &mut out);
            }
        }
        out.push(b'\n');
    }
    out
}

/// Splits the header line into names (handles quotes).
pub fn header_fields(text: &[u8], delim: u8) -> Vec<String> {
    let line = sample_lines(text, 1).into_iter().next().unwrap_or_default();
    let mut fields = Vec::new();
    let mut cur = Vec::new();
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            _ if b == delim && !quoted => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(b),
        }
    }
    fields.push(cur);
    fields
        .into_iter()
        .map(|f| String::from_utf8_lossy(&f).trim().to_string())
        .collect()
}

/// Checks that every record has as many fields as the header. Returns the number of
/// data records (blank lines are skipped, as the CSV reader does). Lines without a quote
/// are counted with a plain byte count; quoted fields (which may span lines) are followed
/// character by character.
pub fn check_shape(text: &[u8], delim: u8, path: &str) -> Result<usize, IngestError> {
    let mut expected: Option<usize> = None;
    let mut records = 0usize;
    let mut line_no = 0usize;
    // A record in progress that continues over a line break inside quotes.
    let mut open: Option<(usize, usize)> = None; // (fields so far, first line)
    let mut check =
        |fields: usize, first_line: usize, records: &mut usize| -> Result<(), IngestError> {
            match expected {
                None => expected = Some(fields),
                Some(e) if e != fields => {
                    return Err(IngestError::Ragged {
                        path: path.into(),
                        row: *records + 1,
                        line: first_line,
                        got: fields,
                        expected: e,
                    });
                }
                Some(_) => *records += 1,
            }
            Ok(())
        };
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len()));
    for end in ends {
        let line = &text[start..end];
        start = end + 1;
        line_no += 1;
        match open {
            None if memchr(b'"', line).is_none() => {
                let fields = line
                    .iter()
                    .fold(1usize, |n, &b| n + usize::from(b == delim));
                if fields == 1 && line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                check(fields, line_no, &mut records)?;
            }
            _ => {
                let (mut fields, first, mut quoted) = match open {
                    Some((f, first)) => (f, first, true),
                    None => (1, line_no, false),
                };
                let mut i = 0;
                while i < line.len() {
                    let b = line[i];
                    if quoted {
                        if b == b'"' {
                            if line.get(i + 1) == Some(&b'"') {
                                i += 1;
                            } else {
                                quoted = false;
                            }
                        }
                    } else if b == b'"' {
                        quoted = true;
                    } else if b == delim {
                        fields += 1;
                    }
                    i += 1;
                }
                if quoted {
                    open = Some((fields, first));
                } else {
                    open = None;
                    check(fields, first, &mut records)?;
                }
            }
        }
    }
    if let Some((fields, first)) = open {
        check(fields, first, &mut records)?;
    }
    Ok(records)
}

crate::serde_as_text!(Encoding);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_detected_and_transcoded() {
        let raw = b"Description\ncaf\xe9\n";
        let (text, enc) = decode_text(raw, "f.csv", Encoding::Auto, &Default::default()).unwrap();
        assert_eq!(enc, "latin-1");
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "Description\ncaf\u{e9}\n"
        );
        let err = decode_text(raw, "f.csv", Encoding::Utf8, &Default::default()).unwrap_err();
        let remedy = crate::remedy::Remedied::remedy(&err);
        let err = err.to_string();
        assert!(
            err.contains("line 2") && remedy == Some(crate::remedy::Remedy::GiveEncoding),
            "{err}"
        );
    }

    #[test]
    fn windows_1252_decodes_the_euro_and_curly_quotes() {
        let raw = b"Description\n\x80 5 \x93mug\x94\n";
        let (text, enc) = decode_text(
            raw,
            "f",
            "cp1252".parse::<Encoding>().unwrap(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(enc, "windows-1252");
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "Description\n\u{20ac} 5 \u{201c}mug\u{201d}\n"
        );
        // Latin-1 reads the same bytes as control characters.
        let (latin, _) = decode_text(raw, "f", Encoding::Latin1, &Default::default()).unwrap();
        assert!(std::str::from_utf8(&latin).unwrap().contains('\u{80}'));
    }

    #[test]
    fn utf8_bom_is_stripped() {
        let (text, enc) = decode_text(
            b"\xEF\xBB\xBFa,b\n1,2\n",
            "f",
            Encoding::Auto,
            &Default::default(),
        )
        .unwrap();
        assert_eq!((text.as_ref(), enc), (&b"a,b\n1,2\n"[..], "utf-8"));
    }

    #[test]
    fn sniffs_delimiters_ignoring_quoted_ones() {
        let semi = b"a;b;c\n\"x;y\";2;3\n4;5;6\n";
        assert_eq!(sniff_layout(semi, "f").unwrap(), Layout::Delimited(b';'));
        let comma = b"a,b\n\"1;2;3\",4\n";
        assert_eq!(sniff_layout(comma, "f").unwrap(), Layout::Delimited(b','));
    }

    #[test]
    fn aligned_text_becomes_tab_separated() {
        let text = b"Customer  Description          Amount\n   17850  WHITE HANGING HEART    15.30\n      12  MUG                     2.00\n";
        assert_eq!(sniff_layout(text, "f").unwrap(), Layout::FixedWidth);
        let tsv = to_tab_separated(text, Layout::FixedWidth);
        assert_eq!(
            String::from_utf8(tsv).unwrap(),
            "Customer\tDescription\tAmount\n17850\tWHITE HANGING HEART\t15.30\n12\tMUG\t2.00\n"
        );
        let plain = b"id  amount\n1 2.5\n22   3\n";
        assert_eq!(sniff_layout(plain, "f").unwrap(), Layout::WhitespaceSplit);
        assert_eq!(
            to_tab_separated(plain, Layout::WhitespaceSplit),
            b"id\tamount\n1\t2.5\n22\t3\n"
        );
    }

    #[test]
    fn shape_check_counts_records_and_finds_ragged_rows() {
        let ok = b"a,b,c\n1,\"x,\ny\",3\n\n4,5,6";
        assert_eq!(check_shape(ok, b',', "f").unwrap(), 2);
        let bad = b"a,b,c\n1,2,3\n4,5\n";
        let err = check_shape(bad, b',', "f.csv").unwrap_err().to_string();
        assert!(
            err.contains("row 2 (line 3) has 2 fields but the header has 3"),
            "{err}"
        );
    }
}
