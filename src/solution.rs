//! Solution versions: training a solution's recipe on the latest dataset
//! versions, measuring offline metrics, and publishing the model artifact
//! with its manifest under `<warehouse>/models/<solution>/v<N>/` (artifact
//! first, manifest last). Loading refuses a corrupt or foreign artifact.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Env;
use crate::dataset::{self, DataFile};
use crate::eval::{self, Metrics};
use crate::group::{SolutionRecipe, SolutionSpec};
use crate::memory::peak_rss_bytes;
use crate::publish::publish_version;
use crate::recipes::features::ItemRecord;
use crate::recipes::{EventSettings, Interactions, RecipeSpec, SolutionModel, TrainingData};
use crate::schema::DatasetType;
use crate::storage::Location;
use crate::store::{EventRecord, VersionKind, VersionRecord};
use crate::tuning::{self, TuningReport, Validation};

pub const MODEL_FILE: &str = "model.rfm";
/// Segment metrics score at most this many held-out items (a seeded sample).
const SEGMENT_EVAL_ITEMS: usize = 300;

/// The managed service's minimum to train.
pub const MIN_INTERACTIONS: usize = 1_000;
pub const MIN_USERS_WITH_TWO: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum SolutionError {
    #[error(
        "not enough data to train {solution}: {problems}. The minimum is {MIN_INTERACTIONS} interactions \
         and {MIN_USERS_WITH_TWO} users with at least 2 interactions each"
    )]
    TooLittleData { solution: String, problems: String },
    #[error(
        "training_mode: update needs an earlier version of {solution}; run a full training first"
    )]
    UpdateWithoutBase { solution: String },
    #[error("solution {solution} has no active version; run a train step first")]
    NoVersion { solution: String },
    #[error("solution version {solution} v{version} is {status}, not active")]
    NotActive {
        solution: String,
        version: i64,
        status: String,
    },
    #[error("solution version {solution} v{version} has an unreadable manifest: {reason}")]
    Manifest {
        solution: String,
        version: i64,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Counts of the data a version was trained on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataCounts {
    pub interactions: u64,
    pub users: u64,
    pub items: u64,
    /// Interactions that came from events posted to the server (`PutEvents`),
    /// after duplicates of imported rows were dropped.
    #[serde(default)]
    pub tracked_events: u64,
}

/// What a solution version is: recipe, data, metrics and its artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SolutionManifest {
    pub format_version: u32,
    pub solution: String,
    pub version: i64,
    pub recipe: String,
    pub settings: serde_json::Value,
    pub dataset_group: String,
    /// Dataset versions used, by dataset type.
    pub dataset_versions: BTreeMap<String, i64>,
    pub metrics: Metrics,
    /// The hyperparameter search or automatic choice that decided `recipe`
    /// and `settings`, with every trial's validation metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<TuningReport>,
    /// `full`, or `update` (warm-started from `updated_from`).
    #[serde(default)]
    pub training_mode: TrainingMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_from: Option<i64>,
    /// An update is not re-evaluated: its metrics are those of this version,
    /// the last full training it descends from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_from_version: Option<i64>,
    /// Test users the metrics were measured on.
    pub test_users: u64,
    pub counts: DataCounts,
    pub training_seconds: f64,
    /// Peak resident memory of the process when training ended.
    pub peak_rss_bytes: Option<u64>,
    pub artifact: DataFile,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<i64>,
    pub step_id: Option<String>,
}

pub fn models_location(warehouse: &Location, solution: &str) -> Location {
    warehouse.child(&format!("models/{solution}"))
}

/// Refuses data below the managed service's minimum, saying what is missing.
pub fn check_minimum(solution: &str, data: &Interactions) -> Result<(), SolutionError> {
    let mut per_user = vec![0u32; data.users.len()];
    for &u in &data.user {
        per_user[u as usize] += 1;
    }
    let with_two = per_user.iter().filter(|&&n| n >= 2).count();
    let mut problems = Vec::new();
    if data.len() < MIN_INTERACTIONS {
        problems.push(format!(
            "{} interactions ({} more needed)",
            data.len(),
            MIN_INTERACTIONS - data.len()
        ));
    }
    if with_two < MIN_USERS_WITH_TWO {
        problems.push(format!(
            "{with_two} users with at least 2 interactions ({} more needed)",
            MIN_USERS_WITH_TWO - with_two
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SolutionError::TooLittleData {
            solution: solution.to_string(),
            problems: problems.join(" and "),
        })
    }
}

/// `full` trains from scratch; `update` folds new interactions, users and
/// items into the latest version (iALS warm start; other recipes retrain).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingMode {
    #[default]
    #[serde(alias = "FULL")]
    Full,
    #[serde(alias = "UPDATE")]
    Update,
}

/// The recipe and settings a version was trained with.
fn recipe_of(m: &SolutionManifest) -> anyhow::Result<RecipeSpec> {
    let mut settings = m.settings.clone();
    if let Some(map) = settings.as_object_mut() {
        for key in EventSettings::KEYS {
            map.remove(*key);
        }
    }
    let yaml: serde_yaml::Value = serde_json::from_value(settings)?;
    let mapping = match yaml {
        serde_yaml::Value::Mapping(map) => map,
        _ => serde_yaml::Mapping::new(),
    };
    RecipeSpec::from_value(&m.recipe, mapping, "settings")
        .map_err(|p| anyhow::anyhow!("{} v{}: {p}", m.solution, m.version))
}

/// Appends tracked events with a user and an item to an interactions
/// frame as rows of its columns (others null), dropping rows that repeat
/// an imported one exactly; returns the frame and how many events were added.
/// This is how events reach the next training: every train step reads the
/// latest interactions version plus every event tracked for its group.
fn with_events(
    frame: polars::prelude::DataFrame,
    events: &[EventRecord],
) -> anyhow::Result<(polars::prelude::DataFrame, u64)> {
    use polars::prelude::*;
    let usable: Vec<&EventRecord> = events
        .iter()
        .filter(|e| e.user_id.is_some() && e.item_id.is_some())
        .collect();
    if usable.is_empty() {
        return Ok((frame, 0));
    }
    let before = frame.height();
    let mut columns = Vec::new();
    for c in frame.columns() {
        let name = c.name().clone();
        let series: Series = match name.as_str() {
            crate::schema::USER_ID => Series::new(
                name,
                usable.iter().map(|e| e.user_id.clone()).collect::<Vec<_>>(),
            ),
            crate::schema::ITEM_ID => Series::new(
                name,
                usable.iter().map(|e| e.item_id.clone()).collect::<Vec<_>>(),
            ),
            crate::schema::TIMESTAMP => {
                Series::new(name, usable.iter().map(|e| e.sent_at).collect::<Vec<_>>())
            }
            crate::schema::EVENT_TYPE => Series::new(
                name,
                usable
                    .iter()
                    .map(|e| e.event_type.clone())
                    .collect::<Vec<_>>(),
            ),
            crate::schema::EVENT_VALUE => Series::new(
                name,
                usable.iter().map(|e| e.event_value).collect::<Vec<_>>(),
            ),
            _ => Series::full_null(name, usable.len(), c.dtype()),
        };
        columns.push(series.cast(c.dtype())?.into_column());
    }
    let extra = DataFrame::new(usable.len(), columns)?;
    let merged = frame
        .vstack(&extra)?
        .unique_stable(None, UniqueKeepStrategy::First, None)?;
    // Exact duplicates inside the import were dropped on import already.
    let added = (merged.height() - before.min(merged.height())) as u64;
    Ok((merged, added))
}

/// One training of a solution.
pub struct TrainJob<'a> {
    pub training_mode: TrainingMode,
    pub solution: &'a str,
    pub spec: &'a SolutionSpec,
    pub dataset_group: &'a str,
    pub run_id: Option<i64>,
    pub step_id: Option<&'a str>,
}

/// Trains and publishes a new solution version.
pub async fn train(env: &Env, job: TrainJob<'_>) -> anyhow::Result<SolutionManifest> {
    let loaded = dataset::load(env, job.dataset_group, DatasetType::Interactions, None).await?;
    let dataset_version = loaded.record.version;
    let events = crate::store::all_events(env.store.as_ref(), job.dataset_group, 0).await?;
    let frame = loaded.frame;
    let (mut data, tracked) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let (frame, tracked) = with_events(frame, &events)?;
        Ok((dataset::to_interactions(&frame)?, tracked))
    })
    .await??;
    check_minimum(job.solution, &data)?;
    let mut dataset_versions =
        BTreeMap::from([(DatasetType::Interactions.to_string(), dataset_version)]);
    // Item metadata, when an items dataset exists: its items join the
    // catalog (cold items included) and give exploration its vectors.
    let records = match dataset::load_with_puts(env, job.dataset_group, DatasetType::Items).await {
        Ok(items) => {
            dataset_versions.insert(DatasetType::Items.to_string(), items.record.version);
            let schema = items.manifest.schema.clone();
            let frame = items.frame;
            let by_id = tokio::task::spawn_blocking(move || dataset::item_records(&frame, &schema))
                .await??;
            for (id, _) in &by_id {
                data.items.intern(id);
            }
            let mut records: Vec<Option<ItemRecord>> = vec![None; data.items.len()];
            for (id, r) in by_id {
                if let Some(i) = data.items.get(&id) {
                    records[i as usize] = Some(r);
                }
            }
            Some(records)
        }
        Err(dataset::DatasetError::NoVersion { .. }) => None,
        Err(e) => return Err(e.into()),
    };

    // An update starts from the latest version: its model, its decided
    // recipe settings and (honestly labelled) the metrics of the last full
    // training, since an update is not re-evaluated.
    let previous = match job.training_mode {
        TrainingMode::Full => None,
        TrainingMode::Update => {
            let record = env
                .store
                .latest_active_version(VersionKind::Solution, job.solution)
                .await?
                .ok_or_else(|| SolutionError::UpdateWithoutBase {
                    solution: job.solution.to_string(),
                })?;
            let manifest = manifest_of(&record)?;
            let model = load_model(env, job.solution, record.version).await?;
            Some((manifest, model))
        }
    };

    let choice = job.spec.recipe.clone();
    let events = job.spec.events.clone();
    let started = Instant::now();
    let updating = previous
        .as_ref()
        .map(|(m, _)| (m.version, m.metrics_from_version.unwrap_or(m.version)));
    let (model_bytes, recipe, metrics, test_users, counts, tuning) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let all;
            let (recipe, model, metrics, test_users, tuning) = match &previous {
                None => {
                    let (recipe, tuning) = decide_recipe(&choice, &events, &data)?;
                    let (metrics, test_users) = evaluate_recipe(&recipe, &events, &data)?;
                    all = TrainingData::new(&data, &events)?;
                    let model = recipe.recipe().train(&all)?;
                    (recipe, model, metrics, test_users, tuning)
                }
                Some((m, old)) => {
                    let recipe = recipe_of(m)?;
                    all = TrainingData::new(&data, &events)?;
                    let model = recipe.recipe().update(&all, old)?;
                    (recipe, model, m.metrics.clone(), m.test_users, None)
                }
            };
            let mut model = SolutionModel::new(recipe.kind(), &all, model);
            if let Some(records) = &records {
                model = model.with_features(records);
            }
            let counts = DataCounts {
                interactions: data.len() as u64,
                users: data.users.len() as u64,
                items: data.items.len() as u64,
                tracked_events: tracked,
            };
            Ok((
                model.to_bytes(),
                recipe,
                metrics,
                test_users,
                counts,
                tuning,
            ))
        })
        .await??;
    let training_seconds = started.elapsed().as_secs_f64();

    let prefix = models_location(&env.warehouse, job.solution);
    publish_version(
        env.store.as_ref(),
        VersionKind::Solution,
        job.solution,
        (job.run_id, job.step_id),
        &prefix,
        |version, folder| async move {
            let artifact = DataFile::of(MODEL_FILE, &model_bytes, counts.items);
            folder.child(MODEL_FILE).put(model_bytes).await?;
            let manifest = SolutionManifest {
                format_version: 1,
                solution: job.solution.to_string(),
                version,
                recipe: recipe.name().to_string(),
                settings: settings_json(&recipe, &job.spec.events),
                tuning,
                training_mode: job.training_mode,
                updated_from: updating.map(|u| u.0),
                metrics_from_version: updating.map(|u| u.1),
                dataset_group: job.dataset_group.to_string(),
                dataset_versions,
                metrics,
                test_users,
                counts,
                training_seconds,
                peak_rss_bytes: peak_rss_bytes(),
                artifact,
                created_at: Utc::now(),
                run_id: job.run_id,
                step_id: job.step_id.map(str::to_string),
            };
            anyhow::Ok((manifest, ()))
        },
    )
    .await
    .map(|(manifest, ())| manifest)
}

/// Decides the recipe and settings to train: as written, or by searching
/// `hpo` / choosing among `auto` candidates on a validation split carved from
/// the metrics split's training rows.
pub fn decide_recipe(
    choice: &SolutionRecipe,
    events: &EventSettings,
    data: &Interactions,
) -> anyhow::Result<(RecipeSpec, Option<TuningReport>)> {
    let (recipe, hpo) = match choice {
        SolutionRecipe::One { recipe, hpo: None } => return Ok((recipe.clone(), None)),
        SolutionRecipe::One {
            recipe,
            hpo: Some(hpo),
        } => (Some((recipe, hpo)), None),
        SolutionRecipe::Auto {
            candidates,
            objective,
        } => (None, Some((candidates, objective))),
    };
    let split = eval::split(data, eval::SPLIT_SEED);
    let train_part = data.subset(&split.train_rows);
    let validation = Validation::carve(&train_part);
    let (spec, report) = match (recipe, hpo) {
        (Some((recipe, hpo)), _) => tuning::search(recipe, hpo, events, &validation)?,
        (None, Some((candidates, objective))) => {
            tuning::choose(candidates, objective, events, &validation)?
        }
        (None, None) => unreachable!("matched above"),
    };
    Ok((spec, Some(report)))
}

/// Offline metrics of a recipe by the managed service's protocol: the model
/// is trained without the test users' held-out interactions. Returns the
/// metrics and the number of test users.
pub fn evaluate_recipe(
    recipe: &RecipeSpec,
    events: &EventSettings,
    data: &Interactions,
) -> anyhow::Result<(Metrics, u64)> {
    let split = eval::split(data, eval::SPLIT_SEED);
    let train_part = data.subset(&split.train_rows);
    let td = TrainingData::new(&train_part, events)?;
    let model = SolutionModel::new(recipe.kind(), &td, recipe.recipe().train(&td)?);
    let mut metrics = eval::evaluate(&split.test_users, data.items.len(), |tu| {
        model.recommend_indices(tu.user, &tu.given, 25)
    });
    if recipe.is_segment() {
        let segment = eval::segment_metrics(
            &split.test_users,
            data.users.len(),
            SEGMENT_EVAL_ITEMS,
            |item| model.user_scores(&[item], &[item]),
        );
        metrics.extend(segment);
    }
    Ok((metrics, split.test_users.len() as u64))
}

fn settings_json(recipe: &RecipeSpec, events: &EventSettings) -> serde_json::Value {
    let mut v = recipe.settings();
    if let (Some(map), Ok(serde_json::Value::Object(e))) =
        (v.as_object_mut(), serde_json::to_value(events))
    {
        map.extend(e);
    }
    v
}

/// A solution version's record, the latest active one when `version` is `None`.
pub async fn version_record(
    env: &Env,
    solution: &str,
    version: Option<i64>,
) -> Result<VersionRecord, SolutionError> {
    let record = match version {
        Some(v) => {
            env.store
                .get_version(VersionKind::Solution, solution, v)
                .await?
        }
        None => env
            .store
            .latest_active_version(VersionKind::Solution, solution)
            .await?
            .ok_or_else(|| SolutionError::NoVersion {
                solution: solution.to_string(),
            })?,
    };
    if record.status != crate::store::VersionStatus::Active {
        return Err(SolutionError::NotActive {
            solution: solution.to_string(),
            version: record.version,
            status: record.status.to_string(),
        });
    }
    Ok(record)
}

/// The manifest of an active solution version.
pub fn manifest_of(record: &VersionRecord) -> Result<SolutionManifest, SolutionError> {
    let bad = |reason: String| SolutionError::Manifest {
        solution: record.owner.clone(),
        version: record.version,
        reason,
    };
    let m = record
        .manifest
        .clone()
        .ok_or_else(|| bad("none was written".into()))?;
    serde_json::from_value(m).map_err(|e| bad(e.to_string()))
}

/// Loads and verifies a solution version's model.
pub async fn load_model(
    env: &Env,
    solution: &str,
    version: i64,
) -> anyhow::Result<Arc<SolutionModel>> {
    let loc = models_location(&env.warehouse, solution).child(&format!("v{version}/{MODEL_FILE}"));
    let bytes = loc.get().await?;
    let url = loc.url().to_string();
    let model =
        tokio::task::spawn_blocking(move || SolutionModel::from_bytes(&url, bytes)).await??;
    Ok(Arc::new(model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuning::Candidate;
    use rand::SeedableRng;

    #[test]
    fn minimum_says_exactly_what_is_missing() {
        let rows: Vec<(String, String)> = (0..30)
            .map(|i| (format!("u{i}"), format!("i{i}")))
            .collect();
        let data = Interactions::from_rows(
            rows.iter()
                .map(|(u, i)| (u.as_str(), i.as_str(), 1, None, None)),
        );
        let err = check_minimum("s", &data).unwrap_err().to_string();
        assert!(err.contains("30 interactions (970 more needed) and 0 users with at least 2 interactions (25 more needed)"), "{err}");
    }

    /// Baskets (many rows of a user share a timestamp), written sorted by
    /// user, time and item as exports often are.
    fn basket_rows() -> Vec<(String, String, i64)> {
        let mut rows = Vec::new();
        for u in 0..200u32 {
            for basket in 0..4 {
                let t = 1_000_000 + i64::from(basket) * 86_400;
                for k in 0..5u32 {
                    let item = (u * 7 + basket as u32 * 3 + k * k) % 40;
                    rows.push((format!("u{u:02}"), format!("i{item:02}"), t));
                }
            }
        }
        rows.sort();
        rows
    }

    /// Through the loader every training reads datasets with.
    fn interactions(rows: &[(String, String, i64)]) -> Interactions {
        use polars::prelude::*;
        let df = df!(
            "USER_ID" => rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            "ITEM_ID" => rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
            "TIMESTAMP" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )
        .unwrap();
        dataset::to_interactions(&df).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 8, failure_persistence: None, ..Default::default() })]
        /// Shuffled rows give the same interactions, the same metrics split,
        /// the same metrics and the same automatic choice.
        #[test]
        fn shuffled_rows_give_the_same_choice_and_metrics(seed in proptest::num::u64::ANY) {
            use rand::seq::SliceRandom;
            let sorted = basket_rows();
            let mut shuffled = sorted.clone();
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let (a, b) = (interactions(&sorted), interactions(&shuffled));
            proptest::prop_assert_eq!((&a.user, &a.item, &a.timestamp), (&b.user, &b.item, &b.timestamp));
            proptest::prop_assert_eq!(a.items.ids(), b.items.ids());

            let events = EventSettings::default();
            let ease = RecipeSpec::UserPersonalization(Default::default());
            proptest::prop_assert_eq!(
                evaluate_recipe(&ease, &events, &a).unwrap(),
                evaluate_recipe(&ease, &events, &b).unwrap()
            );
            let auto = SolutionRecipe::Auto {
                candidates: vec![
                    Candidate { recipe: RecipeSpec::PopularityCount(Default::default()), hpo: None },
                    Candidate { recipe: RecipeSpec::NextItem(Default::default()), hpo: None },
                    Candidate { recipe: ease.clone(), hpo: None },
                ],
                objective: crate::tuning::default_objective(),
            };
            let (spec_a, report_a) = decide_recipe(&auto, &events, &a).unwrap();
            let (spec_b, report_b) = decide_recipe(&auto, &events, &b).unwrap();
            proptest::prop_assert_eq!(spec_a, spec_b);
            let scores = |r: Option<crate::tuning::TuningReport>| {
                r.unwrap().trials.into_iter().map(|t| t.metrics).collect::<Vec<_>>()
            };
            proptest::prop_assert_eq!(scores(report_a), scores(report_b));
        }
    }

    #[test]
    fn a_basket_at_the_cut_is_held_out_by_a_draw_not_by_item_order() {
        // In a sorted file, row order holds out each basket's highest item
        // ids; the draw holds out a spread of them.
        let data = interactions(&basket_rows());
        let split = eval::split(&data, eval::SPLIT_SEED);
        let held: Vec<u32> = split
            .test_users
            .iter()
            .flat_map(|u| u.relevant.iter().copied())
            .collect();
        let by_user = data.rows_by_user();
        let mut lowest_held = 0;
        for u in &split.test_users {
            let rows = &by_user[u.user as usize];
            let last_t = data.timestamp[*rows.last().unwrap()];
            let mut basket: Vec<u32> = rows
                .iter()
                .filter(|&&r| data.timestamp[r] == last_t)
                .map(|&r| data.item[r])
                .collect();
            basket.sort_unstable();
            lowest_held += usize::from(u.relevant.contains(&basket[0]));
        }
        assert!(!held.is_empty());
        assert!(
            lowest_held > 0,
            "only the highest item ids of baskets were held out"
        );
    }
}
