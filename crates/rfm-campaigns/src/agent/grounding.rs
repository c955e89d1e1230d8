//! Grounding checks for campaign copy: every number, percentage or offer must come from the
//! cluster's figures or from the approved offers in the settings; the subject fits an inbox
//! line; only whitelisted placeholders appear.

/// Longest subject most inboxes show in full.
pub const MAX_SUBJECT: usize = 78;
/// Placeholders an email tool fills per recipient.
pub const PLACEHOLDERS: [&str; 1] = ["{{first_name}}"];
/// Words that make an offer; a sentence with one must quote an approved offer.
const OFFER_WORDS: [&str; 6] = [
    "% off",
    "discount",
    "voucher",
    "coupon",
    "free ",
    "promo code",
];

/// One problem found in the copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub field: &'static str,
    pub problem: String,
}

/// Numbers written in `text` (`1,234.50` → 1234.5; `10 %` → 10).
pub fn numbers(text: &str) -> Vec<f64> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || ((b[i] == b'.' || b[i] == b',')
                        && i + 1 < b.len()
                        && b[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            if i < b.len() && b[i].is_ascii_alphabetic() {
                continue; // part of a code such as 3D or 2nd
            }
            if let Ok(v) = text[start..i].replace(',', "").parse::<f64>() {
                out.push(v);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Checks one email against the allowed figures and offers.
pub fn check(
    subject: &str,
    preheader: &str,
    body: &str,
    allowed: &[f64],
    offers: &[String],
) -> Vec<Violation> {
    let mut found = Vec::new();
    if subject.chars().count() > MAX_SUBJECT {
        found.push(Violation {
            field: "subject",
            problem: format!(
                "{} characters, more than {MAX_SUBJECT}",
                subject.chars().count()
            ),
        });
    }
    let offer_numbers: Vec<f64> = offers.iter().flat_map(|o| numbers(o)).collect();
    for (field, text) in [
        ("subject", subject),
        ("preheader", preheader),
        ("body", body),
    ] {
        let mut rest = text;
        while let Some(at) = rest.find("{{") {
            let end = rest[at..].find("}}").map_or(rest.len(), |e| at + e + 2);
            let placeholder: String = rest[at..end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if !PLACEHOLDERS.contains(&placeholder.as_str()) {
                found.push(Violation {
                    field,
                    problem: format!("placeholder `{}` is not allowed", &rest[at..end]),
                });
            }
            rest = &rest[end..];
        }
        for n in numbers(text) {
            let grounded = allowed
                .iter()
                .chain(&offer_numbers)
                .any(|a| (a - n).abs() <= 0.005 * a.abs().max(1.0));
            if !grounded {
                found.push(Violation {
                    field,
                    problem: format!(
                        "the number {n} is not in the cluster's figures or the approved offers"
                    ),
                });
            }
        }
        let lower = text.to_lowercase();
        if OFFER_WORDS.iter().any(|w| lower.contains(w))
            && !offers.iter().any(|o| lower.contains(&o.to_lowercase()))
        {
            found.push(Violation {
                field,
                problem: "makes an offer that is not in the approved offers".into(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_but_not_inside_codes() {
        assert_eq!(
            numbers("1,234.50 and 10 % off, 3D print, 2nd order, x2"),
            vec![1234.5, 10.0]
        );
    }

    #[test]
    fn grounded_copy_passes_and_invented_figures_do_not() {
        let offers = vec!["free shipping".to_string(), "10 % off".to_string()];
        let allowed = [867.0, 3191.53, 9.0];
        assert!(
            check(
                "Hi {{first_name}}",
                "",
                "Your 9 orders: free shipping on the next.",
                &allowed,
                &offers
            )
            .is_empty()
        );
        let v = check(
            "Hi {{ first_name }}",
            "",
            "Take 25 % off today!",
            &allowed,
            &offers,
        );
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].problem.contains("25"));
        assert!(v[1].problem.contains("not in the approved offers"));
        let v = check(&"x".repeat(79), "{{last_name}}", "", &allowed, &offers);
        assert!(
            v.iter()
                .any(|x| x.field == "subject" && x.problem.contains("79 characters"))
        );
        assert!(
            v.iter()
                .any(|x| x.field == "preheader" && x.problem.contains("{{last_name}}"))
        );
    }
}
