//! Wire types for the pki flow: the distributor's HTTP API
//! (`POST /distribute`, `GET /status`) and the one JSON line
//! `autobot-pki-agent install` prints on each VM.
use serde::{Deserialize, Serialize};

/// `POST /distribute` body. No `targets` (or `null`): every configured target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
}

/// `POST /distribute` answer: one result per target, failures included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributeResponse {
    pub results: Vec<TargetResult>,
    /// The run's trace, to look it up in Jaeger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// What happened on one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetResult {
    pub target: String,
    pub ok: bool,
    /// Files uploaded to the target (3 when the upload completed).
    pub files_copied: u32,
    /// Why it failed, for an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Low-cardinality class of the failure (`host_key_mismatch`, `connect_error`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// The certificate now installed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInfo>,
}

/// Identity and lifetime of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// SHA-256 of the DER, `AB:CD:…` like `openssl x509 -fingerprint -sha256`.
    pub fingerprint_sha256: String,
    /// RFC 3339.
    pub not_after: String,
}

/// `GET /status` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub ca: CertificateInfo,
    pub targets: Vec<TargetStatus>,
}

/// One configured target and what the last distribution to it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub target: String,
    pub host: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_distribution: Option<LastDistribution>,
    /// The certificate the last successful distribution installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInfo>,
}

/// The latest attempt on a target, successful or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDistribution {
    /// RFC 3339.
    pub at: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// The one line `autobot-pki-agent install` prints on stdout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInstallReport {
    pub ok: bool,
    /// The certificate directory written (or left alone on failure).
    pub dest: String,
    /// File names installed (empty on failure).
    #[serde(default)]
    pub installed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The release directory installed (`CERT_DIR/releases/NAME`, which
    /// `CERT_DIR/current` now points at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
}
