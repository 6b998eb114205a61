//! The trained solution as campaigns, batch jobs and the CLI use it: a
//! recipe's model plus the catalog, users, their histories, item popularity
//! and (when an items dataset exists) item metadata vectors.
//!
//! Rules every recipe gets here: a user with no history gets popular items;
//! equal model scores break by popularity, so answers never depend on id
//! order; items a user interacted with are not recommended to them; and with
//! an exploration weight, a share of the slots goes to new or cold items
//! (created within the age cutoff, or never interacted with), chosen by how
//! well their metadata matches the user's history.

use fixedbitset::FixedBitSet;

use super::attributes::AttributeExpr;
use super::features::{ItemFeatures, ItemRecord};
use super::{
    Histories, IdMap, Model, Query, RecipeKind, Scored, TrainingData, load_model, top_k,
    top_k_biased,
};
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};

/// Popularity tie-breaks stay far below any real score difference.
const TIE_BREAK: f32 = 1e-7;

/// What a segment is asked for: users for one item, or for an attribute expression.
#[derive(Debug, Clone)]
pub enum SegmentQuery<'a> {
    Item(&'a str),
    Attributes(&'a str),
}

/// How many recommendation slots go to new items, and which items are new.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exploration {
    /// 0 to 1: share of the slots for new items.
    pub weight: f32,
    /// Items created at most this many days before the newest interaction count as new.
    pub item_age_cutoff_days: f64,
}

impl Exploration {
    pub const NONE: Exploration = Exploration {
        weight: 0.0,
        item_age_cutoff_days: 30.0,
    };
}

impl Default for Exploration {
    fn default() -> Self {
        Exploration::NONE
    }
}

/// How one request is answered beyond the query itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    pub exploration: Exploration,
    /// Only these items may be recommended (a compiled filter).
    pub allowed: Option<&'a FixedBitSet>,
    /// Items the user interacted with since the model was trained (real-time
    /// events), oldest first: they extend the history the model scores
    /// from and are not recommended again.
    pub recent: &'a [u32],
}

/// Sets the scores of items outside `allowed` to −∞: 8 scores per
/// vector blend where AVX2 is available, skipping bytes of the mask that
/// allow all 8 (a few microseconds for 50k items).
pub fn mask_scores(scores: &mut [f32], allowed: Option<&FixedBitSet>) {
    let Some(a) = allowed else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        unsafe { mask_scores_avx2(scores, a) };
        return;
    }
    mask_scores_from(scores, a, 0);
}

/// The scalar way, from score `start` on: one step per disallowed item.
fn mask_scores_from(scores: &mut [f32], a: &FixedBitSet, start: usize) {
    const BITS: usize = usize::BITS as usize;
    for (w, &word) in a.as_slice().iter().enumerate().skip(start / BITS) {
        let mut zeros = !word;
        while zeros != 0 {
            let i = w * BITS + zeros.trailing_zeros() as usize;
            zeros &= zeros - 1;
            if i < start {
                continue;
            }
            match scores.get_mut(i) {
                Some(s) => *s = f32::NEG_INFINITY,
                None => return,
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn mask_scores_avx2(scores: &mut [f32], a: &FixedBitSet) {
    use std::arch::x86_64::*;
    let blocks = a.as_slice();
    let per_block = usize::BITS as usize / 8;
    let groups = scores.len().min(a.len()) / 8;
    let bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let inf = _mm256_set1_ps(f32::INFINITY);
    let sign = _mm256_set1_epi32(i32::MIN);
    for g in 0..groups {
        let byte = (blocks[g / per_block] >> ((g % per_block) * 8)) & 0xff;
        if byte == 0xff {
            continue;
        }
        // Lanes whose bit is 0 become all ones: their cap is −∞, the others'
        // +∞, and min(score, cap) masks. (A blend here compiles to a masked
        // store, which is microcoded and 5× slower on some CPUs.)
        let off = _mm256_cmpeq_epi32(
            _mm256_and_si256(_mm256_set1_epi32(byte as i32), bit),
            _mm256_setzero_si256(),
        );
        let cap = _mm256_xor_ps(inf, _mm256_castsi256_ps(_mm256_and_si256(off, sign)));
        // SAFETY: g * 8 + 7 < scores.len().
        unsafe {
            let p = scores.as_mut_ptr().add(g * 8);
            // min(cap, NaN) keeps the NaN, which no top-K ever selects.
            _mm256_storeu_ps(p, _mm256_min_ps(cap, _mm256_loadu_ps(p)));
        }
    }
    mask_scores_from(scores, a, groups * 8);
}

pub struct SolutionModel {
    pub recipe: RecipeKind,
    pub items: IdMap,
    pub users: IdMap,
    histories: Histories,
    /// Share of users who interacted with each item.
    popularity: Vec<f32>,
    /// The newest interaction's time (UNIX seconds): "now" for the data.
    reference_time: i64,
    features: Option<ItemFeatures>,
    model: Box<dyn Model>,
    /// Items the recipe's model scores: the catalog's first `model_items`.
    /// Items added after training ([`SolutionModel::with_new_items`]) come
    /// after them, scored 0 and reached through exploration.
    model_items: usize,
}

impl SolutionModel {
    pub fn new(recipe: RecipeKind, data: &TrainingData, model: Box<dyn Model>) -> SolutionModel {
        let d = data.interactions;
        SolutionModel {
            recipe,
            items: d.items.clone(),
            users: d.users.clone(),
            histories: data.histories.clone(),
            popularity: d.popularity(),
            reference_time: d.timestamp.iter().copied().max().unwrap_or(0),
            features: None,
            model,
            model_items: d.items.len(),
        }
    }

    fn with_model_items(mut self) -> SolutionModel {
        self.model_items = self.items.len();
        self
    }

    /// Adds items the model was not trained with (posted with `PutItems`,
    /// or imported since): they join the catalog with no interactions, so
    /// exploration can recommend them by their metadata at once. In memory
    /// only; the next training makes them part of the model.
    pub fn with_new_items(mut self, items: Vec<(String, ItemRecord)>) -> SolutionModel {
        for (id, record) in items {
            if self.items.get(&id).is_some() {
                continue;
            }
            self.items.intern(&id);
            self.popularity.push(0.0);
            if let Some(f) = &mut self.features {
                f.push_item(Some(&record));
            }
        }
        self
    }

    /// Attaches item metadata, one record per catalog item.
    pub fn with_features(mut self, records: &[Option<ItemRecord>]) -> SolutionModel {
        debug_assert_eq!(records.len(), self.items.len());
        self.features = Some(ItemFeatures::build(records));
        self
    }

    /// The recipe's model inside.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    pub fn has_item_metadata(&self) -> bool {
        self.features.is_some()
    }

    /// Scores for a user: the model's, or popularity for a user with no history.
    fn score_user(&self, user: Option<u32>, history: &[u32], out: &mut [f32]) {
        if history.is_empty() {
            out.copy_from_slice(&self.popularity);
            return;
        }
        let m = self.model_items;
        if out.len() > m {
            // Items added after training: the model sees neither them nor
            // their events; they score 0.
            out[m..].fill(0.0);
            let known: Vec<u32> = history
                .iter()
                .copied()
                .filter(|&i| (i as usize) < m)
                .collect();
            if known.is_empty() {
                out[..m].copy_from_slice(&self.popularity[..m]);
            } else {
                self.model.score_user(user, &known, &mut out[..m]);
            }
        } else {
            self.model.score_user(user, history, out);
        }
        out.iter_mut()
            .zip(&self.popularity)
            .for_each(|(o, p)| *o += TIE_BREAK * p);
    }

    fn history_of(&self, user: &str) -> (Option<u32>, &[u32]) {
        let u = self.users.get(user);
        (u, u.map(|u| self.histories.of(u)).unwrap_or(&[]))
    }

    /// Top `n` items for a query; items the user already interacted with (or
    /// the query item itself) are left out.
    pub fn recommend(&self, query: &Query, n: usize) -> Vec<Scored> {
        self.recommend_exploring(query, n, Exploration::NONE)
    }

    /// Like [`SolutionModel::recommend`], with a share of the slots for new items.
    pub fn recommend_exploring(
        &self,
        query: &Query,
        n: usize,
        exploration: Exploration,
    ) -> Vec<Scored> {
        self.recommend_with(
            query,
            n,
            &Ask {
                exploration,
                ..Ask::default()
            },
        )
    }

    /// Top `n` items for a query, with a filter, real-time events and exploration.
    pub fn recommend_with(&self, query: &Query, n: usize, ask: &Ask) -> Vec<Scored> {
        let exploration = ask.exploration;
        let mut scores = vec![0.0f32; self.items.len()];
        let mut history: &[u32] = &[];
        let joined: Vec<u32>;
        match query {
            Query::User(id) => {
                let (user, h) = self.history_of(id);
                history = h;
                if !ask.recent.is_empty() {
                    joined = h.iter().chain(ask.recent).copied().collect();
                    history = &joined;
                }
                self.score_user(user, history, &mut scores);
                for &i in history {
                    scores[i as usize] = f32::NEG_INFINITY;
                }
            }
            Query::Item(id) => match self.items.get(id) {
                Some(item) if (item as usize) < self.model_items => {
                    let m = self.model_items;
                    self.model.score_related(item, &mut scores[..m]);
                    scores[m..].fill(0.0);
                    scores
                        .iter_mut()
                        .zip(&self.popularity)
                        .for_each(|(o, p)| *o += TIE_BREAK * p);
                    scores[item as usize] = f32::NEG_INFINITY;
                }
                // An item added after training: popular items, not itself.
                Some(item) => {
                    scores.copy_from_slice(&self.popularity);
                    scores[item as usize] = f32::NEG_INFINITY;
                }
                // An unknown item: popular items.
                None => scores.copy_from_slice(&self.popularity),
            },
        }
        mask_scores(&mut scores, ask.allowed);
        let ranked = top_k(&scores, n);
        let ranked = self.explore(ranked, &scores, history, n, exploration);
        ranked
            .into_iter()
            .map(|(i, s)| Scored {
                item_id: self.items.id(i).to_string(),
                score: s,
            })
            .collect()
    }

    /// Recommendations for many users at once, as batch jobs ask: known
    /// users are scored in blocks (one matrix product per block for factor
    /// models), in parallel; users with no history share the popular answer.
    /// `allowed`, when not empty, holds each user's filter mask.
    pub fn recommend_users(
        &self,
        users: &[&str],
        n: usize,
        exploration: Exploration,
        allowed: &[Option<&FixedBitSet>],
    ) -> Vec<Vec<Scored>> {
        use rayon::prelude::*;
        const BLOCK: usize = 128;
        debug_assert!(allowed.is_empty() || allowed.len() == users.len());
        let mask = |pos: usize| allowed.get(pos).copied().flatten();
        let cold = self.recommend_exploring(&Query::User(""), n, exploration);
        let known: Vec<(usize, u32)> = users
            .iter()
            .enumerate()
            .filter_map(|(pos, id)| {
                self.users
                    .get(id)
                    .filter(|&u| !self.histories.of(u).is_empty())
                    .map(|u| (pos, u))
            })
            .collect();
        let n_items = self.items.len();
        let answers: Vec<(usize, Vec<Scored>)> = known
            .par_chunks(BLOCK)
            .map_init(Vec::new, |scratch: &mut Vec<f32>, block| {
                let idx: Vec<u32> = block.iter().map(|b| b.1).collect();
                // A reused buffer: every model's block scoring overwrites
                // all of it, and a fresh 10 MB zeroed per block of 128 users
                // cost as much as the scoring itself.
                scratch.resize(idx.len() * n_items, 0.0);
                let scores = &mut scratch[..idx.len() * n_items];
                self.model.score_block(&idx, &self.histories, scores);
                let rows: Vec<(usize, Vec<Scored>)> = block
                    .iter()
                    .zip(scores.chunks_exact_mut(n_items.max(1)))
                    .map(|(&(pos, u), row)| {
                        let history = self.histories.of(u);
                        for &i in history {
                            row[i as usize] = f32::NEG_INFINITY;
                        }
                        mask_scores(row, mask(pos));
                        let top = top_k_biased(row, Some((&self.popularity, TIE_BREAK)), n);
                        let ranked = self.explore(top, row, history, n, exploration);
                        (pos, self.scored(ranked))
                    })
                    .collect();
                rows
            })
            .flatten_iter()
            .collect();
        let mut out = vec![cold; users.len()];
        let mut filtered_cold: Vec<usize> =
            (0..users.len()).filter(|&p| mask(p).is_some()).collect();
        for (pos, answer) in answers {
            out[pos] = answer;
            filtered_cold.retain(|&p| p != pos);
        }
        // Users with no history but a filter: the popular answer, filtered.
        for pos in filtered_cold {
            out[pos] = self.recommend_with(
                &Query::User(users[pos]),
                n,
                &Ask {
                    exploration,
                    allowed: mask(pos),
                    recent: &[],
                },
            );
        }
        out
    }

    fn scored(&self, ranked: Vec<(u32, f32)>) -> Vec<Scored> {
        ranked
            .into_iter()
            .map(|(i, s)| Scored {
                item_id: self.items.id(i).to_string(),
                score: s,
            })
            .collect()
    }

    /// Mixes new items into `ranked`: ⌊n·weight⌋ of the slots, spread evenly
    /// after the first, go to the eligible items whose metadata best matches
    /// the history (the newest first when there is no history).
    fn explore(
        &self,
        ranked: Vec<(u32, f32)>,
        scores: &[f32],
        history: &[u32],
        n: usize,
        e: Exploration,
    ) -> Vec<(u32, f32)> {
        let Some(features) = &self.features else {
            return ranked;
        };
        let slots = ((n as f32) * e.weight.clamp(0.0, 1.0)).floor() as usize;
        if slots == 0 {
            return ranked;
        }
        let cutoff = self.reference_time - (e.item_age_cutoff_days * 86_400.0) as i64;
        let mut distinct = history.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let profile = features.profile(&distinct);
        let newest = features
            .created
            .iter()
            .copied()
            .filter(|&c| c != i64::MIN)
            .max()
            .unwrap_or(0);
        let mut candidates: Vec<(u32, f32)> = (0..self.items.len() as u32)
            .filter(|&i| scores[i as usize].is_finite())
            .filter(|&i| {
                self.popularity[i as usize] == 0.0
                    || features
                        .created
                        .get(i as usize)
                        .is_some_and(|&c| c != i64::MIN && c >= cutoff)
            })
            .map(|i| {
                let c = features
                    .created
                    .get(i as usize)
                    .copied()
                    .unwrap_or(i64::MIN);
                // Recency breaks ties (and ranks alone for a user with no history).
                let age_days = if c == i64::MIN {
                    1e4
                } else {
                    (newest - c) as f32 / 86_400.0
                };
                (
                    i,
                    features.similarity(i, &profile) + 1e-4 / (1.0 + age_days.max(0.0)),
                )
            })
            .collect();
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        candidates.truncate(slots);
        if candidates.is_empty() {
            return ranked;
        }
        let explored: std::collections::HashSet<u32> = candidates.iter().map(|c| c.0).collect();
        let mut rest = ranked.into_iter().filter(|(i, _)| !explored.contains(i));
        let mut picks = candidates.into_iter();
        let k = explored.len();
        let positions: Vec<usize> = (1..=k).map(|j| j * n / (k + 1)).collect();
        let mut out = Vec::with_capacity(n);
        for pos in 0..n {
            let next = if positions.contains(&pos) {
                picks.next().or_else(|| rest.next())
            } else {
                rest.next().or_else(|| picks.next())
            };
            match next {
                Some(x) => out.push(x),
                None => break,
            }
        }
        // An explored item shows the score of the model's item after it (or
        // before it, at the end), so scores still descend for clients that
        // sort by them.
        for p in 0..out.len() {
            if explored.contains(&out[p].0) {
                let after = out[p + 1..].iter().find(|x| !explored.contains(&x.0));
                let before = out[..p].iter().rev().find(|x| !explored.contains(&x.0));
                out[p].1 = after.or(before).map_or(0.0, |x| x.1);
            }
        }
        out
    }

    /// Re-ranks `items` for a user, best first; items the model does not know
    /// come last, unscored, in their given order.
    /// Items outside `ask.allowed` are left out.
    pub fn rank(&self, user: &str, items: &[String], ask: &Ask) -> Vec<(String, Option<f32>)> {
        let mut scores = vec![0.0f32; self.items.len()];
        let (u, history) = self.history_of(user);
        if ask.recent.is_empty() {
            self.score_user(u, history, &mut scores);
        } else {
            let joined: Vec<u32> = history.iter().chain(ask.recent).copied().collect();
            self.score_user(u, &joined, &mut scores);
        }
        let (mut known, unknown): (Vec<_>, Vec<_>) = items
            .iter()
            .filter(|id| match (ask.allowed, self.items.get(id)) {
                (Some(a), Some(i)) => a.contains(i as usize),
                (Some(_), None) => true,
                (None, _) => true,
            })
            .map(|id| {
                (
                    id.clone(),
                    self.items
                        .get(id)
                        .map(|i| scores[i as usize])
                        .filter(|s| s.is_finite()),
                )
            })
            .partition(|(_, s)| s.is_some());
        known.sort_by(|a, b| b.1.unwrap_or(0.0).total_cmp(&a.1.unwrap_or(0.0)));
        known.extend(unknown);
        known
    }

    /// Scores of every user for `items` (summed); users who already
    /// interacted with an item of `exclude` get −∞.
    pub fn user_scores(&self, items: &[u32], exclude: &[u32]) -> Vec<f32> {
        let mut scores = vec![0f32; self.users.len()];
        self.model
            .score_users(items, &self.histories, self.items.len(), &mut scores);
        if !exclude.is_empty() {
            for (u, s) in scores.iter_mut().enumerate() {
                if self
                    .histories
                    .of(u as u32)
                    .iter()
                    .any(|i| exclude.contains(i))
                {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
        scores
    }

    /// The `n` users most likely to interact with an item (users who already
    /// did are left out) or with the items an attribute expression matches.
    /// `allowed` users (a compiled UserID filter) limit the segment.
    pub fn segment(
        &self,
        query: &SegmentQuery,
        n: usize,
        allowed: Option<&FixedBitSet>,
    ) -> Result<Vec<(String, f32)>, String> {
        let scores = match query {
            SegmentQuery::Item(id) => {
                let i = self.items.get(id).ok_or_else(|| {
                    format!("unknown item {id:?}: it is not in this solution version's catalog")
                })?;
                self.user_scores(&[i], &[i])
            }
            SegmentQuery::Attributes(text) => {
                let expr =
                    AttributeExpr::parse(text).map_err(|e| format!("itemAttributes: {e}"))?;
                let f = self.features.as_ref().ok_or(
                    "itemAttributes needs item metadata: import an items dataset before training this solution",
                )?;
                let items: Vec<u32> = (0..self.items.len() as u32)
                    .filter(|&i| expr.matches(&f.categorical_names(i).collect()))
                    .collect();
                if items.is_empty() {
                    let fields: Vec<&str> = expr.fields().collect();
                    return Err(format!(
                        "itemAttributes: no item matches (fields: {})",
                        fields.join(", ")
                    ));
                }
                let mut s = self.user_scores(&items, &[]);
                let n_items = items.len() as f32;
                s.iter_mut().for_each(|x| *x /= n_items);
                s
            }
        };
        let mut scores = scores;
        mask_scores(&mut scores, allowed);
        Ok(top_k(&scores, n)
            .into_iter()
            .map(|(u, s)| (self.users.id(u).to_string(), s))
            .collect())
    }

    /// Top `n` for a test user of the metrics split, by index (no exploration).
    pub fn recommend_indices(&self, user: u32, given: &[u32], n: usize) -> Vec<u32> {
        let mut scores = vec![0.0f32; self.items.len()];
        self.score_user(Some(user), given, &mut scores);
        for &i in given {
            scores[i as usize] = f32::NEG_INFINITY;
        }
        top_k(&scores, n).into_iter().map(|(i, _)| i).collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = ArtifactWriter::new(self.recipe.name(), serde_json::json!({}));
        w.strings("catalog.items", self.items.ids());
        w.strings("catalog.users", self.users.ids());
        w.f32s("catalog.popularity", &self.popularity);
        w.i64s("catalog.reference_time", &[self.reference_time]);
        w.u32s("histories.offsets", &self.histories.offsets);
        w.u32s("histories.items", &self.histories.items);
        if let Some(f) = &self.features {
            f.save(&mut w);
        }
        self.model.save(&mut w);
        w.finish()
    }

    /// Loads and verifies an artifact; `file` names it in errors.
    pub fn from_bytes(file: &str, data: bytes::Bytes) -> Result<SolutionModel, ArtifactError> {
        let r = ArtifactReader::parse(file, data)?;
        let recipe = RecipeKind::parse(r.recipe()).ok_or_else(|| ArtifactError::Corrupt {
            file: file.to_string(),
            reason: format!("unknown recipe {:?} (made by a newer recflow?)", r.recipe()),
        })?;
        let model = load_model(recipe, &r).map_err(|e| match e {
            ArtifactError::Corrupt { reason, .. } => ArtifactError::Corrupt {
                file: file.to_string(),
                reason,
            },
            other => other,
        })?;
        Ok(SolutionModel {
            items: IdMap::from_ids(r.strings("catalog.items")?),
            users: IdMap::from_ids(r.strings("catalog.users")?),
            popularity: r.f32s("catalog.popularity")?,
            reference_time: r
                .i64s("catalog.reference_time")?
                .first()
                .copied()
                .unwrap_or(0),
            histories: Histories {
                offsets: r.u32s("histories.offsets")?,
                items: r.u32s("histories.items")?,
            },
            features: ItemFeatures::load(&r)?,
            model_items: 0,
            recipe,
            model,
        }
        .with_model_items())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EventSettings, Interactions, PopularityCountSpec, Recipe};
    use super::*;

    #[test]
    fn masking_matches_the_bitset_for_every_length() {
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 130, 1000] {
            let mut allowed = FixedBitSet::with_capacity(len);
            for i in (0..len).filter(|i| i % 3 == 0 || i % 17 == 5) {
                allowed.insert(i);
            }
            let mut scores: Vec<f32> = (0..len).map(|i| i as f32).collect();
            mask_scores(&mut scores, Some(&allowed));
            let mut scalar: Vec<f32> = (0..len).map(|i| i as f32).collect();
            mask_scores_from(&mut scalar, &allowed, 0);
            for i in 0..len {
                let want = if allowed.contains(i) {
                    i as f32
                } else {
                    f32::NEG_INFINITY
                };
                assert_eq!(scores[i], want, "len {len}, item {i}");
                assert_eq!(scalar[i], want, "len {len}, item {i} (scalar)");
            }
        }
    }

    #[test]
    fn exploration_mixes_in_new_items_that_match_the_history() {
        // u1 watched the comedies a and b; x and y are old horror films; d and
        // e are brand new (no interactions yet): d a comedy, e horror.
        let rows = [
            ("u1", "a", 1_000_100, None, None),
            ("u1", "b", 1_000_200, None, None),
            ("u2", "a", 1_000_300, None, None),
            ("u2", "x", 1_000_400, None, None),
            ("u3", "x", 1_000_500, None, None),
            ("u3", "y", 1_000_600, None, None),
        ];
        let mut data = Interactions::from_rows(rows.into_iter());
        for id in ["d", "e"] {
            data.items.intern(id);
        }
        let td = TrainingData::new(&data, &EventSettings::default()).unwrap();
        let model = PopularityCountSpec::default().train(&td).unwrap();
        let comedy = |created| {
            Some(ItemRecord {
                categorical: vec![("GENRE".into(), "Comedy".into())],
                text: None,
                created: Some(created),
            })
        };
        let horror = |created| {
            Some(ItemRecord {
                categorical: vec![("GENRE".into(), "Horror".into())],
                text: None,
                created: Some(created),
            })
        };
        // catalog order: a, b, x, y, d, e; only d and e are new.
        let records = vec![
            comedy(1),
            comedy(1),
            horror(1),
            horror(1),
            comedy(1_000_000),
            horror(1_000_000),
        ];
        let sm = SolutionModel::new(crate::recipes::RecipeKind::PopularityCount, &td, model)
            .with_features(&records);
        let plain: Vec<String> = sm
            .recommend(&Query::User("u1"), 4)
            .into_iter()
            .map(|s| s.item_id)
            .collect();
        assert_eq!(plain, ["x", "y", "d", "e"]);
        let e = Exploration {
            weight: 0.5,
            item_age_cutoff_days: 1.0,
        };
        let explored: Vec<String> = sm
            .recommend_exploring(&Query::User("u1"), 4, e)
            .into_iter()
            .map(|s| s.item_id)
            .collect();
        // Two slots (⌊4 × 0.5⌋), at positions 1 and 2: the comedy d first.
        assert_eq!(explored, ["x", "d", "e", "y"]);
    }
}
