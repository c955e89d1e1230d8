//! Interning a text column: one small integer per row instead of a string, so that later
//! stages count and group without hashing strings again.

use rustc_hash::FxHashMap;

/// Marks a missing value in an interned column.
pub const NONE: u32 = u32::MAX;

/// An id per row (`NONE` where missing) and the distinct values in order of first
/// appearance. Exports repeat a value on consecutive lines (the lines of one invoice), so a
/// repeat of the previous row is resolved without hashing.
pub fn intern<'a>(values: impl Iterator<Item = Option<&'a str>>) -> (Vec<u32>, Vec<&'a str>) {
    let mut index: FxHashMap<&str, u32> = FxHashMap::default();
    let mut distinct = Vec::new();
    let mut previous: Option<(&str, u32)> = None;
    let ids = values
        .map(|v| match (v, previous) {
            (None, _) => NONE,
            (Some(v), Some((p, id))) if p == v => id,
            (Some(v), _) => {
                let next = distinct.len() as u32;
                let id = *index.entry(v).or_insert_with(|| {
                    distinct.push(v);
                    next
                });
                previous = Some((v, id));
                id
            }
        })
        .collect();
    (ids, distinct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_first_appearance_and_skip_missing() {
        let (ids, distinct) =
            intern([Some("b"), Some("b"), None, Some("a"), Some("b")].into_iter());
        assert_eq!(ids, vec![0, 0, NONE, 1, 0]);
        assert_eq!(distinct, vec!["b", "a"]);
    }
}
