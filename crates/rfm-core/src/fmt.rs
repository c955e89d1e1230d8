//! Numbers as people read them.

/// 1234567.891 → "1,234,567.89"; `decimals` = 0 drops the fraction.
pub fn thousands(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    if v < 0.0 && v.abs() >= 0.5 * 10f64.powi(-(decimals as i32)) {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(541909.0, 0), "541,909");
        assert_eq!(thousands(9747747.934, 2), "9,747,747.93");
        assert_eq!(thousands(-1234.5, 2), "-1,234.50");
        assert_eq!(thousands(12.0, 0), "12");
    }
}
