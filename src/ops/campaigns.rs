//! Campaigns: list, show with the event tracker and deployment history,
//! update, rollback; and asking a campaign (or a segment solution) for an
//! answer as the API would give it.

use serde::Serialize;

use super::OpsResult;
use crate::campaign::{self, Moved, NumResults, Recommender};
use crate::config::Env;
use crate::recipes::{Query, RecipeKind, Scored, SegmentQuery};
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

/// Recommendations for a user, or items related to an item, as the
/// runtime API answers them (without a filter).
pub async fn recommend(
    env: &Env,
    name: &str,
    query: &Query<'_>,
    num_results: NumResults,
) -> OpsResult<Answer<Scored>> {
    let (_, rec) = Recommender::for_campaign(env, name).await?;
    let items = rec.recommend(query, num_results);
    Ok(Answer {
        solution: rec.solution,
        version: rec.version,
        recipe: rec.model.recipe,
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
