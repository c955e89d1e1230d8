//! Finding the columns of a header: where each role is, and the export preset whose names
//! were used.

use std::collections::BTreeMap;

use super::IngestError;
use super::columns::{ColumnMap, Role, normalize_header};
use super::presets::Preset;

/// Where each role was found: role → (column index, header as written in the file).
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub found: BTreeMap<Role, (usize, String)>,
    /// The export preset whose names were used, if one was.
    pub preset: Option<Preset>,
}

impl Resolved {
    pub fn index(&self, role: Role) -> Option<usize> {
        self.found.get(&role).map(|(i, _)| *i)
    }

    pub fn header(&self, role: Role) -> Option<&str> {
        self.found.get(&role).map(|(_, h)| h.as_str())
    }

    /// Role → header, for the run manifest.
    pub fn manifest(&self) -> BTreeMap<String, String> {
        self.found
            .iter()
            .map(|(r, (_, h))| (r.key().to_string(), h.clone()))
            .collect()
    }
}

/// Finds every mapped role among `headers`. Customer and date are required, and either
/// quantity and price or amount. The invoice column is optional: without it each row is
/// one purchase.
pub fn resolve(map: &ColumnMap, headers: &[String], file: &str) -> Result<Resolved, IngestError> {
    let normalized: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    let mut resolved = Resolved::default();
    let mut missing = Vec::new();
    let amount_mode = map.uses_amount();
    for role in Role::ALL {
        let wanted = map.get(role);
        if wanted.is_empty() {
            continue;
        }
        let key = normalize_header(wanted);
        match normalized.iter().position(|h| *h == key) {
            Some(i) => {
                resolved.found.insert(role, (i, headers[i].clone()));
            }
            None => {
                // A role named explicitly must be there; quantity and price only without
                // an amount, and without an invoice each row is an order.
                let required = match role {
                    Role::Quantity | Role::Price => !amount_mode,
                    Role::Invoice => false,
                    _ => true,
                };
                if required {
                    missing.push(format!(
                        "{role} (`{}`)",
                        crate::bounded::value(wanted, crate::bounded::MAX_VALUE)
                    ));
                } else if role == Role::Invoice {
                    tracing::warn!(
                        "{file}: no invoice column `{wanted}`; each row counts as one purchase"
                    );
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(IngestError::MissingColumns {
            path: file.to_string(),
            missing: missing.join(", "),
            found: crate::bounded::list(headers),
        });
    }
    Ok(resolved)
}
