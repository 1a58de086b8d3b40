//! The gRPC `TraceService` (requests plain or `grpc-encoding: gzip`), written
//! by hand so that its codec hands over the request's bytes: [`SpanBatch::from_protobuf`] checks and indexes them in
//! one pass, instead of prost building (and the sink dropping) a struct per
//! span, id, attribute, key and value.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::{Code, Status};

use crate::{MAX_BODY_BYTES, SpanBatch, SpanSink};

/// `opentelemetry.proto.collector.trace.v1.TraceService`.
pub const SERVICE_NAME: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The OTLP/gRPC trace service; refuses a malformed request whole with
/// `InvalidArgument` and a reason.
#[derive(Clone)]
pub struct GrpcTraceService {
    sink: Arc<dyn SpanSink>,
}

impl GrpcTraceService {
    pub fn new(sink: Arc<dyn SpanSink>) -> Self {
        Self { sink }
    }
}

impl tonic::server::NamedService for GrpcTraceService {
    const NAME: &'static str = SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for GrpcTraceService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            // What tonic's generated servers answer for an unknown method.
            return Box::pin(async {
                Ok(Status::new(Code::Unimplemented, "").into_http::<tonic::body::Body>())
            });
        }
        let export = Export(self.sink.clone());
        Box::pin(async move {
            // gzip-compressed messages are accepted; the limit holds after
            // decompression (tonic stops inflating at it).
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .max_decoding_message_size(MAX_BODY_BYTES)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            Ok(grpc.unary(export, request).await)
        })
    }
}

struct Export(Arc<dyn SpanSink>);

impl tonic::server::UnaryService<Vec<u8>> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        let result = SpanBatch::from_protobuf(request.into_inner())
            .map(|batch| {
                self.0.accept(batch);
                tonic::Response::new(ExportTraceServiceResponse {
                    partial_success: None,
                })
            })
            .map_err(|refused| Status::invalid_argument(refused.to_string()));
        std::future::ready(result)
    }
}

/// Requests as their bytes (one exact-size copy), responses through prost.
struct RawCodec;

impl Codec for RawCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes_buf::Buf;
        // An exact-size copy: what is stored keeps no spare capacity of
        // tonic's receive buffer alive.
        let mut bytes = Vec::with_capacity(src.remaining());
        while src.has_remaining() {
            let chunk = src.chunk();
            bytes.extend_from_slice(chunk);
            let n = chunk.len();
            src.advance(n);
        }
        Ok(Some(bytes))
    }
}

/// `bytes::Buf`, through prost's re-export (no extra dependency).
mod bytes_buf {
    pub use prost::bytes::Buf;
}
