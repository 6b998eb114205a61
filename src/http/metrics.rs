//! `GET /metrics` in the Prometheus text format: requests and latency per
//! operation and campaign, the solution version each campaign serves, model
//! swaps, and events ingested per dataset group.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    live_version: Family<Labels, Gauge>,
    swaps: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
    shed: Family<Labels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~1.6 s.
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("recflow");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let live_version = Family::<Labels, Gauge>::default();
        let swaps = Family::<Labels, Counter>::default();
        let events = Family::<Labels, Counter>::default();
        let shed = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "API requests by operation, campaign and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer, by operation and campaign",
            latency.clone(),
        );
        registry.register(
            "campaign_solution_version",
            "The solution version each campaign serves",
            live_version.clone(),
        );
        registry.register(
            "model_swaps",
            "Models swapped in while serving",
            swaps.clone(),
        );
        registry.register(
            "events_ingested",
            "Events accepted by PutEvents, by dataset group",
            events.clone(),
        );
        registry.register(
            "requests_shed",
            "Requests refused with ThrottlingException: no scoring thread was free within the queue deadline",
            shed.clone(),
        );
        Metrics {
            registry,
            shed,
            requests,
            latency,
            live_version,
            swaps,
            events,
        }
    }
}

impl Metrics {
    pub fn request(&self, operation: &'static str, campaign: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("operation", operation.to_string()),
                ("campaign", campaign.to_string()),
                ("code", status.to_string()),
            ])
            .inc();
        if !campaign.is_empty() {
            self.latency
                .get_or_create(&vec![
                    ("operation", operation.to_string()),
                    ("campaign", campaign.to_string()),
                ])
                .observe(seconds);
        }
    }

    pub fn shed(&self, operation: &'static str, campaign: &str) {
        self.shed
            .get_or_create(&vec![
                ("operation", operation.to_string()),
                ("campaign", campaign.to_string()),
            ])
            .inc();
    }

    pub fn swapped(&self, campaign: &str, version: i64) {
        let l = vec![("campaign", campaign.to_string())];
        self.live_version.get_or_create(&l).set(version);
        self.swaps.get_or_create(&l).inc();
    }

    pub fn events(&self, dataset_group: &str, n: u64) {
        self.events
            .get_or_create(&vec![("dataset_group", dataset_group.to_string())])
            .inc_by(n);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Minutes of history the live statistics keep.
pub const LIVE_MINUTES: usize = 60;
/// Latency bins: bin `i` holds latencies up to `LIVE_BIN_START_MS × LIVE_BIN_FACTOR^i`.
const LIVE_BIN_START_MS: f64 = 0.05;
const LIVE_BIN_FACTOR: f64 = 1.25;
const LIVE_BINS: usize = 64;

/// Requests, errors and a latency histogram of one campaign in one minute.
#[derive(Clone)]
struct Minute {
    /// Minutes since the UNIX epoch.
    at: i64,
    requests: u64,
    errors: u64,
    bins: [u32; LIVE_BINS],
}

/// What the console charts: per campaign, the last hour minute by minute.
/// Kept in memory by the process that serves (a restart starts it over);
/// `/metrics` has the same counts for Prometheus to keep.
#[derive(Default)]
pub struct LiveStats {
    by_campaign:
        std::sync::Mutex<std::collections::HashMap<String, std::collections::VecDeque<Minute>>>,
}

/// One minute of one campaign, as the API gives it.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct MinuteStats {
    pub minute: chrono::DateTime<chrono::Utc>,
    pub requests: u64,
    pub errors: u64,
    /// Median and 99th percentile latency in milliseconds (`None` without requests).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

fn live_bin(ms: f64) -> usize {
    if ms <= LIVE_BIN_START_MS {
        return 0;
    }
    let i = ((ms / LIVE_BIN_START_MS).ln() / LIVE_BIN_FACTOR.ln()).ceil() as usize;
    i.min(LIVE_BINS - 1)
}

/// The upper edge of bin `i`, in milliseconds.
fn live_bin_edge(i: usize) -> f64 {
    LIVE_BIN_START_MS * LIVE_BIN_FACTOR.powi(i as i32)
}

impl LiveStats {
    /// Records one answered request (5xx and 4xx count as errors).
    pub fn record(
        &self,
        campaign: &str,
        status: u16,
        seconds: f64,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        if campaign.is_empty() {
            return;
        }
        let at = now.timestamp().div_euclid(60);
        let mut map = self.by_campaign.lock().expect("live stats");
        let minutes = map.entry(campaign.to_string()).or_default();
        if minutes.back().is_none_or(|m| m.at != at) {
            minutes.push_back(Minute {
                at,
                requests: 0,
                errors: 0,
                bins: [0; LIVE_BINS],
            });
        }
        while minutes
            .front()
            .is_some_and(|m| m.at <= at - LIVE_MINUTES as i64)
        {
            minutes.pop_front();
        }
        let m = minutes.back_mut().expect("pushed");
        m.requests += 1;
        if status >= 400 {
            m.errors += 1;
        }
        m.bins[live_bin(seconds * 1000.0)] += 1;
    }

    /// Every campaign's minutes within the last hour, oldest first.
    pub fn snapshot_at(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> std::collections::BTreeMap<String, Vec<MinuteStats>> {
        let oldest = now.timestamp().div_euclid(60) - LIVE_MINUTES as i64;
        let map = self.by_campaign.lock().expect("live stats");
        map.iter()
            .map(|(campaign, minutes)| {
                let stats = minutes
                    .iter()
                    .filter(|m| m.at > oldest)
                    .map(|m| MinuteStats {
                        minute: chrono::DateTime::from_timestamp(m.at * 60, 0).unwrap_or_default(),
                        requests: m.requests,
                        errors: m.errors,
                        p50_ms: quantile(&m.bins, m.requests, 0.5),
                        p99_ms: quantile(&m.bins, m.requests, 0.99),
                    })
                    .collect();
                (campaign.clone(), stats)
            })
            .collect()
    }

    pub fn snapshot(&self) -> std::collections::BTreeMap<String, Vec<MinuteStats>> {
        self.snapshot_at(chrono::Utc::now())
    }
}

/// The `q` quantile of a histogram, as the upper edge of its bin (an
/// overestimate by at most the bin width, 25%).
fn quantile(bins: &[u32; LIVE_BINS], total: u64, q: f64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (i, &n) in bins.iter().enumerate() {
        seen += n as u64;
        if seen >= rank {
            return Some(live_bin_edge(i));
        }
    }
    Some(live_bin_edge(LIVE_BINS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    #[test]
    fn live_stats_count_per_minute_and_bound_the_percentiles() {
        let live = LiveStats::default();
        let t = at("2026-12-07T10:00:10Z");
        for i in 0..100 {
            // 99 fast answers (2 ms), one slow (500 ms) and one error.
            let secs = if i == 99 { 0.5 } else { 0.002 };
            live.record("movies", if i == 0 { 400 } else { 200 }, secs, t);
        }
        live.record("movies", 200, 0.002, at("2026-12-07T10:01:30Z"));
        let snap = live.snapshot_at(at("2026-12-07T10:02:00Z"));
        let m = &snap["movies"];
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].requests, m[0].errors), (100, 1));
        let p50 = m[0].p50_ms.unwrap();
        assert!((2.0..=2.5).contains(&p50), "{p50}");
        let p99 = m[0].p99_ms.unwrap();
        assert!((2.0..=2.5).contains(&p99), "99 of 100 are fast: {p99}");
        // An hour later the old minutes are gone.
        let later = live.snapshot_at(at("2026-12-07T11:00:30Z"));
        assert_eq!(later["movies"].len(), 1);
    }

    #[test]
    fn the_slowest_percent_shows_in_p99() {
        let live = LiveStats::default();
        let t = at("2026-12-07T10:00:00Z");
        for i in 0..100 {
            live.record("c", 200, if i < 95 { 0.001 } else { 0.2 }, t);
        }
        let p99 = live.snapshot_at(t)["c"][0].p99_ms.unwrap();
        assert!((200.0..=250.0).contains(&p99), "{p99}");
    }
}
