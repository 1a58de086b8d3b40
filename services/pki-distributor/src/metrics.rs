//! The distributor's metrics: distributions by target and outcome, the
//! `ssh.distribute_certificates` span's spanmetrics series, and when each
//! VM's certificate (and the CA) stops being valid, read at scrape time from
//! the recorded status (so runs of the `distribute` command count too).

use std::sync::Arc;
use std::time::Duration;

use autobot_metrics::spans::{Operation, SpanKind};
use autobot_metrics::{Collect, Counter, Kind, Writer, expo};

use crate::distribute::Distributor;

/// `autobot_pki_distributions_total{target, outcome}`: `ok` or the failure's `error.type`.
pub fn distribution(target: &str, outcome: &str) -> &'static Counter {
    autobot_metrics::counter(
        "autobot_pki_distributions",
        "Certificate distributions over SSH, by target VM and outcome (ok, or the error.type of the failure).",
        &["target", "outcome"],
    )
    .with(&[target, outcome])
}

pub fn ssh_distribute() -> &'static Operation {
    autobot_metrics::spans::operation("ssh.distribute_certificates", SpanKind::Client)
}

/// Counts one target's distribution.
pub fn distributed(target: &str, outcome: &str, elapsed: Duration, span: &tracing::Span) {
    distribution(target, outcome).inc();
    ssh_distribute().record(elapsed, outcome != "ok", autobot_tracing::exemplar_of(span));
}

/// Exposes the certificates' expiry of `distributor`'s targets.
pub fn register(distributor: Arc<Distributor>) {
    let _ = ssh_distribute();
    for target in distributor.targets() {
        let _ = distribution(&target.name, "ok");
    }
    autobot_metrics::set_collector("autobot_pki_certificates", Certificates { distributor });
}

struct Certificates {
    distributor: Arc<Distributor>,
}

/// An RFC 3339 time as seconds since the Unix epoch.
fn unix_seconds(rfc3339: &str) -> Option<f64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp() as f64)
}

impl Collect for Certificates {
    fn collect(&self, out: &mut Writer) {
        let status = self.distributor.status();
        const CERT: &str = "autobot_pki_certificate_not_after_seconds";
        out.family(
            CERT,
            "When the certificate last installed on each target VM expires (Unix time); absent for a VM that never got one.",
            Kind::Gauge,
        );
        for target in &status.targets {
            if let Some(not_after) = target
                .certificate
                .as_ref()
                .and_then(|c| unix_seconds(&c.not_after))
            {
                out.gauge(
                    CERT,
                    &expo::render_labels(&[("target", &target.target)]),
                    not_after,
                );
            }
        }
        const CA: &str = "autobot_pki_ca_not_after_seconds";
        out.family(CA, "When the AutoBot CA expires (Unix time).", Kind::Gauge);
        if let Some(not_after) = unix_seconds(&status.ca.not_after) {
            out.gauge(CA, "", not_after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        assert_eq!(unix_seconds("2026-01-01T00:00:00Z"), Some(1_767_225_600.0));
        assert_eq!(unix_seconds("soon"), None);
    }
}
