//! RED of every HTTP request, counted by the server layer and the client
//! middleware whatever the sampling decided (autobot-metrics' `http` and,
//! for the SERVER spans, its spanmetrics series). A sampled request's trace
//! id becomes the exemplar of its histogram bucket.

use std::time::Instant;

use autobot_metrics::TraceId;
use autobot_metrics::http::{ClientPeer, ServerRoute};
use axum::extract::MatchedPath;
use http::Request;
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;

use super::client::known_method;

/// `error.type` of a client call whose caller stopped waiting (its future
/// was dropped: a timeout around the call, a cancelled task).
pub const CANCELLED: &str = "cancelled";

/// The trace id of `cx` when its span is sampled (an exemplar), else `None`.
pub(crate) fn exemplar(cx: &Context) -> Option<TraceId> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_sampled()
        .then(|| TraceId(u128::from_be_bytes(sc.trace_id().to_bytes())))
}

/// A server request being timed.
pub(crate) struct ServerRequest {
    route: &'static ServerRoute,
    started: Instant,
}

impl ServerRequest {
    /// `None` when metrics are off. `traced`: the request has a SERVER span
    /// (whatever the sampling), so it counts in the spanmetrics series too.
    #[inline]
    pub(crate) fn start<B>(req: &Request<B>, traced: bool) -> Option<Self> {
        if !autobot_metrics::enabled() {
            return None;
        }
        let method = known_method(req.method()).unwrap_or("_OTHER");
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        Some(Self {
            route: autobot_metrics::http::server().route(method, route, traced),
            started: Instant::now(),
        })
    }

    /// Counts the request: answered with `status`, or failed (`None`).
    #[inline]
    pub(crate) fn finish(self, status: Option<u16>, cx: Option<&Context>) {
        self.route
            .record(status, self.started.elapsed(), cx.and_then(exemplar));
    }
}

/// A client call being timed; dropped unfinished, it counts as [`CANCELLED`].
pub(crate) struct ClientRequest {
    peer: &'static ClientPeer,
    started: Instant,
    done: bool,
}

impl ClientRequest {
    #[inline]
    pub(crate) fn start(method: &'static str, url: &url::Url) -> Option<Self> {
        if !autobot_metrics::enabled() {
            return None;
        }
        let peer = autobot_metrics::http::client().peer(
            method,
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default(),
        );
        Some(Self {
            peer,
            started: Instant::now(),
            done: false,
        })
    }

    /// Counts the call as it ended.
    pub(crate) fn finish(
        mut self,
        outcome: &reqwest_middleware::Result<reqwest::Response>,
        cx: Option<&Context>,
    ) {
        self.done = true;
        let (status, error_type) = match outcome {
            Ok(response) => (Some(response.status().as_u16()), ""),
            Err(e) => (None, super::classify(e).0),
        };
        self.peer.record(
            status,
            error_type,
            self.started.elapsed(),
            cx.and_then(exemplar),
        );
    }
}

impl Drop for ClientRequest {
    fn drop(&mut self) {
        if !self.done {
            self.peer
                .record(None, CANCELLED, self.started.elapsed(), None);
        }
    }
}
