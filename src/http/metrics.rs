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
        Metrics {
            registry,
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
