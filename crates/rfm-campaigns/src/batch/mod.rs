//! Batch campaign copy: one item per segment × channel × locale × tone × variant, written
//! as JSONL that a rerun resumes.

pub mod copy;
pub mod jsonl;
pub mod run;

use serde::{Deserialize, Serialize};

pub use crate::agent::channels::{self, Channel};

/// One piece of copy to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// `segment-slug/channel/locale/tone/variant`: unique, stable across reruns.
    pub key: String,
    pub cluster: usize,
    pub segment: String,
    pub channel: Channel,
    pub locale: String,
    pub tone: String,
    pub variant: u32,
}

/// Every item, in a stable order: segment, channel, locale, tone, variant.
pub fn items(
    segments: &[(usize, String)],
    channels: &[Channel],
    locales: &[String],
    tones: &[String],
    variants: u32,
) -> Vec<Item> {
    let mut out = Vec::new();
    for (cluster, name) in segments {
        let slug = rfm_core::run_folder::slug(name);
        for &channel in channels {
            for locale in locales {
                for tone in tones {
                    for variant in 1..=variants {
                        out.push(Item {
                            key: format!("{slug}/{channel}/{locale}/{tone}/{variant}"),
                            cluster: *cluster,
                            segment: name.clone(),
                            channel,
                            locale: locale.clone(),
                            tone: tone.clone(),
                            variant,
                        });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_cover_the_product_with_unique_keys() {
        let segs = vec![(0, "Champions".to_string()), (1, "At Risk".to_string())];
        let all = items(
            &segs,
            &[Channel::Email, Channel::Sms, Channel::Push],
            &["en".into(), "de".into()],
            &["friendly".into()],
            3,
        );
        assert_eq!(all.len(), 2 * 3 * 2 * 3);
        let keys: std::collections::HashSet<_> = all.iter().map(|i| &i.key).collect();
        assert_eq!(keys.len(), all.len());
        assert_eq!(all[0].key, "champions/email/en/friendly/1");
        assert_eq!(all.last().unwrap().key, "at-risk/push/de/friendly/3");
    }
}
