//! `popularity-count`: every user gets the items with the most distinct users,
//! minus what they already interacted with. With event weights, a user counts
//! for an item with the largest weight of their events on it. The baseline
//! other recipes must beat.

use serde::{Deserialize, Serialize};

use super::{Model, Recipe, TrainingData};
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};

/// Settings of `popularity-count`: none of its own; the solution's event
/// settings (`event_types`, `event_weights`, ...) choose what counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularityCountSpec {}

impl Recipe for PopularityCountSpec {
    fn train(&self, data: &TrainingData) -> anyhow::Result<Box<dyn Model>> {
        let d = data.interactions;
        let mut best: Vec<(u32, u32, f32)> = (0..d.len())
            .filter(|&r| data.row_weights[r] > 0.0)
            .map(|r| (d.item[r], d.user[r], data.row_weights[r]))
            .collect();
        // Per (item, user) the largest weight.
        best.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.total_cmp(&a.2)));
        best.dedup_by_key(|e| (e.0, e.1));
        let mut scores = vec![0f32; d.items.len()];
        for (item, _, w) in best {
            scores[item as usize] += w;
        }
        let users = d.users.len().max(1) as f32;
        scores.iter_mut().for_each(|s| *s /= users);
        Ok(Box::new(PopularityModel { scores }))
    }
}

/// Weighted share of all users who interacted with each item.
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
    use super::super::{EventSettings, Interactions, Query, SolutionModel, TrainingData};
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

    fn model(events: EventSettings) -> SolutionModel {
        let d = Box::leak(Box::new(data()));
        let td = TrainingData::new(d, &events).unwrap();
        let m = PopularityCountSpec::default().train(&td).unwrap();
        SolutionModel::new(crate::recipes::RecipeKind::PopularityCount, &td, m)
    }

    fn ids(v: Vec<super::super::Scored>) -> Vec<String> {
        v.into_iter().map(|s| s.item_id).collect()
    }

    #[test]
    fn counts_distinct_users_and_excludes_seen_items() {
        let sm = model(EventSettings::default());
        assert_eq!(
            ids(sm.recommend(&Query::User("nobody"), 3)),
            ["b", "a", "c"]
        ); // b: 3 users, a: 2, c: 1
        assert_eq!(ids(sm.recommend(&Query::User("u1"), 3)), ["c"]);
        assert_eq!(ids(sm.recommend(&Query::User("u2"), 3)), ["c"]);
        assert_eq!(ids(sm.recommend(&Query::Item("b"), 3)), ["a", "c"]);
    }

    #[test]
    fn event_type_filter_counts_only_those_events() {
        let sm = model(EventSettings {
            event_types: vec!["BUY".into()],
            ..Default::default()
        });
        assert_eq!(ids(sm.recommend(&Query::User("u1"), 2)), ["c"]);
        let weighted = model(EventSettings {
            event_weights: [("buy".to_string(), 5.0)].into_iter().collect(),
            ..Default::default()
        });
        // a: u1 click (1) + u2 buy (5) = 6; c: u3 buy = 5; b: 3 clicks = 3.
        assert_eq!(
            ids(weighted.recommend(&Query::Item("zzz"), 3)),
            ["b", "a", "c"],
            "unknown item: plain popularity"
        );
        assert_eq!(ids(weighted.recommend(&Query::Item("b"), 3)), ["a", "c"]);
    }

    #[test]
    fn survives_the_artifact_round_trip() {
        let sm = model(EventSettings::default());
        let loaded = SolutionModel::from_bytes("m", sm.to_bytes().into()).unwrap();
        assert_eq!(
            loaded.recommend(&Query::User("u2"), 5),
            sm.recommend(&Query::User("u2"), 5)
        );
    }
}
