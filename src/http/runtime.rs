//! The runtime API: `POST /recommendations` and `POST /personalize-ranking`,
//! with the managed service's members, limits and responses. Validation
//! happens on the runtime; scoring, filtering and formatting on a blocking
//! thread, with the campaign snapshot the request started with.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::live::LiveCampaign;
use super::{AppState, Timer, access, parse_body, read_body, resource_name};
use crate::campaign::{MAX_NUM_RESULTS, NumResults};
use crate::ops::serving::{self, FilterRequest, Question};
use crate::schema::MAX_ID_CHARS;

/// The managed service's limit on `context` entries.
const MAX_CONTEXT: usize = 150;

/// The filter a request names by `filterArn`, with its `filterValues`.
fn filter_request(
    live: &LiveCampaign,
    member: &str,
    arn: Option<&String>,
    values: Option<&BTreeMap<String, String>>,
) -> Result<Option<FilterRequest>, ApiError> {
    let name = arn.map(|arn| resource_name(arn, "filter"));
    Ok(serving::filter_request(live, member, name, values)?)
}

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

fn check_id(member: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err(ApiError::invalid(format!(
            "{member} must be 1 to {MAX_ID_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_context(context: &Option<BTreeMap<String, String>>) -> Result<(), ApiError> {
    if let Some(c) = context
        && c.len() > MAX_CONTEXT
    {
        return Err(ApiError::invalid(format!(
            "context: at most {MAX_CONTEXT} entries, got {}",
            c.len()
        )));
    }
    Ok(())
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

fn recommendation_id() -> String {
    format!("RID-{}", uuid::Uuid::new_v4())
}

/// Reads, authenticates and parses a runtime request, and finds its campaign.
async fn campaign_request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: Request,
    arn: fn(&T) -> Option<&String>,
) -> Result<(T, Arc<LiveCampaign>), ApiError> {
    let need = (!state.config.open_recommendations).then_some(access::Need::Read);
    let body = read_body(state, req, need).await?;
    let r: T = parse_body(&body)?;
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
    let r: GetRecommendations = parse_body(body)?;
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
    let n = r
        .num_results
        .map_or(Ok(NumResults::DEFAULT), NumResults::new)
        .map_err(|e| ApiError::invalid(format!("numResults {e}")))?
        .get();
    if r.user_id.is_none() && r.item_id.is_none() {
        return Err(ApiError::invalid("give userId or itemId"));
    }
    if let Some(u) = &r.user_id {
        check_id("userId", u)?;
    }
    if let Some(i) = &r.item_id {
        check_id("itemId", i)?;
    }
    check_context(&r.context)?;
    let columns = serving::metadata_columns(&live, r.metadata_columns.as_ref())?;
    let filter = filter_request(&live, "", r.filter_arn.as_ref(), r.filter_values.as_ref())?;
    let promotion = match r.promotions.as_deref() {
        None | Some([]) => None,
        Some([p]) => {
            let name = p
                .name
                .clone()
                .ok_or_else(|| ApiError::invalid("promotions[0].name is required"))?;
            let pct = p.percent_promoted_items.unwrap_or(0);
            if !(1..=100).contains(&pct) {
                return Err(ApiError::invalid(format!(
                    "promotions[0].percentPromotedItems must be between 1 and 100, got {pct}"
                )));
            }
            let f = filter_request(
                &live,
                "promotions[0].",
                p.filter_arn.as_ref(),
                p.filter_values.as_ref(),
            )?
            .ok_or_else(|| ApiError::invalid("promotions[0].filterArn is required"))?;
            Some(serving::Promotion {
                name,
                percent: pct as usize,
                filter: f,
            })
        }
        Some(_) => return Err(ApiError::invalid("promotions: at most 1 promotion")),
    };
    let recent = r
        .user_id
        .as_deref()
        .map(|u| state.realtime.recent(&live.record.dataset_group, u))
        .unwrap_or_default();
    let version = live.rec.version;
    let items = tokio::task::spawn_blocking(move || {
        serving::recommend(
            &live,
            &Question {
                user: r.user_id.as_deref(),
                item: r.item_id.as_deref(),
                num_results: n,
                filter: filter.as_ref(),
                promotion: promotion.as_ref(),
                columns: &columns,
                recent: &recent,
            },
        )
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
    let user = r
        .user_id
        .clone()
        .ok_or_else(|| ApiError::invalid("userId is required"))?;
    check_id("userId", &user)?;
    let list = r
        .input_list
        .clone()
        .ok_or_else(|| ApiError::invalid("inputList is required"))?;
    if list.is_empty() || list.len() > MAX_NUM_RESULTS {
        return Err(ApiError::invalid(format!(
            "inputList must have 1 to {MAX_NUM_RESULTS} items, got {}",
            list.len()
        )));
    }
    for (i, id) in list.iter().enumerate() {
        check_id(&format!("inputList[{i}]"), id)?;
    }
    check_context(&r.context)?;
    let columns = serving::metadata_columns(&live, r.metadata_columns.as_ref())?;
    let filter = filter_request(&live, "", r.filter_arn.as_ref(), r.filter_values.as_ref())?;
    let recent = state.realtime.recent(&live.record.dataset_group, &user);
    let version = live.rec.version;
    let items = tokio::task::spawn_blocking(move || {
        serving::rank(&live, &user, &list, filter.as_ref(), &columns, &recent)
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
