//! `check`'s look at the operator's view: Prometheus and Alertmanager on the
//! redis+jaeger machine (ansible role prometheus), queried through their
//! HTTP APIs as docs/metrics.md shows an operator.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::check::Verdict;
use crate::lab::Lab;

pub const PROMETHEUS_PORT: u16 = 9090;
pub const ALERTMANAGER_PORT: u16 = 9093;

/// Per service, the PromQL that counts its work (not its health polls): the
/// server histogram's count for the HTTP services; the npu-worker's work
/// arrives over Redis, so its CONSUMER spans.
pub const WORK_QUERIES: [(&str, &str); 5] = [
    (
        "autobot-backend",
        r#"sum(http_server_request_duration_seconds_count{job="autobot-backend",http_route!="/api/health"})"#,
    ),
    (
        "autobot-pki-distributor",
        r#"sum(http_server_request_duration_seconds_count{job="autobot-pki-distributor",http_route!="/health"})"#,
    ),
    (
        "autobot-browser",
        r#"sum(http_server_request_duration_seconds_count{job="autobot-browser",http_route!="/health"})"#,
    ),
    (
        "autobot-ai-stack",
        r#"sum(http_server_request_duration_seconds_count{job="autobot-ai-stack",http_route!="/health"})"#,
    ),
    (
        "autobot-npu-worker",
        r#"sum(traces_span_metrics_calls_total{job="autobot-npu-worker",span_kind="SPAN_KIND_CONSUMER"})"#,
    ),
];

pub struct Prometheus {
    base: String,
    http: reqwest::Client,
}

impl Prometheus {
    pub fn new(lab: &Lab) -> anyhow::Result<Self> {
        Ok(Self {
            base: format!("http://{}:{PROMETHEUS_PORT}", lab.machine("redis")?.ip),
            http: lab.http.clone(),
        })
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query)?;
        let answer: Value = self
            .http
            .get(url.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()
            .with_context(|| format!("GET {url}"))?
            .json()
            .await?;
        Ok(answer["data"].clone())
    }

    /// One number from an instant query (none when the result is empty).
    pub async fn scalar(&self, promql: &str) -> anyhow::Result<Option<f64>> {
        let data = self.get("/api/v1/query", &[("query", promql)]).await?;
        Ok(data["result"]
            .as_array()
            .and_then(|r| r.first())
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok()))
    }

    /// Each service's work count (0 when Prometheus has none yet).
    pub async fn work_counts(&self) -> anyhow::Result<BTreeMap<&'static str, f64>> {
        let mut counts = BTreeMap::new();
        for (service, promql) in WORK_QUERIES {
            counts.insert(service, self.scalar(promql).await?.unwrap_or(0.0));
        }
        Ok(counts)
    }
}

/// Number of `- alert:` rules in the repository's alert file.
pub fn alert_rules_in(text: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count()
}

/// Every scrape target up, the checks' requests counted per service, the
/// rules loaded, Alertmanager answering and known to Prometheus.
pub async fn check(
    lab: &Lab,
    prometheus: &Prometheus,
    before: &BTreeMap<&'static str, f64>,
    v: &mut Verdict,
) -> anyhow::Result<()> {
    let targets = prometheus.get("/api/v1/targets", &[]).await?;
    let active = targets["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let down: Vec<String> = active
        .iter()
        .filter(|t| t["health"] != "up")
        .map(|t| {
            format!(
                "{} {} ({})",
                t["labels"]["job"].as_str().unwrap_or("?"),
                t["scrapeUrl"].as_str().unwrap_or("?"),
                t["lastError"].as_str().unwrap_or("")
            )
        })
        .collect();
    let jobs: Vec<&str> = active
        .iter()
        .filter_map(|t| t["labels"]["job"].as_str())
        .collect();
    v.expect(
        !active.is_empty() && down.is_empty(),
        format!(
            "Prometheus: {} of {} targets up ({}){}",
            active.len() - down.len(),
            active.len(),
            jobs.join(", "),
            if down.is_empty() {
                String::new()
            } else {
                format!("; down: {}", down.join("; "))
            }
        ),
    );
    for (service, _) in WORK_QUERIES {
        v.expect(
            jobs.contains(&service),
            format!("Prometheus scrapes {service}"),
        );
    }

    // A scrape every 15 s: the checks' requests show within two.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    let after = loop {
        let now = prometheus.work_counts().await?;
        let all_counted = now.iter().all(|(s, n)| *n > before[s]);
        if all_counted || tokio::time::Instant::now() >= deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    for (service, n) in &after {
        v.expect(
            *n > before[service],
            format!(
                "Prometheus counts {service}'s requests: {} before the checks' requests, {} after",
                before[service], n
            ),
        );
    }
    let redis_up = prometheus.scalar("max(redis_up)").await?;
    v.expect(
        redis_up == Some(1.0),
        format!("Prometheus: redis_up = {redis_up:?} (the exporter logs in with its ACL user)"),
    );

    let rules = prometheus.get("/api/v1/rules", &[]).await?;
    let all_rules: Vec<&Value> = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    let alerting = all_rules.iter().filter(|r| r["type"] == "alerting").count();
    let recording = all_rules
        .iter()
        .filter(|r| r["type"] == "recording")
        .count();
    let repo_file = lab.repo().join("infra/prometheus/rules/alerts.yml");
    let expected = alert_rules_in(
        &std::fs::read_to_string(&repo_file).with_context(|| format!("{}", repo_file.display()))?,
    );
    v.expect(
        alerting == expected && expected > 0 && recording > 0,
        format!(
            "Prometheus loaded {alerting} alert rules (infra/prometheus/rules/alerts.yml has {expected}) and {recording} recording rules"
        ),
    );
    let firing: Vec<String> = prometheus.get("/api/v1/alerts", &[]).await?["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["state"] == "firing")
        .map(|a| a["labels"]["alertname"].as_str().unwrap_or("?").to_owned())
        .collect();
    println!("         alerts firing now: {firing:?}");

    let managers = prometheus.get("/api/v1/alertmanagers", &[]).await?;
    let am_urls: Vec<&str> = managers["activeAlertmanagers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["url"].as_str())
        .collect();
    let am = format!("http://{}:{ALERTMANAGER_PORT}", lab.machine("redis")?.ip);
    let status = lab
        .http
        .get(format!("{am}/api/v2/status"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let answered = match status {
        Ok(r) if r.status().is_success() => {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            body["cluster"]["status"].as_str().unwrap_or("?").to_owned()
        }
        Ok(r) => format!("HTTP {}", r.status()),
        Err(e) => format!("{e}"),
    };
    v.expect(
        answered == "ready" || answered == "disabled",
        format!("Alertmanager {am}/api/v2/status answers (cluster {answered})"),
    );
    v.expect(
        am_urls
            .iter()
            .any(|u| u.contains(&format!(":{ALERTMANAGER_PORT}"))),
        format!("Prometheus sends alerts to {am_urls:?}"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_rules_are_counted() {
        let text = "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up == 0\n      - record: y\n      - alert: Z\n";
        assert_eq!(alert_rules_in(text), 2);
    }
}
