//! Debian's `prometheus` as a child process ([`crate::process`]): a
//! generated configuration (the jobs and targets a test names, short
//! intervals, the rule files it names), its own storage in a temporary
//! folder, ready when it says so, stopped on Drop. Queries go through its
//! HTTP API, as Grafana's and Jaeger's do.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::ports::free_port;
use crate::process::{Launch, Process};

/// Where Debian's package puts the binaries (scripts/setup.d/20-prometheus.sh).
pub const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";
pub const PROMTOOL_BIN: &str = "/usr/bin/promtool";
/// The line Prometheus logs once it serves its API.
const READY_LINE: &str = "Server is ready to receive web requests.";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What Prometheus scrapes and evaluates.
#[derive(Clone, Debug)]
pub struct PrometheusOptions {
    /// `(job, targets)`: one scrape job per service, named as its service.name.
    pub jobs: Vec<(String, Vec<String>)>,
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    /// Rule files (recording and alerts), e.g. infra/prometheus/rules/*.yml.
    pub rule_files: Vec<PathBuf>,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        Self {
            jobs: Vec::new(),
            scrape_interval: Duration::from_secs(1),
            evaluation_interval: Duration::from_secs(1),
            rule_files: Vec::new(),
        }
    }
}

impl PrometheusOptions {
    /// Adds a job scraping `targets` (`host:port`).
    pub fn job(mut self, name: &str, targets: &[String]) -> Self {
        self.jobs.push((name.to_owned(), targets.to_vec()));
        self
    }

    /// The configuration file these options give.
    pub fn config(&self) -> String {
        let secs = |d: Duration| format!("{}ms", d.as_millis().max(1));
        let mut out = format!(
            "global:\n  scrape_interval: {}\n  scrape_timeout: {}\n  evaluation_interval: {}\n",
            secs(self.scrape_interval),
            secs(self.scrape_interval),
            secs(self.evaluation_interval),
        );
        if !self.rule_files.is_empty() {
            out.push_str("rule_files:\n");
            for f in &self.rule_files {
                let _ = writeln!(out, "  - {:?}", f.display().to_string());
            }
        }
        out.push_str("scrape_configs:\n");
        for (job, targets) in &self.jobs {
            let _ = writeln!(
                out,
                "  - job_name: {job:?}\n    static_configs:\n      - targets: {targets:?}"
            );
        }
        out
    }
}

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    process: Process,
    port: u16,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `options` (exemplar storage on) and waits
    /// until it serves; retries on another port when the one probed was
    /// taken in between.
    pub fn start(options: &PrometheusOptions) -> anyhow::Result<Self> {
        if !Path::new(PROMETHEUS_BIN).is_file() {
            bail!("{PROMETHEUS_BIN} is missing: run scripts/setup.sh (apt-get install prometheus)");
        }
        let dir = tempfile::Builder::new()
            .prefix("autobot-prometheus-")
            .tempdir()
            .context("creating Prometheus's folder")?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, options.config()).context("writing prometheus.yml")?;
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port();
            let launch = Launch::program(PROMETHEUS_BIN)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--enable-feature=exemplar-storage")
                .arg("--web.enable-lifecycle")
                .current_dir(dir.path())
                .within(READY_TIMEOUT);
            match launch.start_when(|line| line.contains(READY_LINE).then_some(())) {
                Ok((process, ())) => {
                    return Ok(Self {
                        process,
                        port,
                        http: reqwest::Client::new(),
                        _dir: dir,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("tried"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What Prometheus logged (for a failing test's message).
    pub fn output(&self) -> String {
        self.process.output()
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<Value> {
        let mut url = reqwest::Url::parse(&self.url(path)).context("the API's URL")?;
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        let response = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("GET {path}: not JSON"))?;
        if !status.is_success() || body["status"] != "success" {
            bail!("GET {path} {params:?}: {status} {body}");
        }
        Ok(body["data"].clone())
    }

    /// An instant query: its result (a vector: `[{metric, value}]`). A query
    /// that does not parse is an error with Prometheus's message.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<Value>> {
        let data = self
            .get("/api/v1/query", &[("query", promql.to_owned())])
            .await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The single number an instant query gives (`None` when it gives no series).
    pub async fn value(&self, promql: &str) -> anyhow::Result<Option<f64>> {
        let result = self.query(promql).await?;
        match result.as_slice() {
            [] => Ok(None),
            [one] => Ok(one["value"][1].as_str().and_then(|v| v.parse().ok())),
            many => bail!("{promql} gives {} series, not one: {many:?}", many.len()),
        }
    }

    /// Polls `promql` until `done` holds for its result, or `limit` passes
    /// (then the last result is in the error).
    pub async fn wait_for(
        &self,
        promql: &str,
        limit: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + limit;
        loop {
            let result = self.query(promql).await?;
            if done(&result) {
                return Ok(result);
            }
            if Instant::now() > deadline {
                bail!("{promql} did not come to what was expected within {limit:?}: {result:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `GET /api/v1/alerts`: the alerts pending or firing now.
    pub async fn alerts(&self) -> anyhow::Result<Vec<Value>> {
        let data = self.get("/api/v1/alerts", &[]).await?;
        Ok(data["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// `GET /api/v1/targets`: the active targets and their health.
    pub async fn targets(&self) -> anyhow::Result<Vec<Value>> {
        let data = self.get("/api/v1/targets", &[]).await?;
        Ok(data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until every target was scraped successfully once.
    pub async fn wait_targets_up(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let targets = self.targets().await?;
            if !targets.is_empty() && targets.iter().all(|t| t["health"] == "up") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("targets not all up within {limit:?}: {targets:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `GET /api/v1/query_exemplars` over the last `window`: the exemplars of
    /// the series `promql` selects (`[{seriesLabels, exemplars: [{labels, value, timestamp}]}]`).
    pub async fn exemplars(&self, promql: &str, window: Duration) -> anyhow::Result<Vec<Value>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let data = self
            .get(
                "/api/v1/query_exemplars",
                &[
                    ("query", promql.to_owned()),
                    ("start", format!("{:.3}", now - window.as_secs_f64())),
                    ("end", format!("{:.3}", now + 1.0)),
                ],
            )
            .await?;
        Ok(data.as_array().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_config_names_jobs_rules_and_intervals() {
        let options = PrometheusOptions {
            rule_files: vec![PathBuf::from("/r/alerts.yml")],
            ..PrometheusOptions::default()
        }
        .job("autobot-backend", &["127.0.0.1:8001".to_owned()]);
        let config = options.config();
        assert!(config.contains("scrape_interval: 1000ms"), "{config}");
        assert!(config.contains("  - \"/r/alerts.yml\""), "{config}");
        assert!(
            config.contains("  - job_name: \"autobot-backend\"\n    static_configs:\n      - targets: [\"127.0.0.1:8001\"]"),
            "{config}"
        );
    }
}
