//! What the server answers from: each campaign's loaded model with its
//! group's filters, filter data and item metadata ([`LiveCampaign`], built
//! off the request path and swapped in whole, in [`crate::ops::serving`]),
//! and the events posted since startup per user ([`Realtime`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::config::Env;
use crate::store::EventRecord;

pub use crate::ops::serving::{LiveCampaign, RECENT_EVENTS_PER_USER, fingerprint};

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
