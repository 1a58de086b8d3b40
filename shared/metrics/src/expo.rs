//! The two exposition formats: Prometheus text 0.0.4 and OpenMetrics 1.0
//! (the one that carries exemplars, asked for by a scraper's `Accept`).

use std::fmt::Write as _;

use crate::histogram::{Exemplar, Snapshot};

/// `Content-Type` of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which format a scrape is answered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header lists it with a non-zero q (as
    /// Prometheus does), the text format otherwise.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let wants = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && !parts.any(|p| {
                        p.strip_prefix("q=")
                            .and_then(|q| q.parse::<f64>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        });
        if wants { Self::OpenMetrics } else { Self::Text }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => TEXT_CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// The kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    /// OpenMetrics' info (a gauge of 1 in the text format): `target_info`.
    Info,
}

/// How a histogram storage is shown: which of its bounds, in which unit.
#[derive(Clone, Copy, Debug)]
pub struct View {
    /// Bounds to show, each one of the storage's, in its base unit.
    pub bounds: &'static [u64],
    /// Base units per shown unit (1e9 shows nanoseconds as seconds).
    pub scale: f64,
}

/// Writes metric families, one after the other, in one format.
pub struct Writer {
    out: String,
    format: Format,
}

impl Writer {
    pub fn new(format: Format) -> Self {
        Self {
            out: String::with_capacity(16 * 1024),
            format,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// `# HELP` and `# TYPE` of a family. `name` is without `_total`.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let (type_name, kind_text) = match (kind, self.format) {
            (Kind::Counter, Format::Text) => (Some("_total"), "counter"),
            (Kind::Counter, Format::OpenMetrics) => (None, "counter"),
            (Kind::Gauge, _) => (None, "gauge"),
            (Kind::Histogram, _) => (None, "histogram"),
            (Kind::Info, Format::Text) => (None, "gauge"),
            (Kind::Info, Format::OpenMetrics) => (None, "info"),
        };
        let suffix = type_name.unwrap_or("");
        let _ = writeln!(self.out, "# HELP {name}{suffix} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name}{suffix} {kind_text}");
    }

    /// A counter's sample (`{name}_total`); `labels` is pre-rendered
    /// (`a="x",b="y"`, maybe empty).
    pub fn counter(&mut self, name: &str, labels: &str, value: u64) {
        self.line(name, "_total", labels, None, &value.to_string(), None, 1.0);
    }

    pub fn gauge(&mut self, name: &str, labels: &str, value: f64) {
        self.line(name, "", labels, None, &float(value), None, 1.0);
    }

    /// An info family's one sample (`target_info`).
    pub fn info(&mut self, name: &str, labels: &str) {
        self.line(name, "", labels, None, "1", None, 1.0);
    }

    /// A histogram's buckets, sum and count as `view` shows them.
    pub fn histogram(&mut self, name: &str, labels: &str, view: View, snapshot: &Snapshot) {
        let storage = snapshot.bounds;
        let mut cumulative = 0u64;
        let mut i = 0;
        for bound in view.bounds {
            let mut exemplar: Option<Exemplar> = None;
            while i < storage.len() && storage[i] <= *bound {
                cumulative += snapshot.counts[i];
                exemplar = later(exemplar, snapshot.exemplars[i]);
                i += 1;
            }
            let le = float_canonical(*bound as f64 / view.scale);
            self.line(
                name,
                "_bucket",
                labels,
                Some(("le", &le)),
                &cumulative.to_string(),
                exemplar,
                view.scale,
            );
        }
        let mut exemplar = None;
        for j in i..snapshot.counts.len() {
            cumulative += snapshot.counts[j];
            exemplar = later(exemplar, snapshot.exemplars[j]);
        }
        self.line(
            name,
            "_bucket",
            labels,
            Some(("le", "+Inf")),
            &cumulative.to_string(),
            exemplar,
            view.scale,
        );
        self.line(
            name,
            "_sum",
            labels,
            None,
            &float(snapshot.sum as f64 / view.scale),
            None,
            1.0,
        );
        self.line(
            name,
            "_count",
            labels,
            None,
            &cumulative.to_string(),
            None,
            1.0,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &str,
        extra: Option<(&str, &str)>,
        value: &str,
        exemplar: Option<Exemplar>,
        scale: f64,
    ) {
        let out = &mut self.out;
        out.push_str(name);
        out.push_str(suffix);
        if !labels.is_empty() || extra.is_some() {
            out.push('{');
            out.push_str(labels);
            if let Some((k, v)) = extra {
                if !labels.is_empty() {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"{v}\"");
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(value);
        if let (Some(e), Format::OpenMetrics) = (exemplar, self.format) {
            let _ = write!(
                out,
                " # {{trace_id=\"{:032x}\"}} {} {}.{:03}",
                e.trace_id.0,
                float(e.value as f64 / scale),
                e.at_ms / 1000,
                e.at_ms % 1000
            );
        }
        out.push('\n');
    }

    /// The exposition, ended as the format asks.
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

fn later(a: Option<Exemplar>, b: Option<Exemplar>) -> Option<Exemplar> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at_ms >= a.at_ms { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// A float as Prometheus reads it.
pub fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// A bound in OpenMetrics' canonical form (`1.0`, not `1`), in both
/// formats, so a target scraped either way keeps one `le` per bucket.
fn float_canonical(v: f64) -> String {
    let s = float(v);
    if s.contains(['.', 'e', 'I', 'N']) {
        s
    } else {
        s + ".0"
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `name="value",…` from pairs, values escaped.
pub fn render_labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_accept_header_asks_for_openmetrics() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text; q=0")),
            Format::Text
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            render_labels(&[("a", "x\"y\\z\nw"), ("b", "")]),
            r#"a="x\"y\\z\nw",b="""#
        );
    }

    #[test]
    fn bounds_are_written_canonically() {
        assert_eq!(float_canonical(1.0), "1.0");
        assert_eq!(float_canonical(0.005), "0.005");
        assert_eq!(float_canonical(15000.0), "15000.0");
        assert_eq!(float(2.5), "2.5");
    }
}
