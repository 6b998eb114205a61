//! Recipes turn interactions into models. Each recipe is one file with its
//! settings (`*Spec`, from the pipeline's `solutions:`), its training (the
//! [`Recipe`] trait) and its trained model (the [`Model`] trait). The
//! [`SolutionModel`] around a model owns the id maps and user histories, so
//! every recipe answers in the same way: scores over the catalog, then seen
//! items excluded and the top K taken.

pub mod attributes;
pub mod ease;
pub mod features;
pub mod ials;
pub mod matrix;
mod next_item;
mod popularity;
mod sims;
mod solution_model;
mod trending;
mod user_personalization;

use std::collections::HashMap;

use serde_yaml::{Mapping, Value};

use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};
use crate::spec::SpecProblem;
use crate::spec::from_value;

pub use matrix::{Csr, EventSettings};
pub use next_item::NextItemSpec;
pub use popularity::PopularityCountSpec;
pub use sims::SimsSpec;
pub use solution_model::{Ask, Exploration, SegmentQuery, SolutionModel, mask_scores};
pub use trending::TrendingNowSpec;
pub use user_personalization::{Algorithm, UpModel, UserPersonalizationSpec};

/// Which recipe: the closed list, named as the managed service names them.
/// Every place that depends on the recipe matches on this enum, so adding a
/// recipe is a new variant plus the arms the compiler asks for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
    serde::Serialize,
)]
#[strum(serialize_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum RecipeKind {
    PopularityCount,
    TrendingNow,
    Sims,
    UserPersonalization,
    PersonalizedRanking,
    NextItem,
    ItemAffinity,
    ItemAttributeAffinity,
}

impl RecipeKind {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// A recipe as users write it: its name, or the managed service's
    /// recipe ARN suffix (`aws-user-personalization-v2`, `aws-hrnn`).
    pub fn parse(text: &str) -> Option<RecipeKind> {
        match text.strip_prefix("aws-").unwrap_or(text) {
            "user-personalization-v2" => Some(Self::UserPersonalization),
            "personalized-ranking-v2" => Some(Self::PersonalizedRanking),
            // The managed service's session-aware family was HRNN.
            "hrnn" => Some(Self::NextItem),
            other => other.parse().ok(),
        }
    }

    /// Every recipe's name, for messages.
    pub fn names() -> Vec<&'static str> {
        use strum::IntoEnumIterator;
        Self::iter().map(Self::name).collect()
    }
}

impl std::fmt::Display for RecipeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A solution's recipe and its settings, as written under `solutions:`.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipeSpec {
    /// `popularity-count`: the items with the most distinct users. The usual baseline.
    PopularityCount(PopularityCountSpec),
    /// `trending-now`: the items whose interactions grow fastest.
    TrendingNow(TrendingNowSpec),
    /// `sims`: related items from co-occurrence in histories.
    Sims(SimsSpec),
    /// `user-personalization`: collaborative filtering (EASE or iALS).
    UserPersonalization(UserPersonalizationSpec),
    /// `personalized-ranking`: the same model, used to re-rank given lists.
    PersonalizedRanking(UserPersonalizationSpec),
    /// `next-item`: session-aware; the latest events pick what comes next.
    NextItem(NextItemSpec),
    /// `item-affinity`: for an item, the users most likely to interact (batch segments).
    ItemAffinity(UserPersonalizationSpec),
    /// `item-attribute-affinity`: for an attribute expression, the users most likely to interact.
    ItemAttributeAffinity(UserPersonalizationSpec),
}

impl RecipeSpec {
    pub(crate) fn from_value(
        recipe: &str,
        rest: Mapping,
        at: &str,
    ) -> Result<RecipeSpec, SpecProblem> {
        let Some(kind) = RecipeKind::parse(recipe) else {
            return Err(SpecProblem::new(
                format!("{at}.recipe"),
                format!(
                    "unknown recipe {recipe:?}; known recipes: {}",
                    RecipeKind::names().join(", ")
                ),
            ));
        };
        let value = Value::Mapping(rest);
        Ok(match kind {
            RecipeKind::PopularityCount => Self::PopularityCount(from_value(value, at)?),
            RecipeKind::TrendingNow => Self::TrendingNow(from_value(value, at)?),
            RecipeKind::Sims => Self::Sims(from_value(value, at)?),
            RecipeKind::UserPersonalization => Self::UserPersonalization(from_value(value, at)?),
            RecipeKind::PersonalizedRanking => Self::PersonalizedRanking(from_value(value, at)?),
            RecipeKind::NextItem => Self::NextItem(from_value(value, at)?),
            RecipeKind::ItemAffinity => Self::ItemAffinity(from_value(value, at)?),
            RecipeKind::ItemAttributeAffinity => {
                Self::ItemAttributeAffinity(from_value(value, at)?)
            }
        })
    }

    pub fn kind(&self) -> RecipeKind {
        match self {
            Self::PopularityCount(_) => RecipeKind::PopularityCount,
            Self::TrendingNow(_) => RecipeKind::TrendingNow,
            Self::Sims(_) => RecipeKind::Sims,
            Self::UserPersonalization(_) => RecipeKind::UserPersonalization,
            Self::PersonalizedRanking(_) => RecipeKind::PersonalizedRanking,
            Self::NextItem(_) => RecipeKind::NextItem,
            Self::ItemAffinity(_) => RecipeKind::ItemAffinity,
            Self::ItemAttributeAffinity(_) => RecipeKind::ItemAttributeAffinity,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Whether the recipe answers segment queries (items → users).
    pub fn is_segment(&self) -> bool {
        matches!(self, Self::ItemAffinity(_) | Self::ItemAttributeAffinity(_))
    }

    pub fn validate(&self, at: &str) -> Vec<SpecProblem> {
        match self {
            Self::PopularityCount(_) => Vec::new(),
            Self::TrendingNow(s) => s.validate(at),
            Self::Sims(s) => s.validate(at),
            Self::UserPersonalization(s) | Self::PersonalizedRanking(s) => s.validate(at),
            Self::NextItem(s) => s.validate(at),
            Self::ItemAffinity(s) | Self::ItemAttributeAffinity(s) => s.validate(at),
        }
    }

    pub fn recipe(&self) -> &dyn Recipe {
        match self {
            Self::PopularityCount(s) => s,
            Self::TrendingNow(s) => s,
            Self::Sims(s) => s,
            Self::UserPersonalization(s) | Self::PersonalizedRanking(s) => s,
            Self::NextItem(s) => s,
            Self::ItemAffinity(s) | Self::ItemAttributeAffinity(s) => s,
        }
    }

    /// The settings as JSON, recorded with each solution version. Written
    /// through text so that f32 settings keep their short form (0.1, not
    /// 0.10000000149011612).
    pub fn settings(&self) -> serde_json::Value {
        let text = match self {
            Self::PopularityCount(s) => serde_json::to_string(s),
            Self::TrendingNow(s) => serde_json::to_string(s),
            Self::Sims(s) => serde_json::to_string(s),
            Self::UserPersonalization(s) | Self::PersonalizedRanking(s) => serde_json::to_string(s),
            Self::NextItem(s) => serde_json::to_string(s),
            Self::ItemAffinity(s) | Self::ItemAttributeAffinity(s) => serde_json::to_string(s),
        };
        text.ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
}

/// What a recipe trains from: the interactions, each row's weight under the
/// solution's event settings, the users × items matrix, and each user's items
/// in time order. In the matrix a user's repeated interactions with an item
/// count once, at their largest weight: repeats (re-buying a staple,
/// re-watching) say little about what else a user wants, and counting them
/// lets a few habitual items dominate (measured on Online Retail with
/// `recflow bench recipes`).
pub struct TrainingData<'a> {
    pub interactions: &'a Interactions,
    pub row_weights: Vec<f32>,
    pub matrix: Csr,
    pub histories: Histories,
}

impl<'a> TrainingData<'a> {
    pub fn new(
        interactions: &'a Interactions,
        events: &EventSettings,
    ) -> anyhow::Result<TrainingData<'a>> {
        let row_weights = events.row_weights(interactions)?;
        let entries: Vec<(u32, u32, f32)> = (0..interactions.len())
            .filter(|&r| row_weights[r] > 0.0)
            .map(|r| (interactions.user[r], interactions.item[r], row_weights[r]))
            .collect();
        let matrix =
            Csr::from_triplets_max(interactions.users.len(), interactions.items.len(), &entries);
        Ok(TrainingData {
            interactions,
            row_weights,
            matrix,
            histories: interactions.histories(),
        })
    }
}

/// Training: interactions in, a model out. Runs on a blocking thread.
pub trait Recipe: Send + Sync {
    fn train(&self, data: &TrainingData) -> anyhow::Result<Box<dyn Model>>;

    /// `training_mode: update`: fold new interactions, users and items into
    /// `previous` without a full retrain. Recipes that retrain in seconds
    /// anyway (everything but iALS) simply retrain.
    fn update(
        &self,
        data: &TrainingData,
        previous: &SolutionModel,
    ) -> anyhow::Result<Box<dyn Model>> {
        let _ = previous;
        self.train(data)
    }
}

/// A trained model over item indices of its [`SolutionModel`]'s catalog.
pub trait Model: Send + Sync {
    /// Scores every catalog item for a user. `user` is the user's index when
    /// known at training time; `history` is what they interacted with, oldest
    /// first. Higher is better.
    fn score_user(&self, user: Option<u32>, history: &[u32], out: &mut [f32]);

    /// Scores every catalog item as related to `item`.
    fn score_related(&self, item: u32, out: &mut [f32]);

    /// Scores every user (by index; `histories` gives theirs) for how likely
    /// they are to interact with `items`: the sum of their scores for those
    /// items. Factor and item-item models override this with one pass.
    fn score_users(&self, items: &[u32], histories: &Histories, n_items: usize, out: &mut [f32]) {
        use rayon::prelude::*;
        out.par_iter_mut().enumerate().for_each_init(
            || vec![0f32; n_items],
            |scores, (u, o)| {
                self.score_user(Some(u as u32), histories.of(u as u32), scores);
                *o = items
                    .iter()
                    .map(|&i| scores.get(i as usize).copied().unwrap_or(0.0))
                    .sum();
            },
        );
    }

    /// Writes the model's own sections.
    fn save(&self, w: &mut ArtifactWriter);

    /// The iALS factors, for warm-started updates.
    fn ials(&self) -> Option<&ials::IalsModel> {
        None
    }

    /// Scores a block of known users at once into `out` (one row of catalog
    /// length per user). Factor models override this with one matrix-matrix
    /// product, which is what makes batch jobs fast.
    fn score_block(&self, users: &[u32], histories: &Histories, out: &mut [f32]) {
        let n = out.len() / users.len().max(1);
        for (&u, row) in users.iter().zip(out.chunks_exact_mut(n.max(1))) {
            self.score_user(Some(u), histories.of(u), row);
        }
    }
}

fn load_model(recipe: RecipeKind, r: &ArtifactReader) -> Result<Box<dyn Model>, ArtifactError> {
    Ok(match recipe {
        RecipeKind::PopularityCount => Box::new(popularity::PopularityModel::load(r)?),
        RecipeKind::TrendingNow => Box::new(trending::TrendingModel::load(r)?),
        RecipeKind::Sims => Box::new(sims::SimsModel::load(r)?),
        RecipeKind::UserPersonalization
        | RecipeKind::PersonalizedRanking
        | RecipeKind::ItemAffinity
        | RecipeKind::ItemAttributeAffinity => Box::new(user_personalization::UpModel::load(r)?),
        RecipeKind::NextItem => Box::new(next_item::NextItemModel::load(r)?),
    })
}

/// Dense ids for strings, in first-seen order.
#[derive(Debug, Clone, Default)]
pub struct IdMap {
    ids: Vec<String>,
    index: HashMap<String, u32>,
}

impl IdMap {
    pub fn from_ids(ids: Vec<String>) -> IdMap {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        IdMap { ids, index }
    }

    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), i);
        i
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub fn id(&self, i: u32) -> &str {
        &self.ids[i as usize]
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }
}

/// Ids in sorted order, and each old index's new index.
fn sorted_ids(map: &IdMap) -> (IdMap, Vec<u32>) {
    let mut ids: Vec<String> = map.ids().to_vec();
    ids.sort_unstable();
    let sorted = IdMap::from_ids(ids);
    let new_of = map
        .ids()
        .iter()
        .map(|id| sorted.get(id).expect("same ids"))
        .collect();
    (sorted, new_of)
}

/// The seeded order of a user's rows that share a timestamp: a draw per
/// (user id, item id), so it follows neither the file nor the item ids.
struct TieDraws {
    user: Vec<u64>,
    item: Vec<u64>,
}

impl TieDraws {
    fn draw(&self, d: &Interactions, r: usize) -> u64 {
        let (u, i) = (d.user[r] as usize, d.item[r] as usize);
        splitmix64(self.user[u] ^ self.item[i].rotate_left(29))
    }
}

/// A stable hash of an id (FNV-1a), the same on every machine and build.
fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 finaliser: a well-mixed draw from a seed.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Interactions as columns of dense indices, the input of every recipe.
#[derive(Debug, Clone, Default)]
pub struct Interactions {
    pub users: IdMap,
    pub items: IdMap,
    pub event_types: IdMap,
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub timestamp: Vec<i64>,
    /// Index into `event_types`; `None` when the dataset has no EVENT_TYPE.
    pub event_type: Option<Vec<u32>>,
    pub event_value: Option<Vec<f32>>,
}

impl Interactions {
    /// Builds from `(user, item, timestamp, event_type, event_value)` rows.
    pub fn from_rows<'a>(
        rows: impl Iterator<Item = (&'a str, &'a str, i64, Option<&'a str>, Option<f32>)>,
    ) -> Interactions {
        let mut d = Interactions::default();
        let mut types = Vec::new();
        let mut values = Vec::new();
        let (mut any_type, mut any_value) = (false, false);
        for (u, i, t, et, ev) in rows {
            d.user.push(d.users.intern(u));
            d.item.push(d.items.intern(i));
            d.timestamp.push(t);
            any_type |= et.is_some();
            any_value |= ev.is_some();
            types.push(d.event_types.intern(et.unwrap_or("")));
            values.push(ev.unwrap_or(f32::NAN));
        }
        d.event_type = any_type.then_some(types);
        d.event_value = any_value.then_some(values);
        d
    }

    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// Row indices per user, each list in time order. Rows of one user with
    /// one timestamp (a basket) are ordered by a seeded draw per (user,
    /// item), never by row order: sorted files would otherwise hold out the
    /// highest item ids of each basket, and next-item would learn the sort.
    pub fn rows_by_user(&self) -> Vec<Vec<usize>> {
        let mut by_user = vec![Vec::new(); self.users.len()];
        for (r, &u) in self.user.iter().enumerate() {
            by_user[u as usize].push(r);
        }
        let ties = self.tie_draws();
        for rows in &mut by_user {
            rows.sort_by_cached_key(|&r| (self.timestamp[r], ties.draw(self, r), r));
        }
        by_user
    }

    fn tie_draws(&self) -> TieDraws {
        TieDraws {
            user: self.users.ids().iter().map(|id| id_hash(id)).collect(),
            item: self.items.ids().iter().map(|id| id_hash(id)).collect(),
        }
    }

    /// The same interactions in an order that does not depend on the input's:
    /// users, items and event types indexed in id order, rows sorted by user,
    /// time, the seeded tie draw, then every other column. Models trained on
    /// shuffled copies of a file are then the same model.
    pub fn into_canonical(self) -> Interactions {
        let (users, user_of) = sorted_ids(&self.users);
        let (items, item_of) = sorted_ids(&self.items);
        let (event_types, type_of) = sorted_ids(&self.event_types);
        let user: Vec<u32> = self.user.iter().map(|&u| user_of[u as usize]).collect();
        let item: Vec<u32> = self.item.iter().map(|&i| item_of[i as usize]).collect();
        let event_type: Option<Vec<u32>> = self
            .event_type
            .map(|t| t.iter().map(|&e| type_of[e as usize]).collect());
        let d = Interactions {
            users,
            items,
            event_types,
            user,
            item,
            timestamp: self.timestamp,
            event_type,
            event_value: self.event_value,
        };
        let ties = d.tie_draws();
        let mut order: Vec<usize> = (0..d.len()).collect();
        order.sort_by_cached_key(|&r| {
            (
                d.user[r],
                d.timestamp[r],
                ties.draw(&d, r),
                d.item[r],
                d.event_type.as_ref().map_or(0, |t| t[r]),
                d.event_value.as_ref().map_or(0, |v| v[r].to_bits()),
            )
        });
        d.subset(&order)
    }

    /// The same id maps with only the given rows (used for the metrics split).
    pub fn subset(&self, rows: &[usize]) -> Interactions {
        let pick_u32 = |v: &Vec<u32>| rows.iter().map(|&r| v[r]).collect::<Vec<_>>();
        Interactions {
            users: self.users.clone(),
            items: self.items.clone(),
            event_types: self.event_types.clone(),
            user: pick_u32(&self.user),
            item: pick_u32(&self.item),
            timestamp: rows.iter().map(|&r| self.timestamp[r]).collect(),
            event_type: self.event_type.as_ref().map(pick_u32),
            event_value: self
                .event_value
                .as_ref()
                .map(|v| rows.iter().map(|&r| v[r]).collect()),
        }
    }

    /// Share of users who interacted with each item.
    pub fn popularity(&self) -> Vec<f32> {
        let mut pairs: Vec<(u32, u32)> = self
            .item
            .iter()
            .copied()
            .zip(self.user.iter().copied())
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut counts = vec![0f32; self.items.len()];
        for (i, _) in pairs {
            counts[i as usize] += 1.0;
        }
        let users = self.users.len().max(1) as f32;
        counts.iter_mut().for_each(|c| *c /= users);
        counts
    }

    /// Each user's items in time order, as compressed rows.
    pub fn histories(&self) -> Histories {
        let by_user = self.rows_by_user();
        let mut offsets = Vec::with_capacity(by_user.len() + 1);
        let mut items = Vec::with_capacity(self.len());
        offsets.push(0u32);
        for rows in by_user {
            items.extend(rows.iter().map(|&r| self.item[r]));
            offsets.push(items.len() as u32);
        }
        Histories { offsets, items }
    }
}

/// Users' item histories in compressed-row form, oldest item first.
#[derive(Debug, Clone, Default)]
pub struct Histories {
    offsets: Vec<u32>,
    items: Vec<u32>,
}

impl Histories {
    pub fn of(&self, user: u32) -> &[u32] {
        let u = user as usize;
        match (self.offsets.get(u), self.offsets.get(u + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// What a caller asks a solution for.
#[derive(Debug, Clone)]
pub enum Query<'a> {
    /// Recommendations for a user; unknown users get the model's cold answer.
    User(&'a str),
    /// Items related to an item.
    Item(&'a str),
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub item_id: String,
    pub score: f32,
}

/// Indices and scores of the `k` highest finite scores, best first; ties go
/// to the lower index so answers are deterministic.
///
/// One pass with a threshold: once `k` items are kept, a score must beat the
/// worst of them to enter, which after the first few hundred items almost
/// never happens, so the scan is a compare per item and no allocation of the
/// catalog's size (batch jobs call this once per user).
pub fn top_k(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    top_k_biased(scores, None, k)
}

/// [`top_k`] of `scores + scale·bias` without writing the sum back: batch
/// scoring adds the popularity tie-break here, in the same pass. Chunks whose
/// largest value cannot enter are skipped with one vector max.
pub fn top_k_biased(scores: &[f32], bias: Option<(&[f32], f32)>, k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    if let Some((b, scale)) = bias {
        let summed: Vec<f32>;
        if k > 1024 {
            summed = scores.iter().zip(b).map(|(s, b)| s + scale * b).collect();
            return top_k_biased(&summed, None, k);
        }
        return top_k_scan(scores, Some((b, scale)), k);
    }
    if k > 1024 {
        // Large k (segments of many users): select, then sort.
        let mut all: Vec<(u32, f32)> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_finite())
            .map(|(i, &s)| (i as u32, s))
            .collect();
        let better = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if all.len() > k {
            all.select_nth_unstable_by(k - 1, better);
            all.truncate(k);
        }
        all.sort_unstable_by(better);
        return all;
    }
    top_k_scan(scores, None, k)
}

fn top_k_scan(scores: &[f32], bias: Option<(&[f32], f32)>, k: usize) -> Vec<(u32, f32)> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { top_k_scan_avx2(scores, bias, k) };
    }
    top_k_scan_impl::<false>(scores, bias, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn top_k_scan_avx2(
    scores: &[f32],
    bias: Option<(&[f32], f32)>,
    k: usize,
) -> Vec<(u32, f32)> {
    top_k_scan_impl::<true>(scores, bias, k)
}

/// Whether any of 16 values exceeds `floor`: two vector compares and a mask.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn any_above16(v: &[f32; 16], floor: f32) -> bool {
    use std::arch::x86_64::*;
    let f = _mm256_set1_ps(floor);
    // SAFETY: `v` has 16 floats; both loads are in bounds.
    let (a, b) = unsafe {
        (
            _mm256_loadu_ps(v.as_ptr()),
            _mm256_loadu_ps(v.as_ptr().add(8)),
        )
    };
    let m = _mm256_or_ps(
        _mm256_cmp_ps::<_CMP_GT_OQ>(a, f),
        _mm256_cmp_ps::<_CMP_GT_OQ>(b, f),
    );
    _mm256_movemask_ps(m) != 0
}

#[inline(always)]
fn top_k_scan_impl<const AVX: bool>(
    scores: &[f32],
    bias: Option<(&[f32], f32)>,
    k: usize,
) -> Vec<(u32, f32)> {
    const CHUNK: usize = 16;
    // Kept sorted best first; ties keep the lower index first.
    let mut kept: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    let mut floor = f32::NEG_INFINITY;
    let mut buf = [f32::NEG_INFINITY; CHUNK];
    for (c, chunk) in scores.chunks(CHUNK).enumerate() {
        let n = match bias {
            Some((b, scale)) => {
                let bc = &b[(c * CHUNK).min(b.len())..(c * CHUNK + chunk.len()).min(b.len())];
                for ((o, s), b) in buf.iter_mut().zip(chunk).zip(bc) {
                    *o = s + scale * b;
                }
                chunk.len().min(bc.len())
            }
            None => {
                buf[..chunk.len()].copy_from_slice(chunk);
                chunk.len()
            }
        };
        if kept.len() == k {
            #[cfg(target_arch = "x86_64")]
            let may_enter = if AVX && n == CHUNK {
                // SAFETY: only instantiated under `top_k_scan_avx2`.
                unsafe { any_above16(&buf, floor) }
            } else {
                buf[..n].iter().any(|&v| v > floor)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let may_enter = buf[..n].iter().any(|&v| v > floor);
            if !may_enter {
                continue;
            }
        }
        for (j, &s) in buf[..n].iter().enumerate() {
            if !s.is_finite() || (kept.len() == k && s <= floor) {
                continue;
            }
            let at = kept.partition_point(|&(_, t)| t >= s);
            kept.insert(at, ((c * CHUNK + j) as u32, s));
            if kept.len() > k {
                kept.pop();
            }
            if kept.len() == k {
                floor = kept[k - 1].1;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recipe_kind_parses_by_its_name_into_a_spec_of_that_kind() {
        use strum::IntoEnumIterator;
        for kind in RecipeKind::iter() {
            assert_eq!(RecipeKind::parse(kind.name()), Some(kind));
            let spec = RecipeSpec::from_value(kind.name(), Mapping::new(), "solutions.s")
                .unwrap_or_else(|p| panic!("{kind}: {p}"));
            assert_eq!(spec.kind(), kind);
        }
        assert_eq!(
            RecipeKind::parse("aws-user-personalization-v2"),
            Some(RecipeKind::UserPersonalization)
        );
        assert_eq!(RecipeKind::parse("aws-hrnn"), Some(RecipeKind::NextItem));
        assert_eq!(RecipeKind::parse("nope"), None);
    }

    proptest::proptest! {
        #[test]
        fn top_k_agrees_with_a_full_sort(scores in proptest::collection::vec(-100i32..100, 0..300), k in 0usize..40) {
            let scores: Vec<f32> = scores.into_iter().map(|s| s as f32 / 7.0).collect();
            let mut all: Vec<(u32, f32)> = scores.iter().enumerate().map(|(i, &s)| (i as u32, s)).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            proptest::prop_assert_eq!(top_k(&scores, k), all);
        }

        #[test]
        fn biased_top_k_equals_top_k_of_the_sum(scores in proptest::collection::vec(-100i32..100, 0..300), k in 0usize..40) {
            let scores: Vec<f32> = scores.into_iter().map(|s| s as f32 / 7.0).collect();
            let bias: Vec<f32> = (0..scores.len()).map(|i| (i % 13) as f32).collect();
            let summed: Vec<f32> = scores.iter().zip(&bias).map(|(s, b)| s + 0.01 * b).collect();
            proptest::prop_assert_eq!(top_k_biased(&scores, Some((&bias, 0.01)), k), top_k(&summed, k));
        }
    }

    #[test]
    fn top_k_takes_the_best_finite_scores_in_order() {
        let scores = [0.1, f32::NEG_INFINITY, 0.9, 0.5, 0.9, f32::NAN];
        assert_eq!(top_k(&scores, 3), vec![(2, 0.9), (4, 0.9), (3, 0.5)]);
        assert_eq!(top_k(&scores, 10).len(), 4);
        assert!(top_k(&scores, 0).is_empty());
    }

    #[test]
    fn histories_are_in_time_order() {
        let rows = [
            ("u", "b", 20, None, None),
            ("u", "a", 10, None, None),
            ("v", "c", 5, None, None),
        ];
        let d = Interactions::from_rows(rows.into_iter());
        let h = d.histories();
        let names: Vec<&str> = h.of(0).iter().map(|&i| d.items.id(i)).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(h.of(7), &[] as &[u32]);
    }
}
