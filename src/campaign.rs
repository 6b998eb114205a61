//! Campaigns: a named pointer to a solution version. Resolving a campaign
//! loads the model it serves; the CLI's `recommend`, batch jobs and the
//! server all answer through [`Recommender`], so they give the same answers.

use std::sync::Arc;

use serde::Serialize;

use crate::config::Env;
use crate::group::CampaignSpec;
use crate::recipes::{Exploration, Query, Scored, SolutionModel};
use crate::solution;
use crate::store::{CampaignRecord, StoreError};

/// The managed service's limit on results per request.
pub const MAX_NUM_RESULTS: usize = 500;
pub const DEFAULT_NUM_RESULTS: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("campaign {name:?} does not exist{hint}")]
    NotFound { name: String, hint: String },
}

/// How many results one answer has: 1 to [`MAX_NUM_RESULTS`], the managed
/// service's limit. The API, the CLI, batch jobs and pipeline validation
/// all check a count by making one of these, so the limit lives here alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumResults(usize);

#[derive(Debug, Clone, thiserror::Error)]
#[error("must be between 1 and {MAX_NUM_RESULTS}, got {0}")]
pub struct NumResultsError(pub i64);

impl NumResults {
    pub const DEFAULT: NumResults = NumResults(DEFAULT_NUM_RESULTS);

    pub fn new(n: i64) -> Result<NumResults, NumResultsError> {
        if (1..=MAX_NUM_RESULTS as i64).contains(&n) {
            Ok(NumResults(n as usize))
        } else {
            Err(NumResultsError(n))
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl std::str::FromStr for NumResults {
    type Err = String;
    fn from_str(s: &str) -> Result<NumResults, String> {
        let n: i64 = s
            .parse()
            .map_err(|_| format!("not a whole number: {s:?}"))?;
        NumResults::new(n).map_err(|e| e.to_string())
    }
}

/// A model ready to answer, with where it came from.
#[derive(Clone)]
pub struct Recommender {
    pub solution: String,
    pub version: i64,
    pub model: Arc<SolutionModel>,
    /// The campaign's exploration of new items (none outside campaigns).
    pub exploration: Exploration,
}

impl Recommender {
    pub async fn for_campaign(
        env: &Env,
        name: &str,
    ) -> anyhow::Result<(CampaignRecord, Recommender)> {
        let campaign = match env.store.get_campaign(name).await {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) => {
                let known: Vec<String> = env
                    .store
                    .list_campaigns()
                    .await?
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                let hint = if known.is_empty() {
                    "; no campaign is deployed yet (run a pipeline with a deploy step)".to_string()
                } else {
                    format!(" (campaigns: {})", known.join(", "))
                };
                return Err(CampaignError::NotFound {
                    name: name.to_string(),
                    hint,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        let mut rec =
            Self::for_solution(env, &campaign.solution, Some(campaign.solution_version)).await?;
        let spec: Option<CampaignSpec> = serde_json::from_value(campaign.config.clone()).ok();
        rec.exploration = exploration_for(spec.as_ref(), &rec.model);
        Ok((campaign, rec))
    }

    pub async fn for_solution(
        env: &Env,
        solution: &str,
        version: Option<i64>,
    ) -> anyhow::Result<Recommender> {
        let record = solution::version_record(env, solution, version).await?;
        let model = solution::load_model(env, solution, record.version).await?;
        Ok(Recommender {
            solution: solution.to_string(),
            version: record.version,
            model,
            exploration: Exploration::NONE,
        })
    }

    pub fn recommend(&self, query: &Query, num_results: NumResults) -> Vec<Scored> {
        self.model
            .recommend_exploring(query, num_results.get(), self.exploration)
    }
}

/// A campaign's exploration settings; the managed service explores by
/// default only with its User-Personalization recipe, and so does recflow.
pub fn exploration_for(spec: Option<&CampaignSpec>, model: &SolutionModel) -> Exploration {
    let default_weight = if model.recipe == crate::recipes::RecipeKind::UserPersonalization
        && model.has_item_metadata()
    {
        0.3
    } else {
        0.0
    };
    Exploration {
        weight: spec
            .and_then(|s| s.exploration_weight)
            .unwrap_or(default_weight),
        item_age_cutoff_days: spec.map_or(30.0, |s| s.exploration_item_age_cutoff),
    }
}

/// The managed service's GetRecommendations response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationsResponse {
    pub item_list: Vec<PredictedItem>,
    pub recommendation_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PredictedItem {
    pub item_id: String,
    pub score: f64,
}

impl RecommendationsResponse {
    pub fn new(items: Vec<Scored>) -> Self {
        RecommendationsResponse {
            item_list: items
                .into_iter()
                .map(|s| PredictedItem {
                    item_id: s.item_id,
                    score: round_score(s.score),
                })
                .collect(),
            recommendation_id: format!("RID-{}", uuid::Uuid::new_v4()),
        }
    }
}

/// Scores are shown with 6 decimals, as f32 carries no more.
pub fn round_score(s: f32) -> f64 {
    (s as f64 * 1e6).round() / 1e6
}
