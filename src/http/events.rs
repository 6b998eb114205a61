//! The events API: `POST /events` (PutEvents), `/items` (PutItems) and
//! `/users` (PutUsers). A request is checked whole — the managed service's
//! limits (`limits`), then against what exists: the event tracker, the
//! dataset a `datasetArn` names and the fields of its schema — then written
//! to the state store in one transaction (durable before the 200), then
//! applied to the live answers: the user's next recommendation sees the new
//! events. A name that is not a valid resource name is refused before it
//! reaches the store, so it never becomes part of a path.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::limits::{self, Checker, Limited, Path, parse_request};
use super::{AppState, Timer, access, read_body};
use crate::dataset::{DatasetManifest, field_key};
use crate::schema::{DatasetType, Field, FieldType, MAX_TEXTUAL_CHARS, Schema};
use crate::store::{EventRecord, VersionKind};

/// `sentAt` must be epoch seconds below this (the year 5138): a larger
/// number is milliseconds or nonsense.
const MAX_SENT_AT: f64 = 1e11;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutEvents {
    tracking_id: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    event_list: Option<Vec<Event>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Event {
    /// Checked, not kept: recflow identifies events by their row.
    event_id: Option<String>,
    event_type: Option<String>,
    event_value: Option<f64>,
    item_id: Option<String>,
    properties: Option<String>,
    /// Epoch seconds, an integer or a float with milliseconds.
    sent_at: Option<serde_json::Number>,
    recommendation_id: Option<String>,
    impression: Option<Vec<String>>,
    metric_attribution: Option<MetricAttribution>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricAttribution {
    event_attribution_source: Option<String>,
}

impl Limited for PutEvents {
    fn check(&self, c: &mut Checker) {
        let root = Path::root();
        c.req_id(
            &root.member("trackingId"),
            &self.tracking_id,
            limits::ID_CHARS,
        );
        c.opt_id(&root.member("userId"), &self.user_id, limits::ID_CHARS);
        c.req_id(
            &root.member("sessionId"),
            &self.session_id,
            limits::ID_CHARS,
        );
        let at = root.member("eventList");
        let Some(events) = &self.event_list else {
            return c.problem(&at, "required");
        };
        c.count(&at, events.len(), limits::EVENTS);
        // Entries past the limit are not worth checking one by one.
        for (i, e) in events.iter().enumerate().take(*limits::EVENTS.end()) {
            e.check(&at.entry(i), c);
        }
    }
}

impl Event {
    fn check(&self, at: &Path, c: &mut Checker) {
        c.req_id(&at.member("eventType"), &self.event_type, limits::ID_CHARS);
        c.opt_id(&at.member("eventId"), &self.event_id, limits::ID_CHARS);
        c.opt_id(&at.member("itemId"), &self.item_id, limits::ID_CHARS);
        c.opt_id(
            &at.member("recommendationId"),
            &self.recommendation_id,
            limits::RECOMMENDATION_ID_CHARS,
        );
        check_properties_text(
            c,
            &at.member("properties"),
            &self.properties,
            limits::EVENT_PROPERTIES_CHARS,
        );
        let sent_at = at.member("sentAt");
        match self.sent_at.as_ref().map(serde_json::Number::as_f64) {
            None => c.problem(&sent_at, "required (epoch seconds)"),
            Some(Some(s)) if (0.0..MAX_SENT_AT).contains(&s) => {}
            Some(_) => c.problem(
                &sent_at,
                format!(
                    "must be epoch seconds, got {}",
                    self.sent_at
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            ),
        }
        if let Some(imp) = &self.impression {
            let at = at.member("impression");
            c.count(&at, imp.len(), limits::IMPRESSION);
            for (i, id) in imp.iter().enumerate().take(*limits::IMPRESSION.end()) {
                c.id(&at.entry(i), id, limits::ID_CHARS);
            }
        }
        if let Some(m) = &self.metric_attribution {
            let at = at
                .member("metricAttribution")
                .member("eventAttributionSource");
            match &m.event_attribution_source {
                Some(s) => c.chars(&at, s, limits::ATTRIBUTION_SOURCE_CHARS),
                None => c.problem(&at, "required"),
            }
        }
    }
}

/// A `properties` member's text: within `limit`, and a JSON object whose
/// keys each appear once.
fn check_properties_text(c: &mut Checker, at: &Path, v: &Option<String>, limit: usize) {
    if let Some(p) = v {
        c.chars(at, p, limit);
        if let Err(e) = property_entries(p) {
            c.problem(at, e);
        }
    }
}

/// The members of a `properties` string in order, duplicates kept (a JSON
/// object read into a map would silently keep the last).
fn property_entries(text: &str) -> Result<Vec<(String, Value)>, String> {
    struct Entries(Vec<(String, Value)>);
    impl<'de> Deserialize<'de> for Entries {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Entries;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Entries, A::Error> {
                    let mut out = Vec::new();
                    while let Some(entry) = map.next_entry::<String, Value>()? {
                        out.push(entry);
                    }
                    Ok(Entries(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    let Entries(entries) = serde_json::from_str(text).map_err(|_| {
        "must be a JSON object encoded as a string, e.g. \"{\\\"numRatings\\\": 3}\"".to_string()
    })?;
    Ok(entries)
}

/// Checks `properties` against the dataset's schema: each key is one of its
/// fields in camelCase (`numRatings` → NUM_RATINGS), given once, other than
/// the record's own id, with a value of the field's type.
fn check_properties(c: &mut Checker, at: &Path, text: &str, schema: &Schema, group: &str) {
    let Ok(entries) = property_entries(text) else {
        return; // refused by the limits already
    };
    let dataset = schema.dataset_type.as_str().to_uppercase();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &entries {
        let at = at.member(key);
        let Some(field) = schema
            .fields
            .iter()
            .find(|f| field_key(&f.name) == field_key(key))
        else {
            let known: Vec<String> = schema
                .fields
                .iter()
                .filter(|f| schema.dataset_type.key_field() != Some(f.name.as_str()))
                .map(|f| camel_case(&f.name))
                .collect();
            c.problem(
                &at,
                format!(
                    "{key:?} is not a field of the {dataset} dataset of dataset group {group} (its fields: {})",
                    known.join(", ")
                ),
            );
            continue;
        };
        if schema.dataset_type.key_field() == Some(field.name.as_str()) {
            c.problem(
                &at,
                format!("{} is the record's id, not a property", field.name),
            );
            continue;
        }
        if seen.contains(&field.name.as_str()) {
            c.problem(&at, format!("{} is given more than once", field.name));
            continue;
        }
        seen.push(&field.name);
        if let Err(e) = value_fits(field, value) {
            c.problem(&at, e);
        }
    }
}

/// Whether a property value can be stored in the field without loss.
fn value_fits(field: &Field, v: &Value) -> Result<(), String> {
    let want = |what: &str| {
        format!(
            "{} is {}: expected {what}, got {}",
            field.name,
            field.field_type.as_str(),
            limits_echo(v)
        )
    };
    match (v, field.field_type) {
        (Value::Null, _) => Ok(()),
        (Value::Object(_) | Value::Array(_), _) => Err(want("a single value")),
        (_, FieldType::String) => {
            let n = match v {
                Value::String(s) => s.chars().count(),
                other => other.to_string().len(),
            };
            if field.textual && n > MAX_TEXTUAL_CHARS {
                Err(format!(
                    "{} is textual: at most {MAX_TEXTUAL_CHARS} characters, got {n}",
                    field.name
                ))
            } else {
                Ok(())
            }
        }
        (_, FieldType::Int | FieldType::Long) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if field.field_type == FieldType::Long || i32::try_from(n).is_ok() => {
                    Ok(())
                }
                _ => Err(want("an integer")),
            }
        }
        (_, FieldType::Float | FieldType::Double) => {
            let ok = match v {
                Value::Number(_) => true,
                Value::String(s) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
                _ => false,
            };
            if ok { Ok(()) } else { Err(want("a number")) }
        }
        (_, FieldType::Boolean) => match v {
            Value::Bool(_) => Ok(()),
            Value::String(s) if s == "true" || s == "false" => Ok(()),
            _ => Err(want("true or false")),
        },
    }
}

/// A value as an error message shows it: its JSON, cut short.
fn limits_echo(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// `NUM_RATINGS` → `numRatings`, the key a `properties` string uses.
fn camel_case(field: &str) -> String {
    let mut out = String::new();
    for (i, part) in field.split('_').filter(|p| !p.is_empty()).enumerate() {
        let lower = part.to_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut cs = lower.chars();
            out.extend(cs.next().map(|c| c.to_ascii_uppercase()));
            out.push_str(cs.as_str());
        }
    }
    out
}

/// The schema of a dataset's newest active version, if it has one.
async fn dataset_schema(
    state: &AppState,
    group: &str,
    dataset: DatasetType,
) -> Result<Option<Schema>, ApiError> {
    let owner = crate::dataset::owner(group, dataset);
    let Some(record) = state
        .env
        .store
        .latest_active_version(VersionKind::Dataset, &owner)
        .await
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let manifest = record
        .manifest
        .ok_or_else(|| ApiError::internal(format!("{owner} v{}: no manifest", record.version)))?;
    let manifest: DatasetManifest = serde_json::from_value(manifest)
        .map_err(|e| ApiError::internal(format!("{owner} v{}: {e}", record.version)))?;
    Ok(Some(manifest.schema))
}

pub async fn put_events(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let timer = Timer::start();
    let result = handle_events(&state, req).await;
    state.finish("PutEvents", "", timer, result)
}

async fn handle_events(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let body = read_body(state, req, Some(access::Need::Admin)).await?;
    let r: PutEvents = parse_request(&body)?;
    // Required members are present: `parse_request` checked them.
    let tracking_id = r.tracking_id.unwrap_or_default();
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
    let events = r.event_list.unwrap_or_default();
    // Event properties name interactions fields; they can be checked once
    // the group's interactions have a schema (an imported version).
    if events.iter().any(|e| e.properties.is_some())
        && let Some(schema) = dataset_schema(state, &group, DatasetType::Interactions).await?
    {
        let mut c = Checker::default();
        for (i, e) in events.iter().enumerate() {
            if let Some(p) = &e.properties {
                let at = Path::root()
                    .member("eventList")
                    .entry(i)
                    .member("properties");
                check_properties(&mut c, &at, p, &schema, &group);
            }
        }
        c.finish()?;
    }
    let records: Vec<EventRecord> = events
        .into_iter()
        .map(|e| EventRecord {
            id: 0,
            dataset_group: group.clone(),
            user_id: r.user_id.clone(),
            session_id: r.session_id.clone().unwrap_or_default(),
            event_type: e.event_type.unwrap_or_default(),
            item_id: e.item_id,
            event_value: e.event_value,
            sent_at: e.sent_at.and_then(|n| n.as_f64()).unwrap_or_default() as i64,
            recommendation_id: e.recommendation_id,
            impression: e.impression.map(|v| v.join("|")),
            properties: e.properties,
        })
        .collect();
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutItems {
    dataset_arn: Option<String>,
    items: Option<Vec<ItemRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ItemRecord {
    item_id: Option<String>,
    properties: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutUsers {
    dataset_arn: Option<String>,
    users: Option<Vec<UserRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserRecord {
    user_id: Option<String>,
    properties: Option<String>,
}

/// PutItems and PutUsers, told apart by what they write.
struct PutRecords<'a> {
    dataset_arn: &'a Option<String>,
    /// `items` or `users`.
    member: &'static str,
    /// `itemId` or `userId`.
    id_member: &'static str,
    properties_chars: usize,
    records: Option<Vec<(&'a Option<String>, &'a Option<String>)>>,
}

impl PutRecords<'_> {
    fn check(&self, c: &mut Checker) {
        let root = Path::root();
        let arn = root.member("datasetArn");
        match self.dataset_arn {
            Some(a) => c.id(&arn, a, limits::ARN_CHARS),
            None => c.problem(&arn, "required"),
        }
        let at = root.member(self.member);
        let Some(records) = &self.records else {
            return c.problem(&at, "required");
        };
        c.count(&at, records.len(), limits::RECORDS);
        for (i, (id, properties)) in records.iter().enumerate().take(*limits::RECORDS.end()) {
            let at = at.entry(i);
            c.req_id(&at.member(self.id_member), id, limits::ID_CHARS);
            check_properties_text(
                c,
                &at.member("properties"),
                properties,
                self.properties_chars,
            );
        }
    }
}

impl PutItems {
    fn records(&self) -> PutRecords<'_> {
        PutRecords {
            dataset_arn: &self.dataset_arn,
            member: "items",
            id_member: "itemId",
            properties_chars: limits::ITEM_PROPERTIES_CHARS,
            records: self
                .items
                .as_ref()
                .map(|v| v.iter().map(|r| (&r.item_id, &r.properties)).collect()),
        }
    }
}

impl PutUsers {
    fn records(&self) -> PutRecords<'_> {
        PutRecords {
            dataset_arn: &self.dataset_arn,
            member: "users",
            id_member: "userId",
            properties_chars: limits::USER_PROPERTIES_CHARS,
            records: self
                .users
                .as_ref()
                .map(|v| v.iter().map(|r| (&r.user_id, &r.properties)).collect()),
        }
    }
}

impl Limited for PutItems {
    fn check(&self, c: &mut Checker) {
        self.records().check(c);
    }
}

impl Limited for PutUsers {
    fn check(&self, c: &mut Checker) {
        self.records().check(c);
    }
}

/// The dataset group a `datasetArn` names, for an operation that writes
/// `dataset`: `arn:PARTITION:personalize:REGION:ACCOUNT:dataset/GROUP/ITEMS`
/// (or recflow's short form `GROUP/ITEMS`). A malformed ARN or group name
/// is invalid input; a well-formed one that names no dataset is not found.
fn dataset_group(arn: &str, dataset: DatasetType) -> Result<String, ApiError> {
    let wanted = dataset.as_str().to_uppercase();
    let example = format!("arn:aws:personalize:REGION:ACCOUNT:dataset/GROUP/{wanted}");
    let not_found = || {
        ApiError::not_found(format!(
            "datasetArn {:?} names no dataset (a dataset's ARN is {example})",
            echo(arn)
        ))
    };
    let path = if arn.starts_with("arn:") {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let well_formed = parts.len() == 6
            && !parts[1].is_empty()
            && parts[1]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && parts[2] == "personalize"
            && !parts[5].is_empty();
        if !well_formed {
            return Err(ApiError::invalid(format!(
                "datasetArn {:?} is not an ARN of the service: expected {example}",
                echo(arn)
            )));
        }
        parts[5].strip_prefix("dataset/").ok_or_else(not_found)?
    } else {
        arn
    };
    let (group, kind) = path.rsplit_once('/').ok_or_else(not_found)?;
    crate::spec::check_resource_name(group)
        .map_err(|e| ApiError::invalid(format!("datasetArn names a dataset group with an {e}")))?;
    match DatasetType::parse(&kind.to_lowercase()) {
        Some(t) if t == dataset => Ok(group.to_string()),
        Some(_) => Err(ApiError::invalid(format!(
            "datasetArn names the {kind} dataset of {group}; this operation writes the {wanted} dataset ({example})"
        ))),
        None => Err(not_found()),
    }
}

/// Client input in a message, cut short.
fn echo(s: &str) -> String {
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s.to_string()
    }
}

pub async fn put_items(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let timer = Timer::start();
    let result = async {
        let body = read_body(&state, req, Some(access::Need::Admin)).await?;
        let r: PutItems = parse_request(&body)?;
        put(&state, DatasetType::Items, r.records()).await
    }
    .await;
    state.finish("PutItems", "", timer, result)
}

pub async fn put_users(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let timer = Timer::start();
    let result = async {
        let body = read_body(&state, req, Some(access::Need::Admin)).await?;
        let r: PutUsers = parse_request(&body)?;
        put(&state, DatasetType::Users, r.records()).await
    }
    .await;
    state.finish("PutUsers", "", timer, result)
}

/// Stores checked records of the dataset `datasetArn` names, once it is
/// known to exist and each record's properties fit its schema.
async fn put(
    state: &AppState,
    dataset: DatasetType,
    r: PutRecords<'_>,
) -> Result<Response, ApiError> {
    let arn = r.dataset_arn.as_deref().unwrap_or_default();
    let group = dataset_group(arn, dataset)?;
    let schema = dataset_schema(state, &group, dataset).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "dataset group {group:?} has no {} dataset (a dataset exists once a version of it is imported; datasetArn {:?})",
            dataset.as_str().to_uppercase(),
            echo(arn)
        ))
    })?;
    let records = r.records.unwrap_or_default();
    let mut c = Checker::default();
    for (i, (_, properties)) in records.iter().enumerate() {
        if let Some(p) = properties {
            let at = Path::root().member(r.member).entry(i).member("properties");
            check_properties(&mut c, &at, p, &schema, &group);
        }
    }
    c.finish()?;
    let rows: Vec<(String, String)> = records
        .into_iter()
        .map(|(id, properties)| {
            (
                id.clone().unwrap_or_default(),
                properties.clone().unwrap_or_else(|| "{}".into()),
            )
        })
        .collect();
    state
        .env
        .store
        .put_records(&group, dataset.as_str(), &rows)
        .await
        .map_err(ApiError::internal)?;
    Ok(().into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items_schema() -> Schema {
        let field = |name: &str, field_type, textual| Field {
            name: name.into(),
            field_type,
            nullable: true,
            categorical: false,
            textual,
        };
        Schema {
            dataset_type: DatasetType::Items,
            fields: vec![
                field("ITEM_ID", FieldType::String, false),
                field("GENRES", FieldType::String, false),
                field("NUM_RATINGS", FieldType::Int, false),
                field("PRICE", FieldType::Float, false),
                field("CREATION_TIMESTAMP", FieldType::Long, false),
            ],
        }
    }

    fn problems(text: &str) -> Vec<String> {
        let mut c = Checker::default();
        check_properties(
            &mut c,
            &Path::root().member("p"),
            text,
            &items_schema(),
            "g",
        );
        match c.finish() {
            Ok(()) => vec![],
            Err(e) => vec![e.message()],
        }
    }

    #[test]
    fn properties_name_schema_fields_in_camel_case_with_values_of_their_type() {
        assert_eq!(
            problems(
                r#"{"genres": "Drama", "numRatings": "12", "price": 9.5, "creationTimestamp": 1700000000}"#
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            problems(r#"{"genress": "Drama"}"#),
            [
                r#"p.genress: "genress" is not a field of the ITEMS dataset of dataset group g (its fields: genres, numRatings, price, creationTimestamp)"#
            ]
        );
        assert_eq!(
            problems(r#"{"creationTimestamp": 1700000060.5}"#),
            [
                "p.creationTimestamp: CREATION_TIMESTAMP is long: expected an integer, got 1700000060.5"
            ]
        );
        assert_eq!(
            problems(r#"{"genres": ["a"]}"#),
            [r#"p.genres: GENRES is string: expected a single value, got ["a"]"#]
        );
        assert_eq!(
            problems(r#"{"genres": "a", "GENRES": "b"}"#),
            ["p.GENRES: GENRES is given more than once"]
        );
        assert_eq!(
            problems(r#"{"genres": "a", "genres": "b"}"#),
            ["p.genres: GENRES is given more than once"]
        );
        assert_eq!(
            problems(r#"{"itemId": "x"}"#),
            ["p.itemId: ITEM_ID is the record's id, not a property"]
        );
    }

    #[test]
    fn dataset_arns_are_parsed_strictly() {
        let arn = |a: &str| dataset_group(a, DatasetType::Items);
        assert_eq!(
            arn("arn:aws:personalize:us-east-1:1:dataset/ml/ITEMS").unwrap(),
            "ml"
        );
        assert_eq!(arn("ml/ITEMS").unwrap(), "ml");
        let code = |a: &str| arn(a).unwrap_err().code();
        assert_eq!(
            code("arn:aws:personalize:us-east-1:1:dataset/..%2F../ITEMS"),
            "InvalidInputException"
        );
        assert_eq!(
            code("arn:aws:personalize:us-east-1:1:dataset/../../ITEMS"),
            "InvalidInputException"
        );
        assert_eq!(
            code("arn:aws:personalize:us-east-1:1:dataset/m\0l/ITEMS"),
            "InvalidInputException"
        );
        assert_eq!(code("arn:aws:s3:::bucket"), "InvalidInputException");
        assert_eq!(
            code("arn:aws:personalize:us-east-1:1:dataset/ml/USERS"),
            "InvalidInputException"
        );
        assert_eq!(
            code("arn:aws:personalize:us-east-1:1:dataset/ml"),
            "ResourceNotFoundException"
        );
        assert_eq!(
            code("arn:aws:personalize:us-east-1:1:campaign/movies"),
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn camel_case_is_the_managed_services_key() {
        assert_eq!(camel_case("NUM_RATINGS"), "numRatings");
        assert_eq!(camel_case("GENRES"), "genres");
    }
}
