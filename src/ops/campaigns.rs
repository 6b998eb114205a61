//! Campaigns: list, show with the event tracker and deployment history,
//! update, rollback; and asking a campaign (or a segment solution) for an
//! answer as the API would give it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{OpsError, OpsResult, serving};
use crate::campaign::{self, Moved, NumResults, Recommender};
use crate::config::Env;
use crate::recipes::{RecipeKind, SegmentQuery};
use crate::store::{CampaignRecord, DeploymentRecord};

/// The most deployments a campaign's history shows.
pub const HISTORY: usize = 100;

/// A campaign, the tracking id its group's events are posted with, and its
/// deployment history, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignDetail {
    #[serde(flatten)]
    pub campaign: CampaignRecord,
    pub tracking_id: String,
    pub deployments: Vec<DeploymentRecord>,
}

pub async fn list(env: &Env) -> OpsResult<Vec<CampaignRecord>> {
    Ok(env.store.list_campaigns().await?)
}

pub async fn show(env: &Env, name: &str) -> OpsResult<CampaignDetail> {
    let campaign = campaign::get(env, name).await?;
    let tracking_id = env.store.event_tracker(&campaign.dataset_group).await?;
    let mut deployments = env.store.list_deployments(name).await?;
    deployments.truncate(HISTORY);
    Ok(CampaignDetail {
        campaign,
        tracking_id,
        deployments,
    })
}

/// Points a campaign at another active version of its solution.
pub async fn update(env: &Env, name: &str, version: i64) -> OpsResult<Moved> {
    Ok(campaign::update(env, name, version).await?)
}

/// Points a campaign back at the version it served before.
pub async fn rollback(env: &Env, name: &str) -> OpsResult<Moved> {
    Ok(campaign::rollback(env, name).await?)
}

/// What a campaign answers, and which version answered.
#[derive(Debug, Clone, Serialize)]
pub struct Answer<T> {
    pub solution: String,
    pub version: i64,
    pub recipe: RecipeKind,
    pub items: Vec<T>,
}

/// What [`recommend`] asks of a campaign, as GetRecommendations' members.
#[derive(Debug, Clone)]
pub struct RecommendAsk {
    pub user: Option<String>,
    pub item: Option<String>,
    pub num_results: NumResults,
    /// A filter of the campaign's dataset group, by name.
    pub filter: Option<String>,
    /// The filter's parameters, as `filterValues` (`"\"comedy\",\"drama\""`).
    pub filter_values: BTreeMap<String, String>,
    /// Items dataset columns to return beside each item (`metadataColumns`).
    pub metadata: Vec<String>,
}

/// Recommendations for a user, or items related to an item, answered by
/// the same code as the runtime API's (filters, item metadata, the user's
/// stored real-time events), from the campaign loaded as the server loads it.
pub async fn recommend(
    env: &Env,
    name: &str,
    ask: &RecommendAsk,
) -> OpsResult<Answer<serving::Recommended>> {
    if ask.user.is_none() && ask.item.is_none() {
        return Err(OpsError::Invalid("give a user or an item".into()));
    }
    let live = serving::load(env, name).await?;
    let filter =
        serving::filter_request(&live, "", ask.filter.as_deref(), Some(&ask.filter_values))?;
    let columns = if ask.metadata.is_empty() {
        Vec::new()
    } else {
        let asked = BTreeMap::from([("ITEMS".to_string(), ask.metadata.clone())]);
        serving::metadata_columns(&live, Some(&asked))?
    };
    let recent = match &ask.user {
        Some(u) => serving::recent_events(env, &live.record.dataset_group, u).await?,
        None => Vec::new(),
    };
    let ask = ask.clone();
    let (solution, version, recipe) = (
        live.rec.solution.clone(),
        live.rec.version,
        live.rec.model.recipe,
    );
    let items = tokio::task::spawn_blocking(move || {
        serving::recommend(
            &live,
            &serving::Question {
                user: ask.user.as_deref(),
                item: ask.item.as_deref(),
                num_results: ask.num_results.get(),
                filter: filter.as_ref(),
                promotion: None,
                columns: &columns,
                recent: &recent,
            },
        )
    })
    .await
    .map_err(|e| OpsError::Internal(e.to_string()))??;
    Ok(Answer {
        solution,
        version,
        recipe,
        items,
    })
}

/// The users most likely to interact with an item, or with the items an
/// attribute expression matches (a segment solution's version, the latest
/// active one when `version` is `None`).
pub async fn segment(
    env: &Env,
    solution: &str,
    version: Option<i64>,
    query: &SegmentQuery<'_>,
    num_results: usize,
) -> OpsResult<Answer<(String, f32)>> {
    let rec = Recommender::for_solution(env, solution, version).await?;
    let items = rec
        .model
        .segment(query, num_results, None)
        .map_err(super::OpsError::Invalid)?;
    Ok(Answer {
        solution: rec.solution,
        version: rec.version,
        recipe: rec.model.recipe,
        items,
    })
}
