//! The runtime API: `POST /recommendations` and `POST /personalize-ranking`,
//! with the managed service's members, limits and responses. Validation
//! happens on the runtime; scoring, filtering and formatting on a blocking
//! thread, with the campaign snapshot the request started with.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use fixedbitset::FixedBitSet;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::limits::{self, Checker, Limited, Path, parse_request};
use super::live::LiveCampaign;
use super::{AppState, Timer, access, read_body, resource_name};
use crate::campaign::{NumResults, round_score};
use crate::filter::catalog::Subject;
use crate::filter::{Filter, parse_filter_values};
use crate::recipes::{Ask, Query, Scored};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetRecommendations {
    campaign_arn: Option<String>,
    recommender_arn: Option<String>,
    user_id: Option<String>,
    item_id: Option<String>,
    num_results: Option<i64>,
    filter_arn: Option<String>,
    filter_values: Option<BTreeMap<String, String>>,
    context: Option<BTreeMap<String, String>>,
    metadata_columns: Option<BTreeMap<String, Vec<String>>>,
    promotions: Option<Vec<Promotion>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Promotion {
    name: Option<String>,
    percent_promoted_items: Option<i64>,
    filter_arn: Option<String>,
    filter_values: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetPersonalizedRanking {
    campaign_arn: Option<String>,
    user_id: Option<String>,
    input_list: Option<Vec<String>>,
    filter_arn: Option<String>,
    filter_values: Option<BTreeMap<String, String>>,
    context: Option<BTreeMap<String, String>>,
    metadata_columns: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PredictedItem {
    item_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promotion_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<BTreeMap<String, String>>,
}

impl Limited for GetRecommendations {
    fn check(&self, c: &mut Checker) {
        let root = Path::root();
        for (member, arn) in [
            ("campaignArn", &self.campaign_arn),
            ("recommenderArn", &self.recommender_arn),
            ("filterArn", &self.filter_arn),
        ] {
            c.opt_id(&root.member(member), arn, limits::ARN_CHARS);
        }
        if self.campaign_arn.is_none() && self.recommender_arn.is_none() {
            c.problem(&root.member("campaignArn"), "required");
        }
        if self.user_id.is_none() && self.item_id.is_none() {
            c.problem(&root.member("userId"), "give userId or itemId");
        }
        c.opt_id(&root.member("userId"), &self.user_id, limits::ID_CHARS);
        c.opt_id(&root.member("itemId"), &self.item_id, limits::ID_CHARS);
        if let Some(n) = self.num_results
            && let Err(e) = NumResults::new(n)
        {
            c.problem(&root.member("numResults"), e);
        }
        c.filter_values(&root.member("filterValues"), &self.filter_values);
        c.context(&root.member("context"), &self.context);
        c.metadata_columns(&root.member("metadataColumns"), &self.metadata_columns);
        if let Some(promotions) = &self.promotions {
            let at = root.member("promotions");
            c.count(&at, promotions.len(), 0..=limits::PROMOTIONS);
            for (i, p) in promotions.iter().enumerate().take(limits::PROMOTIONS) {
                let at = at.entry(i);
                match &p.name {
                    Some(name) => {
                        if let Err(e) = crate::spec::check_resource_name(name) {
                            c.problem(&at.member("name"), e);
                        }
                    }
                    None => c.problem(&at.member("name"), "required"),
                }
                let pct = at.member("percentPromotedItems");
                match p.percent_promoted_items {
                    Some(n) if limits::PERCENT_PROMOTED.contains(&n) => {}
                    Some(n) => c.problem(&pct, format!("must be between 1 and 100, got {n}")),
                    None => c.problem(&pct, "required"),
                }
                c.req_id(&at.member("filterArn"), &p.filter_arn, limits::ARN_CHARS);
                c.filter_values(&at.member("filterValues"), &p.filter_values);
            }
        }
    }
}

impl Limited for GetPersonalizedRanking {
    fn check(&self, c: &mut Checker) {
        let root = Path::root();
        c.req_id(
            &root.member("campaignArn"),
            &self.campaign_arn,
            limits::ARN_CHARS,
        );
        c.opt_id(
            &root.member("filterArn"),
            &self.filter_arn,
            limits::ARN_CHARS,
        );
        c.req_id(&root.member("userId"), &self.user_id, limits::ID_CHARS);
        let at = root.member("inputList");
        match &self.input_list {
            None => c.problem(&at, "required"),
            Some(list) => {
                c.count(&at, list.len(), limits::INPUT_LIST);
                for (i, id) in list.iter().enumerate().take(*limits::INPUT_LIST.end()) {
                    c.id(&at.entry(i), id, limits::ID_CHARS);
                }
            }
        }
        c.filter_values(&root.member("filterValues"), &self.filter_values);
        c.context(&root.member("context"), &self.context);
        c.metadata_columns(&root.member("metadataColumns"), &self.metadata_columns);
    }
}

/// A filter named by `filterArn` with its values, ready to apply.
struct FilterRequest {
    filter: Arc<Filter>,
    values: BTreeMap<String, Vec<String>>,
}

fn filter_request(
    live: &LiveCampaign,
    member: &str,
    arn: Option<&String>,
    values: Option<&BTreeMap<String, String>>,
) -> Result<Option<FilterRequest>, ApiError> {
    let Some(arn) = arn else {
        if values.is_some_and(|v| !v.is_empty()) {
            return Err(ApiError::invalid(format!(
                "{member}filterValues given without a {member}filterArn"
            )));
        }
        return Ok(None);
    };
    let name = resource_name(arn, "filter");
    if let Some(reason) = live.broken_filters.get(name) {
        return Err(ApiError::invalid(format!(
            "{member}filterArn: filter {name:?} cannot be applied to the data now loaded: {reason}"
        )));
    }
    let filter = live.filters.get(name).ok_or_else(|| {
        let known: Vec<&str> = live.filters.keys().map(String::as_str).collect();
        ApiError::not_found(format!(
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
        .map_err(|e| ApiError::invalid(format!("{member}{e}")))?;
    Ok(Some(FilterRequest {
        filter: Arc::clone(filter),
        values,
    }))
}

fn metadata_columns(
    live: &LiveCampaign,
    asked: &Option<BTreeMap<String, Vec<String>>>,
) -> Result<Vec<String>, ApiError> {
    let Some(asked) = asked else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (dataset, columns) in asked {
        if dataset != "ITEMS" {
            return Err(ApiError::invalid(format!(
                "metadataColumns: only ITEMS columns can be returned, not {dataset:?}"
            )));
        }
        for c in columns {
            if !live.item_metadata.contains_key(c) {
                let known: Vec<&str> = live.item_metadata.keys().map(String::as_str).collect();
                return Err(ApiError::invalid(format!(
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
) -> Result<Option<FixedBitSet>, ApiError> {
    f.map(|f| {
        live.filter_data
            .item_mask(&f.filter, &f.values, subject)
            .map_err(ApiError::invalid)
    })
    .transpose()
}

/// A JSON answer, with the solution version that made it in `x-recflow-solution-version`.
fn answered(version: i64, body: serde_json::Value) -> Response {
    let mut r = axum::Json(body).into_response();
    r.headers_mut().insert(
        "x-recflow-solution-version",
        axum::http::HeaderValue::from(version),
    );
    r
}

/// The filter's mask for a request, and the items of the user's real-time
/// events that its answers exclude (and that extend the history scored).
fn filtered(
    live: &LiveCampaign,
    f: Option<&FilterRequest>,
    subject: &Subject,
) -> Result<(Option<FixedBitSet>, Vec<u32>), ApiError> {
    let allowed = mask(live, f, subject)?;
    let recent = subject
        .recent_events
        .iter()
        .filter(|(t, _)| live.excludes(t))
        .filter_map(|(_, i)| live.rec.model.items.get(i))
        .collect();
    Ok((allowed, recent))
}

fn recommendation_id() -> String {
    format!("RID-{}", uuid::Uuid::new_v4())
}

/// Reads, authenticates and parses a runtime request, and finds its campaign.
async fn campaign_request<T: serde::de::DeserializeOwned + Limited>(
    state: &AppState,
    req: Request,
    arn: fn(&T) -> Option<&String>,
) -> Result<(T, Arc<LiveCampaign>), ApiError> {
    let need = (!state.config.open_recommendations).then_some(access::Need::Read);
    let body = read_body(state, req, need).await?;
    let r: T = parse_request(&body)?;
    let live = state.campaign(arn(&r))?;
    Ok((r, live))
}

fn recommendations_arn(r: &GetRecommendations) -> Option<&String> {
    r.campaign_arn.as_ref().or(r.recommender_arn.as_ref())
}

fn ranking_arn(r: &GetPersonalizedRanking) -> Option<&String> {
    r.campaign_arn.as_ref()
}

pub async fn recommendations(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let timer = Timer::start();
    let (campaign, result) = match campaign_request(&state, req, recommendations_arn).await {
        Ok((r, live)) => (
            live.record.name.clone(),
            answer_recommendations(&state, live, r).await,
        ),
        Err(e) => (String::new(), Err(e)),
    };
    state.finish("GetRecommendations", &campaign, timer, result)
}

/// GetRecommendations for a JSON body, answered exactly as the API answers
/// it, without HTTP (the console's "try it"). The campaign must be loaded
/// by this server; a server that does not keep campaigns loaded (the
/// daemon's) loads them now.
pub async fn try_recommendations(state: &AppState, body: &[u8]) -> Result<Response, ApiError> {
    let r: GetRecommendations = parse_request(body)?;
    let arn = recommendations_arn(&r);
    if state.campaign(arn).is_err() {
        state.reload().await.map_err(ApiError::internal)?;
    }
    let live = state.campaign(arn)?;
    let timer = Timer::start();
    let name = live.record.name.clone();
    let result = answer_recommendations(state, live, r).await;
    Ok(state.finish("GetRecommendations", &name, timer, result))
}

async fn answer_recommendations(
    state: &AppState,
    live: Arc<LiveCampaign>,
    r: GetRecommendations,
) -> Result<Response, ApiError> {
    // The limits were checked when the request was parsed.
    let n = r
        .num_results
        .map_or(Ok(NumResults::DEFAULT), NumResults::new)
        .map_err(|e| ApiError::invalid(format!("numResults: {e}")))?
        .get();
    let columns = metadata_columns(&live, &r.metadata_columns)?;
    let filter = filter_request(&live, "", r.filter_arn.as_ref(), r.filter_values.as_ref())?;
    let promotion = match r.promotions.as_deref() {
        Some([p]) => {
            let f = filter_request(
                &live,
                "promotions.1.",
                p.filter_arn.as_ref(),
                p.filter_values.as_ref(),
            )?
            .ok_or_else(|| ApiError::invalid("promotions.1.filterArn: required"))?;
            let pct = p.percent_promoted_items.unwrap_or(1);
            Some((p.name.clone().unwrap_or_default(), pct as usize, f))
        }
        _ => None,
    };
    let recent = r
        .user_id
        .as_deref()
        .map(|u| state.realtime.recent(&live.record.dataset_group, u))
        .unwrap_or_default();
    let version = live.rec.version;
    let items = tokio::task::spawn_blocking(move || -> Result<Vec<PredictedItem>, ApiError> {
        let subject = Subject {
            user: r.user_id.as_deref(),
            item: r.item_id.as_deref(),
            recent_events: &recent,
        };
        let (allowed, recent_items) = filtered(&live, filter.as_ref(), &subject)?;
        let model = &live.rec.model;
        let query = match (&r.item_id, &r.user_id) {
            (Some(i), _) => Query::Item(i),
            (None, Some(u)) => Query::User(u),
            (None, None) => unreachable!("the limits require userId or itemId"),
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
        if let Some((name, pct, pf)) = &promotion {
            let promo_mask = mask(&live, Some(pf), &subject)?;
            let k = (n * pct).div_ceil(100).clamp(1, n);
            let promoted = model.recommend_with(
                &query,
                k,
                &Ask {
                    allowed: promo_mask.as_ref(),
                    exploration: Default::default(),
                    ..ask
                },
            );
            list = promote(list, promoted, name, n);
        }
        Ok(list
            .into_iter()
            .map(|(s, promotion_name)| PredictedItem {
                metadata: metadata_of(&live, &columns, &s.item_id),
                score: Some(round_score(s.score)),
                item_id: s.item_id,
                promotion_name,
            })
            .collect())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(answered(
        version,
        serde_json::json!({
            "itemList": items,
            "recommendationId": recommendation_id(),
        }),
    ))
}

/// Places `promoted` items at evenly spread positions of an `n`-item answer.
fn promote(
    list: Vec<(Scored, Option<String>)>,
    promoted: Vec<Scored>,
    name: &str,
    n: usize,
) -> Vec<(Scored, Option<String>)> {
    let ids: std::collections::HashSet<String> =
        promoted.iter().map(|s| s.item_id.clone()).collect();
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

pub async fn personalized_ranking(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let timer = Timer::start();
    let (campaign, result) = match campaign_request(&state, req, ranking_arn).await {
        Ok((r, live)) => (
            live.record.name.clone(),
            answer_ranking(&state, live, r).await,
        ),
        Err(e) => (String::new(), Err(e)),
    };
    state.finish("GetPersonalizedRanking", &campaign, timer, result)
}

async fn answer_ranking(
    state: &AppState,
    live: Arc<LiveCampaign>,
    r: GetPersonalizedRanking,
) -> Result<Response, ApiError> {
    // The limits (and required members) were checked when the request was parsed.
    let user = r.user_id.clone().unwrap_or_default();
    let list = r.input_list.clone().unwrap_or_default();
    let columns = metadata_columns(&live, &r.metadata_columns)?;
    let filter = filter_request(&live, "", r.filter_arn.as_ref(), r.filter_values.as_ref())?;
    let recent = state.realtime.recent(&live.record.dataset_group, &user);
    let version = live.rec.version;
    let items = tokio::task::spawn_blocking(move || -> Result<Vec<PredictedItem>, ApiError> {
        let subject = Subject {
            user: Some(&user),
            item: None,
            recent_events: &recent,
        };
        let (allowed, recent_items) = filtered(&live, filter.as_ref(), &subject)?;
        let model = &live.rec.model;
        let ask = Ask {
            exploration: Default::default(),
            allowed: allowed.as_ref(),
            recent: &recent_items,
        };
        Ok(model
            .rank(&user, &list, &ask)
            .into_iter()
            .map(|(id, score)| PredictedItem {
                metadata: metadata_of(&live, &columns, &id),
                score: score.map(round_score),
                item_id: id,
                promotion_name: None,
            })
            .collect())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(answered(
        version,
        serde_json::json!({
            "personalizedRanking": items,
            "recommendationId": recommendation_id(),
        }),
    ))
}
