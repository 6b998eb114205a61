//! Answering a campaign as the runtime API answers it: the campaign's
//! loaded model with its group's filters, filter data and item metadata
//! ([`LiveCampaign`]), and the scoring, filtering, promotion and metadata of
//! one request ([`recommend`], [`rank`]). `recflow serve` keeps live
//! campaigns loaded and calls these per request; `recflow recommend` loads
//! one and calls the same functions, so the two answer alike.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use fixedbitset::FixedBitSet;
use polars::prelude::DataType;
use serde::Serialize;

use super::{OpsError, OpsResult};
use crate::campaign::{Recommender, round_score};
use crate::config::Env;
use crate::filter::catalog::{FilterData, Subject};
use crate::filter::{self, Filter, parse_filter_values};
use crate::group::CampaignSpec;
use crate::recipes::{Ask, Query, Scored};
use crate::schema::{self, DatasetType};
use crate::store::{CampaignRecord, FilterRecord};

/// Item metadata columns one request may ask for (the managed service's limit).
pub const MAX_METADATA_COLUMNS: usize = 99;

/// Real-time events kept per user (the newest).
pub const RECENT_EVENTS_PER_USER: usize = 100;

pub struct LiveCampaign {
    pub record: CampaignRecord,
    pub rec: Recommender,
    /// The dataset group's filters that parsed and checked against its schemas.
    pub filters: BTreeMap<String, Arc<Filter>>,
    /// The group's filters that did not, with the reason: a request naming
    /// one gets the reason, and the server logs it at each load.
    pub broken_filters: BTreeMap<String, String>,
    pub filter_data: FilterData,
    /// Items dataset columns by name, one value per model item.
    pub item_metadata: BTreeMap<String, Vec<Option<String>>>,
    /// Lower-cased event types whose real-time events exclude the item from
    /// the user's next answers; `None`: every type.
    pub exclude_event_types: Option<Vec<String>>,
    /// What the campaign was built from, to notice a change.
    pub fingerprint: u64,
}

/// A hash of what a live campaign depends on besides its solution version:
/// its settings, the group's filters and the items and users posted since.
pub fn fingerprint(
    record: &CampaignRecord,
    filters: &[FilterRecord],
    posted: &[(String, String)],
) -> u64 {
    let mut h = DefaultHasher::new();
    posted.hash(&mut h);
    record.solution.hash(&mut h);
    record.solution_version.hash(&mut h);
    record.config.to_string().hash(&mut h);
    for f in filters {
        (&f.name, &f.expression).hash(&mut h);
    }
    h.finish()
}

impl LiveCampaign {
    /// Loads a campaign's model, filters and metadata (I/O on the runtime,
    /// indexing on a blocking thread).
    pub async fn load(
        env: &Env,
        record: CampaignRecord,
        stored_filters: &[FilterRecord],
        posted: &[(String, String)],
    ) -> anyhow::Result<LiveCampaign> {
        let (record, rec) = Recommender::for_campaign(env, &record.name).await?;
        let spec: Option<CampaignSpec> = serde_json::from_value(record.config.clone()).ok();
        // Filters were checked when their pipeline was registered; they are
        // checked again here against the schemas of the datasets now loaded,
        // which may have changed since.
        let mut parsed: Vec<(String, Filter)> = Vec::new();
        let mut broken_filters = BTreeMap::new();
        for f in stored_filters {
            match Filter::parse(&f.expression) {
                Ok(filter) => parsed.push((f.name.clone(), filter)),
                Err(e) => {
                    broken_filters.insert(f.name.clone(), e.to_string());
                }
            }
        }
        let need_interactions = parsed.iter().any(|(_, f)| f.reads_interactions());
        let frames = filter::load_frames(env, &record.dataset_group, need_interactions).await?;
        let fp = fingerprint(&record, stored_filters, posted);
        let mut rec = rec;
        tokio::task::spawn_blocking(move || -> anyhow::Result<LiveCampaign> {
            // Items the model was not trained with (posted, or imported
            // since) join its catalog as cold items, recommendable through
            // exploration before the next training.
            if let Some((df, schema)) = frames.get(&DatasetType::Items) {
                let new: Vec<_> = crate::dataset::item_records(df, schema)?
                    .into_iter()
                    .filter(|(id, _)| rec.model.items.get(id).is_none())
                    .collect();
                if !new.is_empty() {
                    match Arc::try_unwrap(rec.model) {
                        Ok(m) => rec.model = Arc::new(m.with_new_items(new)),
                        Err(shared) => rec.model = shared,
                    }
                }
            }
            let model = rec.model.clone();
            let schemas = frames
                .iter()
                .map(|(t, (_, s))| (*t, s.clone()))
                .collect::<BTreeMap<_, _>>();
            let mut filters = BTreeMap::new();
            let mut broken_filters = broken_filters;
            for (name, mut f) in parsed {
                let problems = f.check(&schemas);
                match problems.first() {
                    None => {
                        filters.insert(name, Arc::new(f));
                    }
                    Some(e) => {
                        broken_filters.insert(name, e.to_string());
                    }
                }
            }
            for (name, reason) in &broken_filters {
                tracing::error!(campaign = %record.name, filter = %name, error = %reason, "Filter cannot be applied; requests naming it fail with this reason.");
            }
            let filter_data = filter::build_data(&frames, &model.items, &model.users)?;
            let mut item_metadata = BTreeMap::new();
            if let Some((df, schema)) = frames.get(&DatasetType::Items) {
                let ids = df.column(schema::ITEM_ID)?.str()?;
                let rows: Vec<Option<u32>> = ids
                    .iter()
                    .map(|i| i.and_then(|i| model.items.get(i)))
                    .collect();
                for f in &schema.fields {
                    if f.name == schema::ITEM_ID {
                        continue;
                    }
                    let Ok(col) = df.column(&f.name) else {
                        continue;
                    };
                    let col = col.cast(&DataType::String)?;
                    let mut values = vec![None; model.items.len()];
                    for (row, v) in col.str()?.iter().enumerate() {
                        if let (Some(i), Some(v)) = (rows[row], v) {
                            values[i as usize] = Some(v.to_string());
                        }
                    }
                    item_metadata.insert(f.name.clone(), values);
                }
            }
            Ok(LiveCampaign {
                record,
                rec,
                filters,
                broken_filters,
                filter_data,
                item_metadata,
                exclude_event_types: spec
                    .and_then(|s| s.exclude_event_types)
                    .map(|v| v.into_iter().map(|t| t.to_lowercase()).collect()),
                fingerprint: fp,
            })
        })
        .await?
    }

    /// Whether a real-time event of this type removes its item from answers.
    pub fn excludes(&self, event_type: &str) -> bool {
        self.exclude_event_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t.eq_ignore_ascii_case(event_type)))
    }
}

/// Loads one campaign as the server does: with its group's filters and the
/// items and users posted since its datasets were imported.
pub async fn load(env: &Env, name: &str) -> OpsResult<LiveCampaign> {
    let record = crate::campaign::get(env, name).await?;
    let filters = env.store.group_filters(&record.dataset_group).await?;
    let mut posted = Vec::new();
    for t in ["items", "users"] {
        posted.extend(env.store.list_put_records(&record.dataset_group, t).await?);
    }
    LiveCampaign::load(env, record, &filters, &posted)
        .await
        .map_err(super::internal)
}

/// A user's stored real-time events in a group, (event type, item id),
/// the newest [`RECENT_EVENTS_PER_USER`], oldest first: what a server that
/// loaded the group's events holds for the user.
pub async fn recent_events(env: &Env, group: &str, user: &str) -> OpsResult<Vec<(String, String)>> {
    let events = crate::store::all_events(env.store.as_ref(), group, 0).await?;
    let mine: Vec<(String, String)> = events
        .into_iter()
        .filter(|e| e.user_id.as_deref() == Some(user))
        .filter_map(|e| e.item_id.map(|i| (e.event_type, i)))
        .collect();
    let skip = mine.len().saturating_sub(RECENT_EVENTS_PER_USER);
    Ok(mine.into_iter().skip(skip).collect())
}

/// One item of an answer, in the runtime API's JSON shape.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommended {
    pub item_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A filter named by `filterArn` with its values, ready to apply.
pub struct FilterRequest {
    filter: Arc<Filter>,
    values: BTreeMap<String, Vec<String>>,
}

/// The filter `name` of the campaign's group with its `filterValues`.
/// `member` prefixes the request members named in errors (`promotions[0].`).
pub fn filter_request(
    live: &LiveCampaign,
    member: &str,
    name: Option<&str>,
    values: Option<&BTreeMap<String, String>>,
) -> OpsResult<Option<FilterRequest>> {
    let Some(name) = name else {
        if values.is_some_and(|v| !v.is_empty()) {
            return Err(OpsError::Invalid(format!(
                "{member}filterValues given without a {member}filterArn"
            )));
        }
        return Ok(None);
    };
    if let Some(reason) = live.broken_filters.get(name) {
        return Err(OpsError::Invalid(format!(
            "{member}filterArn: filter {name:?} cannot be applied to the data now loaded: {reason}"
        )));
    }
    let filter = live.filters.get(name).ok_or_else(|| {
        let known: Vec<&str> = live.filters.keys().map(String::as_str).collect();
        OpsError::NotFound(format!(
            "{member}filterArn: filter {name:?} does not exist in dataset group {} (filters: {})",
            live.record.dataset_group,
            if known.is_empty() {
                "none declared".to_string()
            } else {
                known.join(", ")
            }
        ))
    })?;
    let values = parse_filter_values(values.unwrap_or(&BTreeMap::new()))
        .map_err(|e| OpsError::Invalid(format!("{member}{e}")))?;
    Ok(Some(FilterRequest {
        filter: Arc::clone(filter),
        values,
    }))
}

/// The item metadata columns asked for (`metadataColumns`: dataset → columns).
pub fn metadata_columns(
    live: &LiveCampaign,
    asked: Option<&BTreeMap<String, Vec<String>>>,
) -> OpsResult<Vec<String>> {
    let Some(asked) = asked else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (dataset, columns) in asked {
        if dataset != "ITEMS" {
            return Err(OpsError::Invalid(format!(
                "metadataColumns: only ITEMS columns can be returned, not {dataset:?}"
            )));
        }
        if columns.len() > MAX_METADATA_COLUMNS {
            return Err(OpsError::Invalid(format!(
                "metadataColumns.ITEMS: at most {MAX_METADATA_COLUMNS} columns"
            )));
        }
        for c in columns {
            if !live.item_metadata.contains_key(c) {
                let known: Vec<&str> = live.item_metadata.keys().map(String::as_str).collect();
                return Err(OpsError::Invalid(format!(
                    "metadataColumns.ITEMS: {c:?} is not a column of the items dataset (columns: {})",
                    known.join(", ")
                )));
            }
            out.push(c.clone());
        }
    }
    Ok(out)
}

fn metadata_of(
    live: &LiveCampaign,
    columns: &[String],
    item: &str,
) -> Option<BTreeMap<String, String>> {
    if columns.is_empty() {
        return None;
    }
    let i = live.rec.model.items.get(item);
    Some(
        columns
            .iter()
            .map(|c| {
                let v = i
                    .and_then(|i| live.item_metadata[c][i as usize].clone())
                    .unwrap_or_default();
                (c.clone(), v)
            })
            .collect(),
    )
}

/// The mask a filter allows for this request, or why it cannot be applied.
fn mask(
    live: &LiveCampaign,
    f: Option<&FilterRequest>,
    subject: &Subject,
) -> OpsResult<Option<FixedBitSet>> {
    f.map(|f| {
        live.filter_data
            .item_mask(&f.filter, &f.values, subject)
            .map_err(OpsError::Invalid)
    })
    .transpose()
}

/// The filter's mask for a request, and the items of the user's real-time
/// events that its answers exclude (and that extend the history scored).
fn filtered(
    live: &LiveCampaign,
    f: Option<&FilterRequest>,
    subject: &Subject,
) -> OpsResult<(Option<FixedBitSet>, Vec<u32>)> {
    let allowed = mask(live, f, subject)?;
    let recent = subject
        .recent_events
        .iter()
        .filter(|(t, _)| live.excludes(t))
        .filter_map(|(_, i)| live.rec.model.items.get(i))
        .collect();
    Ok((allowed, recent))
}

/// A promotion: `percent` of the answer's items (at least one) come from
/// the items its filter allows, at evenly spread positions.
pub struct Promotion {
    pub name: String,
    pub percent: usize,
    pub filter: FilterRequest,
}

/// What one GetRecommendations asks, checked.
pub struct Question<'a> {
    pub user: Option<&'a str>,
    pub item: Option<&'a str>,
    pub num_results: usize,
    pub filter: Option<&'a FilterRequest>,
    pub promotion: Option<&'a Promotion>,
    /// Item metadata columns to return (from [`metadata_columns`]).
    pub columns: &'a [String],
    /// The user's recent (event type, item id) pairs, oldest first.
    pub recent: &'a [(String, String)],
}

/// Recommendations for a user, or items related to an item: CPU work, to
/// run on a blocking thread.
pub fn recommend(live: &LiveCampaign, q: &Question<'_>) -> OpsResult<Vec<Recommended>> {
    let n = q.num_results;
    let subject = Subject {
        user: q.user,
        item: q.item,
        recent_events: q.recent,
    };
    let (allowed, recent_items) = filtered(live, q.filter, &subject)?;
    let model = &live.rec.model;
    let query = match (q.item, q.user) {
        (Some(i), _) => Query::Item(i),
        (None, Some(u)) => Query::User(u),
        (None, None) => return Err(OpsError::Invalid("give userId or itemId".into())),
    };
    let ask = Ask {
        exploration: live.rec.exploration,
        allowed: allowed.as_ref(),
        recent: &recent_items,
    };
    let mut list: Vec<(Scored, Option<String>)> = model
        .recommend_with(&query, n, &ask)
        .into_iter()
        .map(|s| (s, None))
        .collect();
    if let Some(p) = q.promotion {
        let promo_mask = mask(live, Some(&p.filter), &subject)?;
        let k = (n * p.percent).div_ceil(100).clamp(1, n);
        let promoted = model.recommend_with(
            &query,
            k,
            &Ask {
                allowed: promo_mask.as_ref(),
                exploration: Default::default(),
                ..ask
            },
        );
        list = promote(list, promoted, &p.name, n);
    }
    Ok(list
        .into_iter()
        .map(|(s, promotion_name)| Recommended {
            metadata: metadata_of(live, q.columns, &s.item_id),
            score: Some(round_score(s.score)),
            item_id: s.item_id,
            promotion_name,
        })
        .collect())
}

/// `list` re-ranked for `user` (GetPersonalizedRanking): CPU work, to run
/// on a blocking thread.
pub fn rank(
    live: &LiveCampaign,
    user: &str,
    list: &[String],
    filter: Option<&FilterRequest>,
    columns: &[String],
    recent: &[(String, String)],
) -> OpsResult<Vec<Recommended>> {
    let subject = Subject {
        user: Some(user),
        item: None,
        recent_events: recent,
    };
    let (allowed, recent_items) = filtered(live, filter, &subject)?;
    let ask = Ask {
        exploration: Default::default(),
        allowed: allowed.as_ref(),
        recent: &recent_items,
    };
    Ok(live
        .rec
        .model
        .rank(user, list, &ask)
        .into_iter()
        .map(|(id, score)| Recommended {
            metadata: metadata_of(live, columns, &id),
            score: score.map(round_score),
            item_id: id,
            promotion_name: None,
        })
        .collect())
}

/// Places `promoted` items at evenly spread positions of an `n`-item answer.
fn promote(
    list: Vec<(Scored, Option<String>)>,
    promoted: Vec<Scored>,
    name: &str,
    n: usize,
) -> Vec<(Scored, Option<String>)> {
    let ids: HashSet<String> = promoted.iter().map(|s| s.item_id.clone()).collect();
    let mut rest = list.into_iter().filter(|(s, _)| !ids.contains(&s.item_id));
    let k = promoted.len();
    let positions: Vec<usize> = (0..k).map(|j| j * n / k.max(1)).collect();
    let mut promos = promoted.into_iter().map(|s| (s, Some(name.to_string())));
    let mut out = Vec::with_capacity(n);
    for pos in 0..n {
        let next = if positions.contains(&pos) {
            promos.next().or_else(|| rest.next())
        } else {
            rest.next().or_else(|| promos.next())
        };
        match next {
            Some(x) => out.push(x),
            None => break,
        }
    }
    out
}
