//! CSV cells that a spreadsheet would run as a formula are neutralised (OWASP's rule for CSV
//! injection): a text cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a
//! leading `'`. Numbers (`-12.5`, `+3`) stay numbers. Every CSV the program writes uses
//! [`CsvWriter`]; JSON outputs keep the raw values.

use std::borrow::Cow;

/// The cell as it is safe to write.
pub fn safe(cell: &str) -> Cow<'_, str> {
    let risky = matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    );
    if risky && cell.trim().parse::<f64>().is_err() {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A `csv::Writer` over memory whose every record goes through [`safe`].
pub struct CsvWriter<W: std::io::Write = Vec<u8>>(csv::Writer<W>);

impl CsvWriter {
    pub fn new() -> CsvWriter {
        CsvWriter(csv::Writer::from_writer(Vec::new()))
    }

    pub fn finish(self) -> anyhow::Result<Vec<u8>> {
        self.0.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
    }
}

impl<W: std::io::Write> CsvWriter<W> {
    /// Writes straight to `w`.
    pub fn to(w: W) -> CsvWriter<W> {
        CsvWriter(csv::Writer::from_writer(w))
    }

    /// Flushes what is buffered to the writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }

    pub fn write<I, S>(&mut self, record: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cells: Vec<String> = record
            .into_iter()
            .map(|c| safe(c.as_ref()).into_owned())
            .collect();
        self.0.write_record(&cells)
    }
}

impl Default for CsvWriter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        for (cell, want) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("+cmd", "'+cmd"),
            ("-2+3", "'-2+3"),
            ("\tx", "'\tx"),
            ("\r=1", "'\r=1"),
            ("-12.5", "-12.5"),
            ("+3", "+3"),
            ("17850", "17850"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(safe(cell), want, "{cell:?}");
        }
    }
}
