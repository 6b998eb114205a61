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
use super::limits::{self, Checker, Limited, Path, parse_request};
use super::live::LiveCampaign;
use super::{AppState, Timer, access, read_body, resource_name};
use crate::campaign::NumResults;
use crate::ops::serving::{self, FilterRequest, Question};

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
    let n = r
        .num_results
        .map_or(Ok(NumResults::DEFAULT), NumResults::new)
        .map_err(|e| ApiError::invalid(format!("numResults: {e}")))?
        .get();
    // The limits were checked when the request was parsed.
    let columns = serving::metadata_columns(&live, r.metadata_columns.as_ref())?;
    let filter = filter_request(&live, "", r.filter_arn.as_ref(), r.filter_values.as_ref())?;
    let promotion = match r.promotions.as_deref() {
        None | Some([]) => None,
        Some([p]) => {
            let f = filter_request(
                &live,
                "promotions.1.",
                p.filter_arn.as_ref(),
                p.filter_values.as_ref(),
            )?
            .ok_or_else(|| ApiError::invalid("promotions.1.filterArn: required"))?;
            Some(serving::Promotion {
                name: p.name.clone().unwrap_or_default(),
                percent: p.percent_promoted_items.unwrap_or(1) as usize,
                filter: f,
            })
        }
        _ => None,
    };
    let recent = r
        .user_id
        .as_deref()
        .map(|u| state.realtime.recent(&live.record.dataset_group, u))
        .unwrap_or_default();
    let version = live.rec.version;
    let items = state
        .gate
        .run(move || {
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
        .await??;
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
    // The limits (userId, inputList of 1 to 500 ids) were checked when the
    // request was parsed.
    let user = r.user_id.clone().unwrap_or_default();
    let list = r.input_list.clone().unwrap_or_default();
    let columns = serving::metadata_columns(&live, r.metadata_columns.as_ref())?;
    let filter = filter_request(&live, "", r.filter_arn.as_ref(), r.filter_values.as_ref())?;
    let recent = state.realtime.recent(&live.record.dataset_group, &user);
    let version = live.rec.version;
    let items = state
        .gate
        .run(move || serving::rank(&live, &user, &list, filter.as_ref(), &columns, &recent))
        .await??;
    Ok(answered(
        version,
        serde_json::json!({
            "personalizedRanking": items,
            "recommendationId": recommendation_id(),
        }),
    ))
}
