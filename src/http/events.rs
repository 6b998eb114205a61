//! The events API: `POST /events` (PutEvents), `/items` (PutItems) and
//! `/users` (PutUsers). A request is checked whole, written to the state
//! store in one transaction (durable before the 200), then applied to the
//! live answers: the user's next recommendation sees the new events.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::{AppState, Timer, access, parse_body, read_body};
use crate::schema::MAX_ID_CHARS;
use crate::store::EventRecord;

const MAX_EVENTS: usize = 10;
const MAX_RECORDS: usize = 10;
const MAX_IMPRESSION: usize = 25;
const MAX_EVENT_PROPERTIES: usize = 1_024;
const MAX_ITEM_PROPERTIES: usize = 32_000;
const MAX_USER_PROPERTIES: usize = 24_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutEvents {
    tracking_id: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    event_list: Option<Vec<Event>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[allow(dead_code)]
    event_id: Option<String>,
    event_type: Option<String>,
    event_value: Option<f64>,
    item_id: Option<String>,
    properties: Option<String>,
    /// Epoch seconds, an integer or a float with milliseconds.
    sent_at: Option<serde_json::Number>,
    recommendation_id: Option<String>,
    impression: Option<Vec<String>>,
    #[allow(dead_code)]
    metric_attribution: Option<serde_json::Value>,
}

fn id(member: &str, v: &Option<String>, required: bool) -> Result<(), ApiError> {
    match v {
        None if required => Err(ApiError::invalid(format!("{member} is required"))),
        Some(s) if s.is_empty() || s.chars().count() > MAX_ID_CHARS => Err(ApiError::invalid(
            format!("{member} must be 1 to {MAX_ID_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

/// A `properties` member: a JSON object encoded as a string, within `limit`.
fn properties(member: &str, v: &Option<String>, limit: usize) -> Result<(), ApiError> {
    if let Some(p) = v {
        if p.chars().count() > limit {
            return Err(ApiError::invalid(format!(
                "{member}: at most {limit} characters"
            )));
        }
        match serde_json::from_str::<serde_json::Value>(p) {
            Ok(serde_json::Value::Object(_)) => {}
            _ => {
                return Err(ApiError::invalid(format!(
                    "{member} must be a JSON object encoded as a string, e.g. \"{{\\\"numRatings\\\": 3}}\""
                )));
            }
        }
    }
    Ok(())
}

pub async fn put_events(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let timer = Timer::start();
    let result = handle_events(&state, req).await;
    state.finish("PutEvents", "", timer, result)
}

async fn handle_events(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let body = read_body(state, req, Some(access::Need::Admin)).await?;
    let r: PutEvents = parse_body(&body)?;
    let tracking_id = r
        .tracking_id
        .ok_or_else(|| ApiError::invalid("trackingId is required"))?;
    id("sessionId", &r.session_id, true)?;
    id("userId", &r.user_id, false)?;
    let events = r.event_list.unwrap_or_default();
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(ApiError::invalid(format!(
            "eventList must have 1 to {MAX_EVENTS} events, got {}",
            events.len()
        )));
    }
    let group = state
        .env
        .store
        .tracker_group(&tracking_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "trackingId {tracking_id:?} is not an event tracker (`recflow campaigns show NAME` prints its group's)"
            ))
        })?;
    let mut records = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        let at = format!("eventList[{i}]");
        let event_type = e
            .event_type
            .ok_or_else(|| ApiError::invalid(format!("{at}.eventType is required")))?;
        if event_type.is_empty() || event_type.chars().count() > MAX_ID_CHARS {
            return Err(ApiError::invalid(format!(
                "{at}.eventType must be 1 to {MAX_ID_CHARS} characters"
            )));
        }
        id(&format!("{at}.itemId"), &e.item_id, false)?;
        id(
            &format!("{at}.recommendationId"),
            &e.recommendation_id,
            false,
        )?;
        properties(
            &format!("{at}.properties"),
            &e.properties,
            MAX_EVENT_PROPERTIES,
        )?;
        let sent_at = e
            .sent_at
            .and_then(|n| n.as_f64())
            .ok_or_else(|| ApiError::invalid(format!("{at}.sentAt (epoch seconds) is required")))?;
        if !(0.0..1e11).contains(&sent_at) {
            return Err(ApiError::invalid(format!(
                "{at}.sentAt must be epoch seconds, got {sent_at}"
            )));
        }
        if let Some(imp) = &e.impression
            && (imp.is_empty() || imp.len() > MAX_IMPRESSION)
        {
            return Err(ApiError::invalid(format!(
                "{at}.impression must list 1 to {MAX_IMPRESSION} item ids"
            )));
        }
        records.push(EventRecord {
            id: 0,
            dataset_group: group.clone(),
            user_id: r.user_id.clone(),
            session_id: r.session_id.clone().unwrap_or_default(),
            event_type,
            item_id: e.item_id,
            event_value: e.event_value,
            sent_at: sent_at as i64,
            recommendation_id: e.recommendation_id,
            impression: e.impression.map(|v| v.join("|")),
            properties: e.properties,
        });
    }
    state
        .env
        .store
        .insert_events(&records)
        .await
        .map_err(ApiError::internal)?;
    state.realtime.record(&records);
    state.metrics.events(&group, records.len() as u64);
    Ok(().into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutItems {
    dataset_arn: Option<String>,
    items: Option<Vec<PutRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutUsers {
    dataset_arn: Option<String>,
    users: Option<Vec<PutRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutRecord {
    item_id: Option<String>,
    user_id: Option<String>,
    properties: Option<String>,
}

/// `arn:aws:personalize:REGION:ACCOUNT:dataset/GROUP/ITEMS` (or `GROUP/ITEMS`)
/// → the group, checked against the dataset type the operation writes.
fn dataset_group(arn: &Option<String>, dataset_type: &str) -> Result<String, ApiError> {
    let arn = arn
        .as_deref()
        .ok_or_else(|| ApiError::invalid("datasetArn is required"))?;
    let path = arn.rsplit_once(":dataset/").map_or(arn, |(_, p)| p);
    match path.split_once('/') {
        Some((group, t)) if !group.is_empty() && t.eq_ignore_ascii_case(dataset_type) => {
            Ok(group.to_string())
        }
        _ => Err(ApiError::invalid(format!(
            "datasetArn {arn:?} must name a dataset group's {dataset_type} dataset: arn:aws:personalize:REGION:ACCOUNT:dataset/GROUP/{dataset_type}"
        ))),
    }
}

pub async fn put_items(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let timer = Timer::start();
    let result = async {
        let body = read_body(&state, req, Some(access::Need::Admin)).await?;
        let r: PutItems = parse_body(&body)?;
        let group = dataset_group(&r.dataset_arn, "ITEMS")?;
        put(
            &state,
            &group,
            "items",
            "items",
            "itemId",
            r.items,
            MAX_ITEM_PROPERTIES,
        )
        .await
    }
    .await;
    state.finish("PutItems", "", timer, result)
}

pub async fn put_users(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let timer = Timer::start();
    let result = async {
        let body = read_body(&state, req, Some(access::Need::Admin)).await?;
        let r: PutUsers = parse_body(&body)?;
        let group = dataset_group(&r.dataset_arn, "USERS")?;
        put(
            &state,
            &group,
            "users",
            "users",
            "userId",
            r.users,
            MAX_USER_PROPERTIES,
        )
        .await
    }
    .await;
    state.finish("PutUsers", "", timer, result)
}

async fn put(
    state: &AppState,
    group: &str,
    dataset_type: &str,
    member: &str,
    id_member: &str,
    list: Option<Vec<PutRecord>>,
    limit: usize,
) -> Result<Response, ApiError> {
    let list = list.unwrap_or_default();
    if list.is_empty() || list.len() > MAX_RECORDS {
        return Err(ApiError::invalid(format!(
            "{member} must have 1 to {MAX_RECORDS} entries, got {}",
            list.len()
        )));
    }
    let mut rows = Vec::with_capacity(list.len());
    for (i, r) in list.into_iter().enumerate() {
        let at = format!("{member}[{i}]");
        let rid = if id_member == "itemId" {
            r.item_id
        } else {
            r.user_id
        };
        id(&format!("{at}.{id_member}"), &rid, true)?;
        properties(&format!("{at}.properties"), &r.properties, limit)?;
        let rid = rid.unwrap_or_default();
        rows.push((rid, r.properties.unwrap_or_else(|| "{}".into())));
    }
    state
        .env
        .store
        .put_records(group, dataset_type, &rows)
        .await
        .map_err(ApiError::internal)?;
    Ok(().into_response())
}
