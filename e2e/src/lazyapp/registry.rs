//! A metric registry that behaves like client_golang, prometheus_client and Micrometer: a family is
//! declared up front, but a child (one label set) exists only from its first observation. Until a
//! request fails, there is no `code="500"` series at all, which is what an error-rate query must
//! survive. Rendered in the Prometheus text format (0.0.4), as those libraries serve it.

use std::collections::BTreeMap;
use std::fmt::Write;

/// A child's labels, in the order the exporter writes them.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone, Default)]
struct Child {
    /// The labels as the exposition writes them (`a="x",b="y"`), once: a scrape writes many lines.
    rendered: String,
    /// A counter's or gauge's value; a histogram's sum.
    value: f64,
    /// A histogram's observations at or under each bound (fractional shares of a batch add up; the
    /// rendering floors them, so a bucket never exceeds the count).
    cumulative: Vec<f64>,
    count: u64,
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    /// Histogram bucket bounds, ascending, in the family's unit; +Inf is implied.
    bounds: Vec<f64>,
    children: BTreeMap<Labels, Child>,
}

/// The families of one process, in declaration order.
#[derive(Default)]
pub struct Registry {
    families: Vec<Family>,
}

impl Registry {
    /// Declares a family; declaring one twice keeps the first.
    pub fn declare(&mut self, name: &'static str, help: &'static str, kind: Kind, bounds: &[f64]) {
        if self.families.iter().all(|f| f.name != name) {
            self.families.push(Family { name, help, kind, bounds: bounds.to_vec(), children: BTreeMap::new() });
        }
    }

    fn child(&mut self, name: &str, labels: Labels) -> &mut Child {
        let family = self
            .families
            .iter_mut()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("metric family {name} is used before it is declared"));
        let bounds = family.bounds.len();
        family.children.entry(labels).or_insert_with_key(|labels| Child {
            rendered: labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(","),
            cumulative: vec![0.0; bounds],
            ..Child::default()
        })
    }

    /// Counts `n` events; `n == 0` creates nothing, as an `Inc()` that never happened.
    pub fn inc(&mut self, name: &str, labels: Labels, n: u64) {
        if n > 0 {
            self.child(name, labels).value += n as f64;
        }
    }

    pub fn set(&mut self, name: &str, labels: Labels, value: f64) {
        self.child(name, labels).value = value;
    }

    /// Observes `n` events whose values follow `cdf` (the share at or under a bound, in the family's
    /// unit) with mean `mean`; `n == 0` creates nothing.
    pub fn observe(&mut self, name: &str, labels: Labels, n: u64, cdf: impl Fn(f64) -> f64, mean: f64) {
        if n == 0 {
            return;
        }
        let bounds = self.families.iter().find(|f| f.name == name).map(|f| f.bounds.clone()).unwrap_or_default();
        let child = self.child(name, labels);
        for (cumulative, bound) in child.cumulative.iter_mut().zip(bounds) {
            *cumulative += n as f64 * cdf(bound).clamp(0.0, 1.0);
        }
        child.count += n;
        child.value += n as f64 * mean;
    }

    /// The text exposition format: what a scrape of `/metrics` returns.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for family in &self.families {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {kind}", family.name, family.help, family.name);
            // Bounds as Go's and Java's exporters write them: the shortest decimal that round-trips.
            let les: Vec<String> = family.bounds.iter().map(|b| format!("{b}")).collect();
            for child in family.children.values() {
                let (name, labels) = (family.name, &child.rendered);
                let (open, close, comma) = if labels.is_empty() { ("", "", "") } else { ("{", "}", ",") };
                match family.kind {
                    Kind::Counter | Kind::Gauge => {
                        let _ = writeln!(out, "{name}{open}{labels}{close} {}", child.value);
                    }
                    Kind::Histogram => {
                        // Monotonic across buckets even where the CDF's floors are not.
                        let mut floor = 0u64;
                        for (le, cumulative) in les.iter().zip(&child.cumulative) {
                            floor = floor.max((cumulative.floor() as u64).min(child.count));
                            let _ = writeln!(out, "{name}_bucket{{{labels}{comma}le=\"{le}\"}} {floor}");
                        }
                        let _ = writeln!(out, "{name}_bucket{{{labels}{comma}le=\"+Inf\"}} {}", child.count);
                        let _ = writeln!(out, "{name}_sum{open}{labels}{close} {}", child.value);
                        let _ = writeln!(out, "{name}_count{open}{labels}{close} {}", child.count);
                    }
                }
            }
        }
        out
    }
}

/// A label value as the text format escapes it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_appears_only_at_its_first_observation() {
        let mut registry = Registry::default();
        registry.declare("http_requests_total", "Requests.", Kind::Counter, &[]);
        registry.declare("latency_seconds", "Latency.", Kind::Histogram, &[0.1, 1.0]);
        registry.inc("http_requests_total", vec![("code", "500".into())], 0);
        registry.observe("latency_seconds", vec![("code", "500".into())], 0, |_| 1.0, 0.1);
        let text = registry.render();
        assert!(!text.contains("code=\"500\""), "nothing failed yet: {text}");
        assert!(text.contains("# TYPE http_requests_total counter"), "the family is declared: {text}");

        registry.inc("http_requests_total", vec![("code", "500".into())], 2);
        registry.observe("latency_seconds", vec![("code", "500".into())], 4, |le| if le < 0.5 { 0.5 } else { 1.0 }, 0.2);
        let text = registry.render();
        assert!(text.contains("http_requests_total{code=\"500\"} 2\n"), "{text}");
        assert!(text.contains("latency_seconds_bucket{code=\"500\",le=\"0.1\"} 2\n"), "{text}");
        assert!(text.contains("latency_seconds_bucket{code=\"500\",le=\"1\"} 4\n"), "{text}");
        assert!(text.contains("latency_seconds_bucket{code=\"500\",le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("latency_seconds_count{code=\"500\"} 4\n"), "{text}");
    }
}
