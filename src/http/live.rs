//! What the server answers from: each campaign's loaded model with its
//! group's filters, filter data and item metadata ([`LiveCampaign`], built
//! off the request path and swapped in whole), and the events posted since
//! startup per user ([`Realtime`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use polars::prelude::DataType;

use crate::campaign::Recommender;
use crate::config::Env;
use crate::filter::catalog::FilterData;
use crate::filter::{self, Filter};
use crate::group::CampaignSpec;
use crate::schema::{self, DatasetType};
use crate::store::{CampaignRecord, EventRecord, FilterRecord};

/// Real-time events kept per user (the newest).
pub const RECENT_EVENTS_PER_USER: usize = 100;

pub struct LiveCampaign {
    pub record: CampaignRecord,
    pub rec: Recommender,
    /// The dataset group's filters that parsed and checked against its schemas.
    pub filters: BTreeMap<String, Arc<Filter>>,
    /// The group's filters that did not, with the reason: a request naming
    /// one gets the reason, and the server logs it at each load.
    pub broken_filters: BTreeMap<String, String>,
    pub filter_data: FilterData,
    /// Items dataset columns by name, one value per model item.
    pub item_metadata: BTreeMap<String, Vec<Option<String>>>,
    /// Lower-cased event types whose real-time events exclude the item from
    /// the user's next answers; `None`: every type.
    pub exclude_event_types: Option<Vec<String>>,
    /// What the campaign was built from, to notice a change.
    pub fingerprint: u64,
}

/// A hash of what a live campaign depends on besides its solution version:
/// its settings, the group's filters and the items and users posted since.
pub fn fingerprint(
    record: &CampaignRecord,
    filters: &[FilterRecord],
    posted: &[(String, String)],
) -> u64 {
    let mut h = DefaultHasher::new();
    posted.hash(&mut h);
    record.solution.hash(&mut h);
    record.solution_version.hash(&mut h);
    record.config.to_string().hash(&mut h);
    for f in filters {
        (&f.name, &f.expression).hash(&mut h);
    }
    h.finish()
}

impl LiveCampaign {
    /// Loads a campaign's model, filters and metadata (I/O on the runtime,
    /// indexing on a blocking thread).
    pub async fn load(
        env: &Env,
        record: CampaignRecord,
        stored_filters: &[FilterRecord],
        posted: &[(String, String)],
    ) -> anyhow::Result<LiveCampaign> {
        let (record, rec) = Recommender::for_campaign(env, &record.name).await?;
        let spec: Option<CampaignSpec> = serde_json::from_value(record.config.clone()).ok();
        // Filters were checked when their pipeline was registered; they are
        // checked again here against the schemas of the datasets now loaded,
        // which may have changed since.
        let mut parsed: Vec<(String, Filter)> = Vec::new();
        let mut broken_filters = BTreeMap::new();
        for f in stored_filters {
            match Filter::parse(&f.expression) {
                Ok(filter) => parsed.push((f.name.clone(), filter)),
                Err(e) => {
                    broken_filters.insert(f.name.clone(), e.to_string());
                }
            }
        }
        let need_interactions = parsed.iter().any(|(_, f)| f.reads_interactions());
        let frames = filter::load_frames(env, &record.dataset_group, need_interactions).await?;
        let fp = fingerprint(&record, stored_filters, posted);
        let mut rec = rec;
        tokio::task::spawn_blocking(move || -> anyhow::Result<LiveCampaign> {
            // Items the model was not trained with (posted, or imported
            // since) join its catalog as cold items, recommendable through
            // exploration before the next training.
            if let Some((df, schema)) = frames.get(&DatasetType::Items) {
                let new: Vec<_> = crate::dataset::item_records(df, schema)?
                    .into_iter()
                    .filter(|(id, _)| rec.model.items.get(id).is_none())
                    .collect();
                if !new.is_empty() {
                    match Arc::try_unwrap(rec.model) {
                        Ok(m) => rec.model = Arc::new(m.with_new_items(new)),
                        Err(shared) => rec.model = shared,
                    }
                }
            }
            let model = rec.model.clone();
            let schemas = frames
                .iter()
                .map(|(t, (_, s))| (*t, s.clone()))
                .collect::<BTreeMap<_, _>>();
            let mut filters = BTreeMap::new();
            let mut broken_filters = broken_filters;
            for (name, mut f) in parsed {
                let problems = f.check(&schemas);
                match problems.first() {
                    None => {
                        filters.insert(name, Arc::new(f));
                    }
                    Some(e) => {
                        broken_filters.insert(name, e.to_string());
                    }
                }
            }
            for (name, reason) in &broken_filters {
                tracing::error!(campaign = %record.name, filter = %name, error = %reason, "Filter cannot be applied; requests naming it fail with this reason.");
            }
            let filter_data = filter::build_data(&frames, &model.items, &model.users)?;
            let mut item_metadata = BTreeMap::new();
            if let Some((df, schema)) = frames.get(&DatasetType::Items) {
                let ids = df.column(schema::ITEM_ID)?.str()?;
                let rows: Vec<Option<u32>> = ids
                    .iter()
                    .map(|i| i.and_then(|i| model.items.get(i)))
                    .collect();
                for f in &schema.fields {
                    if f.name == schema::ITEM_ID {
                        continue;
                    }
                    let Ok(col) = df.column(&f.name) else {
                        continue;
                    };
                    let col = col.cast(&DataType::String)?;
                    let mut values = vec![None; model.items.len()];
                    for (row, v) in col.str()?.iter().enumerate() {
                        if let (Some(i), Some(v)) = (rows[row], v) {
                            values[i as usize] = Some(v.to_string());
                        }
                    }
                    item_metadata.insert(f.name.clone(), values);
                }
            }
            Ok(LiveCampaign {
                record,
                rec,
                filters,
                broken_filters,
                filter_data,
                item_metadata,
                exclude_event_types: spec
                    .and_then(|s| s.exclude_event_types)
                    .map(|v| v.into_iter().map(|t| t.to_lowercase()).collect()),
                fingerprint: fp,
            })
        })
        .await?
    }

    /// Whether a real-time event of this type removes its item from answers.
    pub fn excludes(&self, event_type: &str) -> bool {
        self.exclude_event_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t.eq_ignore_ascii_case(event_type)))
    }
}

/// A user's recent events: (event type, item id), oldest first.
type RecentEvents = VecDeque<(String, String)>;

/// Events posted to the server, by dataset group and user, newest last.
#[derive(Default)]
pub struct Realtime {
    /// By (dataset group, user id).
    users: Mutex<HashMap<(String, String), RecentEvents>>,
    /// Events of each group loaded from the store so far (the highest id).
    loaded: Mutex<HashMap<String, i64>>,
}

impl Realtime {
    pub fn record(&self, events: &[EventRecord]) {
        let mut users = self.users.lock().expect("realtime events");
        for e in events {
            let (Some(user), Some(item)) = (&e.user_id, &e.item_id) else {
                continue;
            };
            let q = users
                .entry((e.dataset_group.clone(), user.clone()))
                .or_default();
            q.push_back((e.event_type.clone(), item.clone()));
            if q.len() > RECENT_EVENTS_PER_USER {
                q.pop_front();
            }
        }
    }

    /// A user's recent (event type, item id) pairs, oldest first.
    pub fn recent(&self, group: &str, user: &str) -> Vec<(String, String)> {
        self.users
            .lock()
            .expect("realtime events")
            .get(&(group.to_string(), user.to_string()))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Reads a group's stored events (once per group): they survive restarts.
    pub async fn load_group(&self, env: &Env, group: &str) -> anyhow::Result<()> {
        if self.loaded.lock().expect("realtime").contains_key(group) {
            return Ok(());
        }
        let events = crate::store::all_events(env.store.as_ref(), group, 0).await?;
        let after = events.last().map_or(0, |e| e.id);
        self.record(&events);
        self.loaded
            .lock()
            .expect("realtime")
            .insert(group.to_string(), after);
        Ok(())
    }
}
