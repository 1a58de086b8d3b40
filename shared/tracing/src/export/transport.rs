//! AutoBot's OTLP span exporter: batches encoded by [`TraceEncoder`] and sent
//! over gRPC (tonic, the bytes passed through a small codec) or HTTP/protobuf
//! (a blocking reqwest client).
//!
//! Both run where the SDK's batch processor calls `export`: its own thread,
//! driving the future with its own executor, not a tokio runtime (a client
//! that needs one, such as reqwest's async client, finds none there). gRPC works there because tonic's `Channel` spawned
//! its connection worker on the runtime `init` ran in, and the export future
//! only talks to that worker. HTTP uses reqwest's blocking client, built on
//! first use on that thread (building or dropping it inside a runtime panics)
//! and dropped at shutdown, on the same thread.
//!
//! Like `opentelemetry-otlp` 0.33: up to 3 retries of a retryable failure
//! (gRPC UNAVAILABLE, RESOURCE_EXHAUSTED, …; HTTP 429/502/503/504 or no
//! connection) with exponential backoff from 100 ms, all within the export
//! timeout. A partial success that rejects spans is an accepted request: not
//! retried (OTLP spec), the rejected spans are counted as failed and the
//! receiver's message is logged.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::ExportCounters;
use super::encode::TraceEncoder;

const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const USER_AGENT: &str = concat!("autobot-tracing/", env!("CARGO_PKG_VERSION"));

const MAX_RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_millis(1600);

/// The OTLP span exporter `build_otlp` installs.
pub(crate) struct OtlpExporter {
    encoder: TraceEncoder,
    transport: Transport,
    timeout: Duration,
    counters: Arc<ExportCounters>,
    /// The size of the last request, to size the next buffer in one go.
    last_len: AtomicUsize,
    shut_down: AtomicBool,
}

enum Transport {
    Grpc {
        client: tonic::client::Grpc<tonic::transport::Channel>,
        metadata: tonic::metadata::MetadataMap,
    },
    Http {
        url: String,
        headers: reqwest::header::HeaderMap,
        /// Built on first use, on the batch processor's thread.
        client: Mutex<Option<reqwest::blocking::Client>>,
    },
}

impl fmt::Debug for OtlpExporter {
    // Headers carry vendor credentials: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.transport {
            Transport::Grpc { .. } => "grpc",
            Transport::Http { .. } => "http/protobuf",
        };
        f.debug_struct("OtlpExporter")
            .field("protocol", &protocol)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What the receiver said to an accepted request.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PartialSuccess {
    pub(crate) rejected_spans: i64,
    pub(crate) error_message: String,
}

/// A failed attempt.
struct Failure {
    message: String,
    retryable: bool,
}

impl OtlpExporter {
    /// gRPC to `endpoint`; needs a tokio runtime (tonic spawns its worker there).
    pub(crate) fn grpc(
        endpoint: &str,
        tls: bool,
        metadata: tonic::metadata::MetadataMap,
        timeout: Duration,
        counters: Arc<ExportCounters>,
    ) -> Result<Self, String> {
        let mut ep = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| format!("invalid gRPC endpoint {endpoint}: {e}"))?
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .map_err(|e| e.to_string())?;
        if tls {
            ep = ep
                .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                .map_err(|e| format!("TLS for {endpoint}: {e}"))?;
        }
        let channel = ep.connect_lazy();
        Ok(Self::new(
            Transport::Grpc {
                client: tonic::client::Grpc::new(channel),
                metadata,
            },
            timeout,
            counters,
        ))
    }

    /// HTTP/protobuf: POST to `url` (the full OTLP traces URL).
    pub(crate) fn http(
        url: &str,
        headers: reqwest::header::HeaderMap,
        timeout: Duration,
        counters: Arc<ExportCounters>,
    ) -> Self {
        Self::new(
            Transport::Http {
                url: url.to_owned(),
                headers,
                client: Mutex::new(None),
            },
            timeout,
            counters,
        )
    }

    fn new(transport: Transport, timeout: Duration, counters: Arc<ExportCounters>) -> Self {
        Self {
            encoder: TraceEncoder::default(),
            transport,
            timeout,
            counters,
            last_len: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
        }
    }

    fn encode(&self, batch: &[SpanData]) -> Bytes {
        let hint = self.last_len.load(Ordering::Relaxed);
        let mut body = Vec::with_capacity(hint + hint / 8);
        self.encoder.encode(batch, &mut body);
        self.last_len.store(body.len(), Ordering::Relaxed);
        Bytes::from(body)
    }

    async fn send_once(&self, body: &Bytes) -> Result<PartialSuccess, Failure> {
        match &self.transport {
            Transport::Grpc { client, metadata } => {
                send_grpc(client.clone(), metadata.clone(), body.clone()).await
            }
            Transport::Http {
                url,
                headers,
                client,
            } => self.send_http(client, url, headers, body),
        }
    }

    fn send_http(
        &self,
        client: &Mutex<Option<reqwest::blocking::Client>>,
        url: &str,
        headers: &reqwest::header::HeaderMap,
        body: &Bytes,
    ) -> Result<PartialSuccess, Failure> {
        let client = {
            let mut slot = client.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(c) => c.clone(),
                None => {
                    let c = reqwest::blocking::Client::builder()
                        .timeout(self.timeout)
                        .user_agent(USER_AGENT)
                        .build()
                        .map_err(|e| Failure {
                            message: format!("building the HTTP client: {e}"),
                            retryable: false,
                        })?;
                    *slot = Some(c.clone());
                    c
                }
            }
        };
        let response = client
            .post(url)
            .headers(headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body.clone())
            .send()
            .map_err(|e| Failure {
                retryable: !e.is_builder(),
                message: crate::error_chain(&e),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure {
                message: format!("HTTP {status} from {url}"),
                retryable: matches!(status.as_u16(), 429 | 502 | 503 | 504),
            });
        }
        // An answer that is not an ExportTraceServiceResponse (an empty body,
        // JSON from a proxy) still means accepted.
        let answer = response.bytes().unwrap_or_default();
        Ok(decode_partial_success(&answer).unwrap_or_default())
    }
}

async fn send_grpc(
    mut client: tonic::client::Grpc<tonic::transport::Channel>,
    metadata: tonic::metadata::MetadataMap,
    body: Bytes,
) -> Result<PartialSuccess, Failure> {
    client.ready().await.map_err(|e| Failure {
        message: format!("gRPC channel: {e}"),
        retryable: true,
    })?;
    let mut request = tonic::Request::new(body);
    *request.metadata_mut() = metadata;
    let path = http::uri::PathAndQuery::from_static(GRPC_EXPORT_PATH);
    match client.unary(request, path, PassThrough).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(Failure {
            retryable: matches!(
                status.code(),
                tonic::Code::Cancelled
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::Aborted
                    | tonic::Code::OutOfRange
                    | tonic::Code::Unavailable
                    | tonic::Code::DataLoss
            ),
            message: format!("gRPC {:?}: {}", status.code(), status.message()),
        }),
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let body = self.encode(&batch);
        drop(batch);
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut retries = 0;
        loop {
            let failure = match self.send_once(&body).await {
                Ok(partial) => {
                    if partial.rejected_spans > 0 || !partial.error_message.is_empty() {
                        self.counters
                            .note_rejected(partial.rejected_spans.max(0) as u64);
                        if self.counters.log_due() {
                            tracing::warn!(
                                target: "autobot_tracing::export",
                                rejected_spans = partial.rejected_spans,
                                message = %partial.error_message,
                                "the receiver accepted the batch but rejected some spans (logged at most every 30 s)"
                            );
                        }
                    }
                    return Ok(());
                }
                Err(failure) => failure,
            };
            let pause = backoff + jitter();
            if !failure.retryable
                || retries >= MAX_RETRIES
                || started.elapsed() + pause >= self.timeout
            {
                return Err(OTelSdkError::InternalFailure(failure.message));
            }
            sleep(pause).await;
            retries += 1;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        // The blocking client is dropped here, on the batch processor's
        // thread, never inside a runtime.
        if let Transport::Http { client, .. } = &self.transport {
            let taken = client.lock().unwrap_or_else(|e| e.into_inner()).take();
            drop(taken);
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.encoder.set_resource(resource);
    }
}

/// Up to 100 ms, so that many processes do not retry in step.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Duration::from_nanos(u64::from(nanos % 100_000_000))
}

/// The batch processor's thread has no runtime: sleep the thread. Inside a
/// runtime (an exporter driven by other code), sleep the task.
async fn sleep(pause: Duration) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(pause).await;
    } else {
        std::thread::sleep(pause);
    }
}

/// A tonic codec for bytes that are already an encoded
/// `ExportTraceServiceRequest`; the answer is read for its partial success.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough;

impl Codec for PassThrough {
    type Encode = Bytes;
    type Decode = PartialSuccess;
    type Encoder = PassThrough;
    type Decoder = PassThrough;
    fn encoder(&mut self) -> Self::Encoder {
        PassThrough
    }
    fn decoder(&mut self) -> Self::Decoder {
        PassThrough
    }
}

impl Encoder for PassThrough {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PassThrough {
    type Item = PartialSuccess;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<PartialSuccess>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(decode_partial_success(&bytes).unwrap_or_default()))
    }
}

/// Reads `ExportTraceServiceResponse.partial_success` (1):
/// `{ rejected_spans (1, int64), error_message (2, string) }`; `None` when
/// the bytes are not such a message.
pub(crate) fn decode_partial_success(mut buf: &[u8]) -> Option<PartialSuccess> {
    let mut out = PartialSuccess::default();
    while !buf.is_empty() {
        let (field, wire) = read_key(&mut buf)?;
        if field == 1 && wire == 2 {
            let len = read_varint(&mut buf)? as usize;
            let mut inner = buf.get(..len)?;
            buf = &buf[len..];
            while !inner.is_empty() {
                let (f, w) = read_key(&mut inner)?;
                match (f, w) {
                    (1, 0) => out.rejected_spans = read_varint(&mut inner)? as i64,
                    (2, 2) => {
                        let n = read_varint(&mut inner)? as usize;
                        let s = inner.get(..n)?;
                        out.error_message = String::from_utf8_lossy(s).into_owned();
                        inner = &inner[n..];
                    }
                    _ => skip(&mut inner, w)?,
                }
            }
        } else {
            skip(&mut buf, wire)?;
        }
    }
    Some(out)
}

fn read_key(buf: &mut &[u8]) -> Option<(u64, u8)> {
    let key = read_varint(buf)?;
    Some((key >> 3, (key & 7) as u8))
}

fn read_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn skip(buf: &mut &[u8], wire: u8) -> Option<()> {
    let n = match wire {
        0 => {
            read_varint(buf)?;
            0
        }
        1 => 8,
        2 => read_varint(buf)? as usize,
        5 => 4,
        _ => return None,
    };
    *buf = buf.get(n..)?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_success_is_read_from_the_answer() {
        // partial_success { rejected_spans: 3, error_message: "too old" }
        let mut inner = vec![0x08, 0x03, 0x12, 0x07];
        inner.extend_from_slice(b"too old");
        let mut answer = vec![0x0a, inner.len() as u8];
        answer.extend_from_slice(&inner);
        assert_eq!(
            decode_partial_success(&answer),
            Some(PartialSuccess {
                rejected_spans: 3,
                error_message: "too old".into()
            })
        );
        assert_eq!(decode_partial_success(&[]), Some(PartialSuccess::default()));
        assert_eq!(decode_partial_success(b"{\"partialSuccess\":{}}"), None);
    }
}
