//! Process metrics on the `prometheus-client` crate, in the Prometheus text format at
//! `/metrics`, with `/healthz` and `/readyz` beside it (`http.rs`, `readiness.rs`).
//!
//! Callers record by name (`metrics.count(SCRUBBED, &[("rule", rule)], 1)`); every name is an
//! entry of [`catalog::CATALOG`] with its type, help and label names, so every series has HELP
//! and TYPE and a counter is a counter. Figures that live elsewhere (a projector's position,
//! the log's head, the scrub backlog) are read when scraped, by refreshers registered with
//! [`Metrics::on_scrape`], so a scrape never shows a figure older than itself. Process figures
//! come from `/proc` (`process.rs`). [`Metrics::samples`] reads every current value back, for
//! the status console and tests.

pub mod catalog;
pub mod exposition;
pub mod http;
pub mod process;
pub mod readiness;
pub mod tls_listener;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use catalog::Kind;
pub use exposition::Sample;

/// Label pairs in the catalogue's order.
type Labels = Vec<(String, String)>;
/// Float gauges.
type FloatGauge = Gauge<f64, AtomicU64>;

/// Builds a histogram with a catalogue entry's buckets.
#[derive(Clone, Debug)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// One registered metric family.
#[derive(Clone, Debug)]
enum Series {
    Counter(Family<Labels, Counter>),
    Gauge(Family<Labels, FloatGauge>),
    Histogram(Family<Labels, Histogram, Buckets>),
}

/// The embedded log's timings: one per process (the log is opened once per process, deep
/// below anything that holds a registry), shared by every registry.
static EVENT_LOG_TIMINGS: LazyLock<[Series; 2]> = LazyLock::new(|| {
    [catalog::APPEND_DURATION, catalog::FSYNC_DURATION].map(|name| {
        series(catalog::spec(name).expect("the event log's timings are in the catalogue"))
    })
});

fn series(spec: &catalog::Spec) -> Series {
    match spec.kind {
        Kind::Counter => Series::Counter(Family::default()),
        Kind::Gauge => Series::Gauge(Family::default()),
        Kind::Histogram(buckets) => {
            Series::Histogram(Family::new_with_constructor(Buckets(buckets)))
        }
    }
}

/// Records one observation in the embedded log's histogram `name` (`APPEND_DURATION` or
/// `FSYNC_DURATION`).
pub fn observe_event_log(name: &str, duration: Duration) {
    if let Some(Series::Histogram(family)) = EVENT_LOG_TIMINGS
        .iter()
        .zip([catalog::APPEND_DURATION, catalog::FSYNC_DURATION])
        .find(|(_, n)| *n == name)
        .map(|(s, _)| s)
    {
        family
            .get_or_create(&Vec::new())
            .observe(duration.as_secs_f64());
    }
}

/// Work run before each scrape, such as reading a figure that lives in another component.
pub type Refresher = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

struct Inner {
    registry: Registry,
    series: BTreeMap<&'static str, Series>,
    refreshers: Mutex<BTreeMap<String, Refresher>>,
}

/// The registry. Cheap to clone; clones share values.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every metric of the catalogue, the process collector, and
    /// `ledger_build_info` set.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut all = BTreeMap::new();
        for spec in catalog::CATALOG {
            let s = match spec.name {
                catalog::APPEND_DURATION => EVENT_LOG_TIMINGS[0].clone(),
                catalog::FSYNC_DURATION => EVENT_LOG_TIMINGS[1].clone(),
                _ => series(spec),
            };
            // The text encoder adds `_total` to counters and a full stop to the help.
            let name = spec.name.strip_suffix("_total").unwrap_or(spec.name);
            let help = spec.help.trim_end_matches('.');
            match &s {
                Series::Counter(f) => registry.register(name, help, f.clone()),
                Series::Gauge(f) => registry.register(name, help, f.clone()),
                Series::Histogram(f) => registry.register(name, help, f.clone()),
            }
            all.insert(spec.name, s);
        }
        registry.register_collector(Box::new(process::ProcessCollector));
        let metrics = Self {
            inner: Arc::new(Inner {
                registry,
                series: all,
                refreshers: Mutex::new(BTreeMap::new()),
            }),
        };
        metrics.gauge(
            catalog::BUILD_INFO,
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        metrics
    }

    /// The family `name` with `labels` in the catalogue's order, or `None` (and a loud error,
    /// a panic in debug builds) for a name or label set the catalogue does not list.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<(&Series, Labels)> {
        let found = catalog::spec(name).and_then(|spec| {
            let ordered: Option<Labels> = spec
                .labels
                .iter()
                .map(|key| {
                    labels
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                })
                .collect();
            let ordered = ordered.filter(|_| labels.len() == spec.labels.len())?;
            Some((self.inner.series.get(spec.name)?, ordered))
        });
        if found.is_none() {
            debug_assert!(false, "metric {name} {labels:?} is not in the catalogue");
            tracing::error!(
                metric = name,
                ?labels,
                "metric not in the catalogue; dropped"
            );
        }
        found
    }

    /// Adds `by` to a counter.
    pub fn count(&self, name: &str, labels: &[(&str, &str)], by: u64) {
        if let Some((Series::Counter(f), l)) = self.find(name, labels) {
            f.get_or_create(&l).inc_by(by);
        }
    }

    /// Raises a counter to `total`, a running total kept elsewhere (a projector's), which
    /// only grows; a lower figure leaves the counter as it is.
    pub fn count_to(&self, name: &str, labels: &[(&str, &str)], total: u64) {
        if let Some((Series::Counter(f), l)) = self.find(name, labels) {
            let counter = f.get_or_create(&l);
            let now = counter.get();
            if total > now {
                counter.inc_by(total - now);
            }
        }
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        if let Some((Series::Gauge(f), l)) = self.find(name, labels) {
            f.get_or_create(&l).set(value);
        }
    }

    /// Removes a gauge, for a figure that is unknown for now (absent, not a stale value).
    pub fn remove_gauge(&self, name: &str, labels: &[(&str, &str)]) {
        if let Some((Series::Gauge(f), l)) = self.find(name, labels) {
            f.remove(&l);
        }
    }

    /// Records one observation (seconds, for the latency histograms).
    pub fn observe(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        if let Some((Series::Histogram(f), l)) = self.find(name, labels) {
            f.get_or_create(&l).observe(value);
        }
    }

    /// A counter's current value (0 when never counted).
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some((Series::Counter(f), l)) => f.get(&l).map_or(0, |c| c.get()),
            _ => 0,
        }
    }

    /// A gauge's current value (`None` when unset or removed).
    pub fn gauge_value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels) {
            Some((Series::Gauge(f), l)) => f.get(&l).map(|g| g.get()),
            _ => None,
        }
    }

    /// How many observations a histogram holds (read from the rendered text: the crate
    /// shows a histogram's count only there).
    pub fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some((Series::Histogram(_), _)) => exposition::parse(&self.render())
                .value(&format!("{name}_count"), labels)
                .map_or(0, |c| c as u64),
            _ => 0,
        }
    }

    /// Registers `refresh` to run before each scrape (and [`Metrics::refresh`]) under `key`;
    /// a later registration under the same key replaces it.
    pub fn on_scrape(&self, key: &str, refresh: Refresher) {
        self.inner
            .refreshers
            .lock()
            .expect("refreshers lock")
            .insert(key.to_owned(), refresh);
    }

    /// Runs every refresher, so the figures they own are current.
    pub async fn refresh(&self) {
        let refreshers: Vec<Refresher> = self
            .inner
            .refreshers
            .lock()
            .expect("refreshers lock")
            .values()
            .cloned()
            .collect();
        futures::future::join_all(refreshers.iter().map(|r| r())).await;
    }

    /// The Prometheus text exposition of every metric as it is now (no refresh).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Refreshes, then renders: what `/metrics` answers.
    pub async fn scrape(&self) -> String {
        self.refresh().await;
        self.render()
    }

    /// Every current sample, refreshed first (for the status console).
    pub async fn samples(&self) -> Vec<Sample> {
        exposition::parse(&self.scrape().await).samples
    }
}

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::catalog::*;
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_with_help_and_type() {
        let m = Metrics::new();
        m.count(SCRUBBED, &[("rule", "exported")], 2);
        m.count(SCRUBBED, &[("rule", "exported")], 3);
        m.gauge(PROJECTOR_LAG, &[("projector", "readmodel")], 7.0);
        m.observe(GRPC_DURATION, &[("method", "AddDonation")], 0.003);
        let text = m.render();
        assert!(text.contains("# HELP ledger_scrubbed_total Donations scrubbed, by rule.\n"));
        assert!(text.contains("# TYPE ledger_scrubbed_total counter\n"));
        assert!(text.contains("ledger_scrubbed_total{rule=\"exported\"} 5\n"));
        assert!(text.contains("# TYPE ledger_projector_lag_positions gauge\n"));
        assert!(text.contains("ledger_projector_lag_positions{projector=\"readmodel\"} 7"));
        assert!(text.contains("# TYPE ledger_grpc_request_duration_seconds histogram\n"));
        assert!(text.contains(
            "ledger_grpc_request_duration_seconds_bucket{method=\"AddDonation\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains("ledger_build_info{version=\""));
        assert_eq!(m.counter_value(SCRUBBED, &[("rule", "exported")]), 5);
        assert_eq!(
            m.histogram_count(GRPC_DURATION, &[("method", "AddDonation")]),
            1
        );
    }

    #[test]
    fn a_counter_raised_to_a_total_never_goes_down() {
        let m = Metrics::new();
        let p = [("projector", "readmodel")];
        m.count_to(PROJECTOR_EVENTS, &p, 10);
        m.count_to(PROJECTOR_EVENTS, &p, 4);
        assert_eq!(m.counter_value(PROJECTOR_EVENTS, &p), 10);
        m.count_to(PROJECTOR_EVENTS, &p, 12);
        assert_eq!(m.counter_value(PROJECTOR_EVENTS, &p), 12);
    }

    #[test]
    fn a_removed_gauge_is_absent_from_the_scrape() {
        let m = Metrics::new();
        m.gauge(SCRUB_ELIGIBLE, &[], 3.0);
        assert_eq!(m.gauge_value(SCRUB_ELIGIBLE, &[]), Some(3.0));
        m.remove_gauge(SCRUB_ELIGIBLE, &[]);
        assert_eq!(m.gauge_value(SCRUB_ELIGIBLE, &[]), None);
        assert!(!m.render().contains("\nledger_scrub_eligible "));
    }

    #[tokio::test]
    async fn refreshers_run_before_a_scrape() {
        let m = Metrics::new();
        let m2 = m.clone();
        m.on_scrape(
            "head",
            Arc::new(move || {
                let m = m2.clone();
                Box::pin(async move { m.gauge(LOG_HEAD, &[], 42.0) })
            }),
        );
        assert_eq!(m.gauge_value(LOG_HEAD, &[]), None);
        let scraped = exposition::parse(&m.scrape().await);
        assert_eq!(scraped.value(LOG_HEAD, &[]), Some(42.0));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not in the catalogue")]
    fn a_metric_outside_the_catalogue_is_refused() {
        Metrics::new().count("ledger_typo_total", &[], 1);
    }
}
