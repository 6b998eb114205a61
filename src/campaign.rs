//! Campaigns: a named pointer to a solution version. Moving the pointer is
//! [`deploy`] (a pipeline's, behind the campaign's metric floors and an
//! optional guard against the live version), [`update`] or [`rollback`].
//! Resolving a campaign loads the model it serves; the CLI's `recommend`,
//! batch jobs and the server all answer through [`Recommender`], so they
//! give the same answers.

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
    #[error("campaign {name} has no previous version to roll back to")]
    NoPrevious { name: String },
    #[error(
        "{solution} v{version} is below the metric floors of campaign {campaign} ({below}); the campaign {stays}"
    )]
    BelowFloor {
        campaign: String,
        solution: String,
        version: i64,
        below: String,
        stays: String,
    },
    #[error(
        "guard: {solution} v{version} has {metric} = {new:.4}, below {min_ratio} × {live:.4} of the live {solution} v{live_version}; campaign {campaign} stays on v{live_version}"
    )]
    Guard {
        campaign: String,
        solution: String,
        version: i64,
        metric: String,
        new: f64,
        live: f64,
        min_ratio: f64,
        live_version: i64,
    },
    #[error("cannot load {solution} v{version}: {reason}")]
    Load {
        solution: String,
        version: i64,
        reason: String,
    },
    #[error(transparent)]
    Solution(#[from] solution::SolutionError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CampaignError {
    fn from(e: StoreError) -> Self {
        CampaignError::Store(e)
    }
}

/// A deploy guard: the new version against the live one. The pointer moves
/// only if the new version's `metric` is at least `min_ratio` times the
/// live one's.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// An offline metric key, e.g. `precision_at_10`.
    pub metric: String,
    /// The least new/live ratio accepted (default 1: no worse).
    #[serde(default = "one")]
    pub min_ratio: f64,
}

fn one() -> f64 {
    1.0
}

/// A deployment a pipeline asks for.
pub struct Deployment<'a> {
    pub campaign: &'a str,
    pub spec: &'a CampaignSpec,
    pub dataset_group: &'a str,
    /// The solution version; the latest active one when `None`.
    pub version: Option<i64>,
    pub guard: Option<&'a GuardSpec>,
    pub run_id: Option<i64>,
}

/// What a deployment did.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub solution: String,
    pub version: i64,
    /// The version served before (`None`: the campaign is new).
    pub previous: Option<i64>,
    /// The guard's comparison, when it ran: (metric, new, live, min ratio).
    pub guard: Option<(String, f64, f64, f64)>,
}

/// Points a campaign at a solution version if the version meets the
/// campaign's metric floors and the guard; otherwise the campaign stays
/// where it was and the error says why.
pub async fn deploy(env: &Env, d: Deployment<'_>) -> Result<Deployed, CampaignError> {
    let spec = d.spec;
    let record = solution::version_record(env, &spec.solution, d.version).await?;
    let manifest = solution::manifest_of(&record)?;
    let metric =
        |m: &solution::SolutionManifest, key: &str| m.metrics.get(key).copied().unwrap_or(0.0);

    let below: Vec<String> = spec
        .min_metrics
        .iter()
        .filter(|(key, floor)| metric(&manifest, key) < **floor)
        .map(|(key, floor)| format!("{key} = {:.4} < {floor}", metric(&manifest, key)))
        .collect();
    let current = match env.store.get_campaign(d.campaign).await {
        Ok(c) => Some(c),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if !below.is_empty() {
        return Err(CampaignError::BelowFloor {
            campaign: d.campaign.to_string(),
            solution: spec.solution.clone(),
            version: record.version,
            below: below.join(", "),
            stays: match &current {
                Some(c) => format!("stays on {} v{}", c.solution, c.solution_version),
                None => "is not created".to_string(),
            },
        });
    }

    let mut guard = None;
    if let (Some(g), Some(c)) = (d.guard, &current)
        && c.solution_version != record.version
    {
        let live = solution::version_record(env, &c.solution, Some(c.solution_version)).await?;
        let live_value = metric(&solution::manifest_of(&live)?, &g.metric);
        let new_value = metric(&manifest, &g.metric);
        if new_value < live_value * g.min_ratio {
            return Err(CampaignError::Guard {
                campaign: d.campaign.to_string(),
                solution: spec.solution.clone(),
                version: record.version,
                metric: g.metric.clone(),
                new: new_value,
                live: live_value,
                min_ratio: g.min_ratio,
                live_version: c.solution_version,
            });
        }
        guard = Some((g.metric.clone(), new_value, live_value, g.min_ratio));
    }

    let config = serde_json::to_value(spec).expect("campaign settings serialize");
    let previous = env
        .store
        .deploy_campaign(
            d.campaign,
            d.dataset_group,
            &spec.solution,
            record.version,
            &config,
            d.run_id,
        )
        .await?;
    Ok(Deployed {
        solution: spec.solution.clone(),
        version: record.version,
        previous,
        guard,
    })
}

/// A campaign after its pointer moved, and where it pointed before.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    pub campaign: CampaignRecord,
    pub from: i64,
}

/// Points a campaign at another active version of its solution (a running
/// server swaps it in).
pub async fn update(env: &Env, name: &str, version: i64) -> Result<Moved, CampaignError> {
    let c = get(env, name).await?;
    solution::version_record(env, &c.solution, Some(version)).await?;
    let campaign = env.store.set_campaign_version(name, version).await?;
    Ok(Moved {
        from: campaign.previous_version.unwrap_or(c.solution_version),
        campaign,
    })
}

/// Points a campaign back at the version it served before.
pub async fn rollback(env: &Env, name: &str) -> Result<Moved, CampaignError> {
    let c = get(env, name).await?;
    let previous = c
        .previous_version
        .ok_or_else(|| CampaignError::NoPrevious {
            name: name.to_string(),
        })?;
    update(env, name, previous).await
}

/// A campaign's record; an unknown name is an error that lists the known ones.
pub async fn get(env: &Env, name: &str) -> Result<CampaignRecord, CampaignError> {
    match env.store.get_campaign(name).await {
        Ok(c) => Ok(c),
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
            Err(CampaignError::NotFound {
                name: name.to_string(),
                hint,
            })
        }
        Err(e) => Err(e.into()),
    }
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
    ) -> Result<(CampaignRecord, Recommender), CampaignError> {
        let campaign = get(env, name).await?;
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
    ) -> Result<Recommender, CampaignError> {
        let record = solution::version_record(env, solution, version).await?;
        let model = solution::load_model(env, solution, record.version)
            .await
            .map_err(|e| CampaignError::Load {
                solution: solution.to_string(),
                version: record.version,
                reason: format!("{e:#}"),
            })?;
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

/// Scores are shown with 6 decimals, as f32 carries no more.
pub fn round_score(s: f32) -> f64 {
    (s as f64 * 1e6).round() / 1e6
}
