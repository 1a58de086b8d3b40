//! The caller's context at a public edge: a caller's trace is continued
//! (its `traceparent` or B3 ids make our SERVER span its child), but its
//! `tracestate` and `baggage` are dropped unless it connects from a trusted
//! network. They are free text that every service passes on (to Redis jobs,
//! to SSH command environments, to web sites) and that vendors' code reads;
//! a stranger on the internet has no business putting any there.
//!
//! The layer goes OUTSIDE the server layer (`Router::layer` after
//! `autobot_lifecycle::http::service_router`), so the headers are gone
//! before the context is extracted. The caller's address is the TCP peer
//! (axum's `ConnectInfo<SocketAddr>`, which the shared runner provides);
//! without one, the caller is not trusted. Forwarding headers
//! (`X-Forwarded-For`, `Forwarded`) are not read: anyone can write them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::extract::ConnectInfo;
use http::Request;
use ipnet::IpNet;

/// Networks whose callers keep their `tracestate` and `baggage`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedNetworks(Vec<IpNet>);

impl TrustedNetworks {
    /// A comma- (or space-) separated list of networks (`10.0.0.0/8`) or
    /// addresses (`172.16.168.21`); empty for none.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{item:?} is not a network like 172.16.168.0/24 or an address")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The networks, as CIDR text.
    pub fn networks(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// Whether `addr` (an IPv4-mapped IPv6 address counts as its IPv4
    /// address) is in one of the networks.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }
}

/// The layer: see the module's text.
#[derive(Clone, Debug, Default)]
pub struct CallerContextLayer {
    trusted: Arc<TrustedNetworks>,
}

/// Drops `tracestate` and `baggage` from callers outside `trusted`.
pub fn caller_context_layer(trusted: TrustedNetworks) -> CallerContextLayer {
    CallerContextLayer {
        trusted: Arc::new(trusted),
    }
}

impl<S> tower::Layer<S> for CallerContextLayer {
    type Service = CallerContext<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CallerContext {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

/// The service [`CallerContextLayer`] wraps.
#[derive(Clone, Debug)]
pub struct CallerContext<S> {
    inner: S,
    trusted: Arc<TrustedNetworks>,
}

impl<S, B> tower::Service<Request<B>> for CallerContext<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let trusted = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| self.trusted.contains(peer.ip()));
        if !trusted {
            let headers = req.headers_mut();
            headers.remove("tracestate");
            headers.remove("baggage");
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_and_addresses_are_trusted_and_nothing_else() {
        let t = TrustedNetworks::parse("172.16.168.0/24, 10.1.2.3 fd00::/8").unwrap();
        assert!(t.contains(ip("172.16.168.21")));
        assert!(t.contains(ip("::ffff:172.16.168.21")), "IPv4-mapped");
        assert!(!t.contains(ip("172.16.169.1")));
        assert!(t.contains(ip("10.1.2.3")));
        assert!(!t.contains(ip("10.1.2.4")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        let all = TrustedNetworks::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(
            !all.contains(ip("::1")),
            "an IPv4 network holds no IPv6 address"
        );
        assert!(TrustedNetworks::parse("").unwrap().is_empty());
        for bad in ["10.0.0.0/33", "frontend", "10.0.0.0/", "::/129"] {
            assert!(TrustedNetworks::parse(bad).is_err(), "{bad}");
        }
    }

    /// What reaches the service behind the layer from `peer`.
    async fn passed_on(peer: Option<&str>) -> http::HeaderMap {
        use tower::{Layer as _, ServiceExt as _};
        let layer = caller_context_layer(TrustedNetworks::parse("10.0.0.0/8").unwrap());
        let echo = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(req.headers().clone())
        });
        let mut req = Request::get("/")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .header("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1")
            .header("tracestate", "vendor=x")
            .header("baggage", "user=y")
            .body(())
            .unwrap();
        if let Some(peer) = peer {
            let addr: SocketAddr = peer.parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(addr));
        }
        layer.layer(echo).oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn strangers_keep_their_trace_but_lose_tracestate_and_baggage() {
        for stranger in [Some("203.0.113.9:5000"), Some("[::1]:5000"), None] {
            let h = passed_on(stranger).await;
            assert!(
                h.contains_key("traceparent") && h.contains_key("b3"),
                "{stranger:?}"
            );
            assert!(!h.contains_key("tracestate"), "{stranger:?}");
            assert!(!h.contains_key("baggage"), "{stranger:?}");
        }
        let h = passed_on(Some("10.9.8.7:5000")).await;
        assert_eq!(h["tracestate"], "vendor=x");
        assert_eq!(h["baggage"], "user=y");
    }
}
