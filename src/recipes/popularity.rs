//! `popularity-count`: every user gets the items with the most distinct users,
//! minus what they already interacted with. The baseline other recipes must beat.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Interactions, Model, Recipe};
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};
use crate::pipeline::SpecProblem;

/// Settings of `popularity-count`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularityCountSpec {
    /// Count only interactions of these event types (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
}

impl PopularityCountSpec {
    pub fn validate(&self, at: &str) -> Vec<SpecProblem> {
        self.event_types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.trim().is_empty())
            .map(|(i, _)| SpecProblem::new(format!("{at}.event_types[{i}]"), "empty event type"))
            .collect()
    }
}

impl Recipe for PopularityCountSpec {
    fn train(&self, data: &Interactions) -> anyhow::Result<Box<dyn Model>> {
        let wanted: Option<HashSet<u32>> = (!self.event_types.is_empty()).then(|| {
            self.event_types
                .iter()
                .filter_map(|t| {
                    // Event types match case-insensitively, as in filters.
                    data.event_types
                        .ids()
                        .iter()
                        .position(|e| e.eq_ignore_ascii_case(t))
                        .map(|i| i as u32)
                })
                .collect()
        });
        let mut pairs: Vec<(u32, u32)> = (0..data.len())
            .filter(|&r| match (&wanted, &data.event_type) {
                (Some(w), Some(types)) => w.contains(&types[r]),
                (Some(_), None) => false,
                (None, _) => true,
            })
            .map(|r| (data.item[r], data.user[r]))
            .collect();
        if wanted.is_some() && pairs.is_empty() {
            anyhow::bail!(
                "no interactions have the event types {:?} (the data has: {})",
                self.event_types,
                data.event_types
                    .ids()
                    .iter()
                    .filter(|t| !t.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut counts = vec![0u32; data.items.len()];
        for (item, _) in pairs {
            counts[item as usize] += 1;
        }
        let users = data.users.len().max(1) as f32;
        let scores = counts.iter().map(|&c| c as f32 / users).collect();
        Ok(Box::new(PopularityModel { scores }))
    }
}

/// Share of all users who interacted with each item.
pub struct PopularityModel {
    scores: Vec<f32>,
}

impl PopularityModel {
    pub fn load(r: &ArtifactReader) -> Result<PopularityModel, ArtifactError> {
        Ok(PopularityModel {
            scores: r.f32s("popularity.scores")?,
        })
    }
}

impl Model for PopularityModel {
    fn score_user(&self, _user: Option<u32>, _history: &[u32], out: &mut [f32]) {
        out.copy_from_slice(&self.scores);
    }

    fn score_related(&self, _item: u32, out: &mut [f32]) {
        out.copy_from_slice(&self.scores);
    }

    fn save(&self, w: &mut ArtifactWriter) {
        w.f32s("popularity.scores", &self.scores);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Query, SolutionModel};
    use super::*;

    fn data() -> Interactions {
        let rows = [
            ("u1", "a", 1, Some("click"), None),
            ("u1", "a", 2, Some("click"), None),
            ("u2", "a", 3, Some("buy"), None),
            ("u2", "b", 4, Some("click"), None),
            ("u3", "b", 5, Some("click"), None),
            ("u3", "c", 6, Some("buy"), None),
            ("u1", "b", 7, Some("click"), None),
        ];
        Interactions::from_rows(rows.into_iter())
    }

    #[test]
    fn counts_distinct_users_and_excludes_seen_items() {
        let d = data();
        let model = PopularityCountSpec::default().train(&d).unwrap();
        let sm = SolutionModel::new("popularity-count", &d, model);
        let for_new: Vec<String> = sm
            .recommend(&Query::User("nobody"), 3)
            .into_iter()
            .map(|s| s.item_id)
            .collect();
        assert_eq!(for_new, ["b", "a", "c"]); // b: 3 users, a: 2, c: 1
        let for_u1: Vec<String> = sm
            .recommend(&Query::User("u1"), 3)
            .into_iter()
            .map(|s| s.item_id)
            .collect();
        assert_eq!(for_u1, ["c"]);
        let related: Vec<String> = sm
            .recommend(&Query::Item("b"), 3)
            .into_iter()
            .map(|s| s.item_id)
            .collect();
        assert_eq!(related, ["a", "c"]);
    }

    #[test]
    fn event_type_filter_counts_only_those_events() {
        let d = data();
        let spec = PopularityCountSpec {
            event_types: vec!["BUY".into()],
        };
        let sm = SolutionModel::new("popularity-count", &d, spec.train(&d).unwrap());
        let top: Vec<String> = sm
            .recommend(&Query::User("nobody"), 2)
            .into_iter()
            .map(|s| s.item_id)
            .collect();
        assert_eq!(top, ["a", "c"]);
    }

    #[test]
    fn survives_the_artifact_round_trip() {
        let d = data();
        let sm = SolutionModel::new(
            "popularity-count",
            &d,
            PopularityCountSpec::default().train(&d).unwrap(),
        );
        let loaded = SolutionModel::from_bytes("m", sm.to_bytes().into()).unwrap();
        assert_eq!(
            loaded.recommend(&Query::User("u2"), 5),
            sm.recommend(&Query::User("u2"), 5)
        );
    }
}
