//! Date formats as Spark reads them: a chrono pattern as a Spark datetime pattern, and the
//! SQL that turns a text column into milliseconds.

use anyhow::{Result, bail};

use rfm_core::dates::DateFormat;

/// Milliseconds since the epoch (UTC) from a text column in `format`; NULL where a value does
/// not parse, as the local reader counts it.
pub(super) fn date_millis(format: &DateFormat, col: &str) -> Result<String> {
    let v = format!("btrim({col})");
    let number = format!("try_cast({v} AS DOUBLE)");
    Ok(match format {
        DateFormat::Pattern(p) => {
            format!("unix_millis(try_to_timestamp({v}, '{}'))", java_pattern(p)?)
        }
        DateFormat::Iso8601 | DateFormat::Rfc3339 => {
            format!("unix_millis(try_cast({v} AS TIMESTAMP))")
        }
        DateFormat::ExcelSerial => format!(
            "CASE WHEN {number} BETWEEN 1 AND 2958465 THEN \
             try_cast(round(({number} - {}) * 86400000) AS BIGINT) END",
            rfm_core::dates::EXCEL_EPOCH_OFFSET_DAYS
        ),
        DateFormat::EpochSeconds => format!("try_cast(round({number} * 1000) AS BIGINT)"),
        DateFormat::EpochMillis => format!("try_cast(round({number}) AS BIGINT)"),
        DateFormat::Native => bail!("a native timestamp is not text"),
    })
}

/// A chrono pattern as a Spark datetime pattern: single letters (one or two digits) between
/// separators, two where fields touch (`%Y%m%d`).
pub(super) fn java_pattern(p: &str) -> Result<String> {
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    let mut after_field = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            if c.is_ascii_alphanumeric() || c == '\'' || c == '\\' {
                bail!("a literal `{c}`");
            }
            out.push(c);
            after_field = false;
            continue;
        }
        let mut spec = chars.next();
        if spec == Some('-') {
            spec = chars.next();
        }
        let touching = after_field || chars.peek() == Some(&'%');
        after_field = true;
        let (one, two) = match spec {
            Some('Y') => ("yyyy", "yyyy"),
            Some('y') => ("yy", "yy"),
            Some('m') => ("M", "MM"),
            Some('d') | Some('e') => ("d", "dd"),
            Some('H') => ("H", "HH"),
            Some('I') => ("h", "hh"),
            Some('M') => ("m", "mm"),
            Some('S') => ("s", "ss"),
            Some('b') | Some('h') => ("MMM", "MMM"),
            Some('B') => ("MMMM", "MMMM"),
            Some('p') => ("a", "a"),
            other => bail!("`%{}`", other.map(String::from).unwrap_or_default()),
        };
        out.push_str(if touching { two } else { one });
    }
    Ok(out)
}
