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
//! Over https, the receiver's certificate is checked against the CA of
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` and the client certificate of
//! `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` is presented (autobot-tls, which
//! re-reads the files when they change; gRPC then connects through rustls
//! itself, since tonic's own TLS is fixed when the channel is made); without
//! them, against the system's roots.
//!
//! Bodies are gzip-compressed when `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`
//! (tonic's `grpc-encoding: gzip`; `Content-Encoding: gzip` on HTTP).
//!
//! Retries follow the OTLP specification (opentelemetry-proto
//! `docs/specification.md`, "Failures", "Throttling"): gRPC CANCELLED,
//! DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are
//! retried, RESOURCE_EXHAUSTED only when the server sends `RetryInfo`, any
//! other code never; HTTP 429, 502, 503 and 504 (and no connection or no
//! answer) are retried, any other status never. The server's delay is
//! honoured (gRPC `RetryInfo.retry_delay`, HTTP `Retry-After` in seconds or
//! as an HTTP-date); otherwise exponential backoff from 100 ms with jitter.
//! Everything, attempts and waits, stays within the export timeout (each
//! attempt gets what is left of it): a wait that would pass it ends the
//! export as failed instead. At most 3 retries. A partial success that
//! rejects spans is an accepted request: not retried, the rejected spans
//! are counted as failed and the receiver's message is logged.

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
use super::compress::gzip;
use super::encode::TraceEncoder;
use crate::config::Compression;

const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const USER_AGENT: &str = concat!("autobot-tracing/", env!("CARGO_PKG_VERSION"));

const MAX_RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_millis(1600);

/// The OTLP span exporter `build_otlp` installs.
pub(crate) struct OtlpExporter {
    encoder: TraceEncoder,
    transport: Transport,
    compression: Compression,
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
        /// The TLS files of OTEL_EXPORTER_OTLP_*CERTIFICATE/_KEY.
        files: Option<Arc<autobot_tls::TlsSource>>,
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
            .field("compression", &self.compression)
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
    retry: Retry,
}

/// Whether, and when, a failed attempt may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Never (the spec's non-retryable answers).
    No,
    /// After the exponential backoff.
    Backoff,
    /// After the delay the server asked for.
    After(Duration),
}

impl Failure {
    fn permanent(message: String) -> Self {
        Self {
            message,
            retry: Retry::No,
        }
    }
    fn transient(message: String) -> Self {
        Self {
            message,
            retry: Retry::Backoff,
        }
    }
}

impl OtlpExporter {
    /// gRPC to `endpoint`; needs a tokio runtime (tonic spawns its worker there).
    pub(crate) fn grpc(
        endpoint: &str,
        tls: bool,
        files: Option<Arc<autobot_tls::TlsSource>>,
        metadata: tonic::metadata::MetadataMap,
        compression: Compression,
        timeout: Duration,
        counters: Arc<ExportCounters>,
    ) -> Result<Self, String> {
        let invalid = |e: &dyn fmt::Display| format!("invalid gRPC endpoint {endpoint}: {e}");
        // With our TLS files the channel's own URI says http://, so that
        // tonic does not ask for its TLS; the origin keeps `https` for the
        // requests' `:scheme`, and the connector makes the TLS connection.
        let uri = match &files {
            Some(_) => endpoint.replacen("https://", "http://", 1),
            None => endpoint.to_owned(),
        };
        let mut ep = tonic::transport::Endpoint::from_shared(uri)
            .map_err(|e| invalid(&e))?
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .map_err(|e| e.to_string())?;
        let channel = match files {
            Some(files) => {
                let origin: http::Uri = endpoint.parse().map_err(|e| invalid(&e))?;
                ep.origin(origin)
                    .connect_with_connector_lazy(tls_connector(files))
            }
            None => {
                if tls {
                    ep = ep
                        .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                        .map_err(|e| format!("TLS for {endpoint}: {e}"))?;
                }
                ep.connect_lazy()
            }
        };
        let mut client = tonic::client::Grpc::new(channel);
        if compression == Compression::Gzip {
            client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        Ok(Self::new(
            Transport::Grpc { client, metadata },
            compression,
            timeout,
            counters,
        ))
    }

    /// HTTP/protobuf: POST to `url` (the full OTLP traces URL).
    pub(crate) fn http(
        url: &str,
        headers: reqwest::header::HeaderMap,
        files: Option<Arc<autobot_tls::TlsSource>>,
        compression: Compression,
        timeout: Duration,
        counters: Arc<ExportCounters>,
    ) -> Self {
        Self::new(
            Transport::Http {
                url: url.to_owned(),
                headers,
                files,
                client: Mutex::new(None),
            },
            compression,
            timeout,
            counters,
        )
    }

    fn new(
        transport: Transport,
        compression: Compression,
        timeout: Duration,
        counters: Arc<ExportCounters>,
    ) -> Self {
        Self {
            encoder: TraceEncoder::default(),
            transport,
            compression,
            timeout,
            counters,
            last_len: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
        }
    }

    /// The request body: encoded, and for HTTP gzip-compressed when asked
    /// (tonic compresses gRPC messages itself).
    fn encode(&self, batch: &[SpanData]) -> Bytes {
        let hint = self.last_len.load(Ordering::Relaxed);
        let mut body = Vec::with_capacity(hint + hint / 8);
        self.encoder.encode(batch, &mut body);
        self.last_len.store(body.len(), Ordering::Relaxed);
        match (&self.transport, self.compression) {
            (Transport::Http { .. }, Compression::Gzip) => Bytes::from(gzip(&body)),
            _ => Bytes::from(body),
        }
    }

    async fn send_once(
        &self,
        body: &Bytes,
        time_left: Duration,
    ) -> Result<PartialSuccess, Failure> {
        match &self.transport {
            Transport::Grpc { client, metadata } => {
                send_grpc(client.clone(), metadata.clone(), body.clone(), time_left).await
            }
            Transport::Http {
                url,
                headers,
                files,
                client,
            } => self.send_http(client, files, url, headers, body, time_left),
        }
    }

    fn send_http(
        &self,
        client: &Mutex<Option<reqwest::blocking::Client>>,
        files: &Option<Arc<autobot_tls::TlsSource>>,
        url: &str,
        headers: &reqwest::header::HeaderMap,
        body: &Bytes,
        time_left: Duration,
    ) -> Result<PartialSuccess, Failure> {
        let client = {
            let mut slot = client.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(c) => c.clone(),
                None => {
                    let mut builder = reqwest::blocking::Client::builder()
                        .timeout(self.timeout)
                        .user_agent(USER_AGENT);
                    if let Some(files) = files {
                        builder = builder.tls_backend_preconfigured(
                            autobot_tls::client::client_config(files.clone(), &[b"http/1.1"]),
                        );
                    }
                    let c = builder.build().map_err(|e| {
                        Failure::permanent(format!("building the HTTP client: {e}"))
                    })?;
                    *slot = Some(c.clone());
                    c
                }
            }
        };
        let mut request = client
            .post(url)
            .headers(headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .timeout(time_left)
            .body(body.clone());
        if self.compression == Compression::Gzip {
            request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        // No connection, or no answer: retried (spec: "OTLP/HTTP Connection").
        let response = request.send().map_err(|e| Failure {
            retry: if e.is_builder() {
                Retry::No
            } else {
                Retry::Backoff
            },
            message: crate::error_chain(&e),
        })?;
        let status = response.status();
        if !status.is_success() {
            let retry = match status.as_u16() {
                429 | 502 | 503 | 504 => response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, std::time::SystemTime::now()))
                    .map_or(Retry::Backoff, Retry::After),
                _ => Retry::No,
            };
            return Err(Failure {
                message: format!("HTTP {status} from {url}"),
                retry,
            });
        }
        // An answer that is not an ExportTraceServiceResponse (an empty body,
        // JSON from a proxy) still means accepted.
        let answer = response.bytes().unwrap_or_default();
        Ok(decode_partial_success(&answer).unwrap_or_default())
    }
}

type TlsIo = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A connector that makes TLS connections with rustls over the files'
/// current version (ALPN h2, as gRPC servers require).
#[derive(Clone)]
struct TlsConnector(Arc<rustls::ClientConfig>);

fn tls_connector(files: Arc<autobot_tls::TlsSource>) -> TlsConnector {
    TlsConnector(Arc::new(autobot_tls::client::client_config(
        files,
        &[b"h2"],
    )))
}

impl tower::Service<http::Uri> for TlsConnector {
    type Response = TlsIo;
    type Error = std::io::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<TlsIo>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        Box::pin(connect_tls(uri, self.0.clone()))
    }
}

async fn connect_tls(uri: http::Uri, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsIo> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
    let host = uri
        .host()
        .ok_or_else(|| invalid("the endpoint has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| invalid("the endpoint's host is not a valid TLS server name"))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    Ok(hyper_util::rt::TokioIo::new(tls))
}

/// `Retry-After`: seconds, or an HTTP-date (the wait until then; a date in
/// the past means now). None when it is neither.
pub(crate) fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// What the OTLP specification says of a gRPC status: retried or not, and
/// after the server's `RetryInfo` delay when it sent one.
pub(crate) fn grpc_retry(code: tonic::Code, details: &[u8]) -> Retry {
    let info = retry_info_delay(details);
    // A zero delay asks for nothing: the usual backoff.
    let after = match info {
        Some(delay) if !delay.is_zero() => Retry::After(delay),
        _ => Retry::Backoff,
    };
    match code {
        tonic::Code::Cancelled
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Aborted
        | tonic::Code::OutOfRange
        | tonic::Code::Unavailable
        | tonic::Code::DataLoss => after,
        // Only when the server says it can recover, by sending RetryInfo.
        tonic::Code::ResourceExhausted if info.is_some() => after,
        _ => Retry::No,
    }
}

async fn send_grpc(
    mut client: tonic::client::Grpc<tonic::transport::Channel>,
    metadata: tonic::metadata::MetadataMap,
    body: Bytes,
    time_left: Duration,
) -> Result<PartialSuccess, Failure> {
    client
        .ready()
        .await
        .map_err(|e| Failure::transient(format!("gRPC channel: {e}")))?;
    let mut request = tonic::Request::new(body);
    *request.metadata_mut() = metadata;
    request.set_timeout(time_left);
    let path = http::uri::PathAndQuery::from_static(GRPC_EXPORT_PATH);
    match client.unary(request, path, PassThrough).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(Failure {
            retry: grpc_retry(status.code(), status.details()),
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
        let deadline = Instant::now() + self.timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut retries = 0;
        loop {
            let time_left = deadline.saturating_duration_since(Instant::now());
            let failure = match self.send_once(&body, time_left).await {
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
            let pause = match failure.retry {
                Retry::No => return Err(OTelSdkError::InternalFailure(failure.message)),
                Retry::Backoff => backoff + jitter(),
                Retry::After(delay) => delay,
            };
            if retries >= MAX_RETRIES {
                return Err(OTelSdkError::InternalFailure(format!(
                    "{} (after {retries} retries)",
                    failure.message
                )));
            }
            if Instant::now() + pause >= deadline {
                return Err(OTelSdkError::InternalFailure(format!(
                    "{} (not retried: waiting {pause:?} would pass the export timeout of {:?})",
                    failure.message, self.timeout
                )));
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

/// `RetryInfo.retry_delay` from a gRPC status's details (the bytes of
/// `grpc-status-details-bin`, a `google.rpc.Status`: `details` (3) are
/// `Any { type_url (1), value (2) }`; `RetryInfo { retry_delay (1):
/// Duration { seconds (1), nanos (2) } }`). None without a RetryInfo.
pub(crate) fn retry_info_delay(mut status: &[u8]) -> Option<Duration> {
    const RETRY_INFO: &[u8] = b"type.googleapis.com/google.rpc.RetryInfo";
    while !status.is_empty() {
        let (field, wire) = read_key(&mut status)?;
        if !(field == 3 && wire == 2) {
            skip(&mut status, wire)?;
            continue;
        }
        let mut any = read_bytes(&mut status)?;
        let (mut type_url, mut value): (&[u8], &[u8]) = (&[], &[]);
        while !any.is_empty() {
            match read_key(&mut any)? {
                (1, 2) => type_url = read_bytes(&mut any)?,
                (2, 2) => value = read_bytes(&mut any)?,
                (_, w) => skip(&mut any, w)?,
            }
        }
        if type_url != RETRY_INFO {
            continue;
        }
        let mut delay = Duration::ZERO;
        while !value.is_empty() {
            match read_key(&mut value)? {
                (1, 2) => {
                    let mut duration = read_bytes(&mut value)?;
                    let (mut seconds, mut nanos) = (0i64, 0i64);
                    while !duration.is_empty() {
                        match read_key(&mut duration)? {
                            (1, 0) => seconds = read_varint(&mut duration)? as i64,
                            (2, 0) => nanos = i64::from(read_varint(&mut duration)? as i32),
                            (_, w) => skip(&mut duration, w)?,
                        }
                    }
                    let nanos = seconds.max(0).saturating_mul(1_000_000_000) + nanos.max(0);
                    delay = Duration::from_nanos(nanos as u64);
                }
                (_, w) => skip(&mut value, w)?,
            }
        }
        return Some(delay);
    }
    None
}

fn read_bytes<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = read_varint(buf)? as usize;
    let (bytes, rest) = (buf.get(..len)?, buf.get(len..)?);
    *buf = rest;
    Some(bytes)
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

    /// A `google.rpc.Status` with a RetryInfo of 1.5 s among its details.
    fn status_with_retry_info(seconds: u8, nanos: u32) -> Vec<u8> {
        let mut duration = vec![0x08, seconds, 0x10];
        let mut n = nanos;
        while n >= 0x80 {
            duration.push((n as u8) | 0x80);
            n >>= 7;
        }
        duration.push(n as u8);
        let mut retry_info = vec![0x0a, duration.len() as u8];
        retry_info.extend(duration);
        let mut any = vec![0x0a, 40];
        any.extend_from_slice(b"type.googleapis.com/google.rpc.RetryInfo");
        any.push(0x12);
        any.push(retry_info.len() as u8);
        any.extend(retry_info);
        let mut other = vec![0x0a, 3];
        other.extend_from_slice(b"x/y");
        let mut status = vec![0x08, 14, 0x12, 4];
        status.extend_from_slice(b"busy");
        for detail in [other, any] {
            status.push(0x1a);
            status.push(detail.len() as u8);
            status.extend(detail);
        }
        status
    }

    #[test]
    fn retry_info_is_read_from_the_status_details() {
        assert_eq!(
            retry_info_delay(&status_with_retry_info(1, 500_000_000)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_info_delay(&[0x08, 14]), None, "no details");
        assert_eq!(retry_info_delay(&[0xff]), None, "garbage");
    }

    #[test]
    fn grpc_codes_as_the_otlp_spec_says() {
        use tonic::Code;
        let info = status_with_retry_info(2, 0);
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert_eq!(grpc_retry(code, &[]), Retry::Backoff, "{code:?}");
            assert_eq!(
                grpc_retry(code, &info),
                Retry::After(Duration::from_secs(2)),
                "{code:?}"
            );
        }
        assert_eq!(grpc_retry(Code::ResourceExhausted, &[]), Retry::No);
        assert_eq!(
            grpc_retry(Code::ResourceExhausted, &status_with_retry_info(0, 0)),
            Retry::Backoff,
            "RetryInfo without a delay: retryable, with the usual backoff"
        );
        assert_eq!(
            grpc_retry(Code::ResourceExhausted, &info),
            Retry::After(Duration::from_secs(2))
        );
        for code in [
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::Internal,
        ] {
            assert_eq!(grpc_retry(code, &info), Retry::No, "{code:?}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }
}
