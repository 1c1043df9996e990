//! Process metrics: named counters and gauges with labels, rendered in the Prometheus text
//! format at `/metrics`. Small on purpose: a registry of atomics behind one lock per lookup.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A metric's identity: name plus sorted label pairs.
type Key = (String, Vec<(String, String)>);

#[derive(Default)]
struct Inner {
    counters: BTreeMap<Key, u64>,
    gauges: BTreeMap<Key, f64>,
    help: BTreeMap<String, &'static str>,
}

/// The registry. Cheap to clone; clones share values.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.sort();
    (name.to_owned(), l)
}

impl Metrics {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Documents a metric (shown as `# HELP`).
    pub fn describe(&self, name: &str, help: &'static str) {
        self.inner
            .lock()
            .expect("metrics lock")
            .help
            .insert(name.to_owned(), help);
    }

    /// Adds `by` to a counter.
    pub fn count(&self, name: &str, labels: &[(&str, &str)], by: u64) {
        *self
            .inner
            .lock()
            .expect("metrics lock")
            .counters
            .entry(key(name, labels))
            .or_default() += by;
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.inner
            .lock()
            .expect("metrics lock")
            .gauges
            .insert(key(name, labels), value);
    }

    /// Removes a gauge, for a figure that is unknown for now (absent, not a stale value).
    pub fn remove_gauge(&self, name: &str, labels: &[(&str, &str)]) {
        self.inner
            .lock()
            .expect("metrics lock")
            .gauges
            .remove(&key(name, labels));
    }

    /// Adds `by` to a gauge (for sums of floating-point measurements such as seconds).
    pub fn gauge_add(&self, name: &str, labels: &[(&str, &str)], by: f64) {
        *self
            .inner
            .lock()
            .expect("metrics lock")
            .gauges
            .entry(key(name, labels))
            .or_default() += by;
    }

    /// A counter's current value (0 when never counted).
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.inner
            .lock()
            .expect("metrics lock")
            .counters
            .get(&key(name, labels))
            .copied()
            .unwrap_or(0)
    }

    /// A gauge's current value.
    pub fn gauge_value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.inner
            .lock()
            .expect("metrics lock")
            .gauges
            .get(&key(name, labels))
            .copied()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        let mut last = String::new();
        let mut write = |kind: &str, (name, labels): &Key, value: String, out: &mut String| {
            if *name != last {
                if let Some(h) = inner.help.get(name) {
                    let _ = writeln!(out, "# HELP {name} {h}");
                }
                let _ = writeln!(out, "# TYPE {name} {kind}");
                last.clone_from(name);
            }
            let labels = labels
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}=\"{}\"",
                        v.replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n")
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        for (k, v) in &inner.counters {
            write("counter", k, v.to_string(), &mut out);
        }
        for (k, v) in &inner.gauges {
            write("gauge", k, v.to_string(), &mut out);
        }
        out
    }

    /// Serves `/metrics` and `routes` (the status console) on `addr` until `shutdown`
    /// resolves. Returns the bound address.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        routes: axum::Router,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let metrics = self.clone();
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let m = metrics.clone();
                    async move { m.render() }
                }),
            )
            .merge(routes);
        let handle = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        });
        Ok((bound, handle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_labels() {
        let m = Metrics::new();
        m.describe("ledger_appends_total", "Appends acknowledged.");
        m.count("ledger_appends_total", &[("backend", "sqlite")], 2);
        m.count("ledger_appends_total", &[("backend", "sqlite")], 3);
        m.gauge("ledger_projector_lag", &[("projector", "donation")], 7.0);
        let text = m.render();
        assert!(text.contains("# HELP ledger_appends_total Appends acknowledged."));
        assert!(text.contains("ledger_appends_total{backend=\"sqlite\"} 5"));
        assert!(text.contains("# TYPE ledger_projector_lag gauge"));
        assert!(text.contains("ledger_projector_lag{projector=\"donation\"} 7"));
        assert_eq!(
            m.counter_value("ledger_appends_total", &[("backend", "sqlite")]),
            5
        );
    }
}
