//! RED of HTTP, as the OpenTelemetry semantic conventions name it:
//! `http.server.request.duration` and `http.client.request.duration`,
//! histograms in seconds, shown as `http_server_request_duration_seconds_*`
//! and `http_client_request_duration_seconds_*`.
//!
//! A request resolves its route (server) or peer (client) when it starts,
//! and its outcome (status code, `error.type`) when it ends, each a lookup
//! in a lock-free table; then its duration is one bucket `fetch_add`.

use std::sync::OnceLock;
use std::time::Duration;

use crate::buckets::{self, HTTP, HTTP_AND_SPANMETRICS};
use crate::expo::{Kind, View, Writer, render_labels};
use crate::histogram::{Histogram, Snapshot, TraceId};
use crate::table::{Fnv, Table};
use crate::{Collect, register};

/// `error.type` of a request that ended without a response.
pub const OTHER_ERROR: &str = "_OTHER";

const ROUTES: usize = 256;
const OUTCOMES: usize = 16;

/// How a request ended: a status code (0 when there was none) and, with no
/// status, the class of the failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    error_type: &'static str,
}

/// Histograms by outcome, for one route or one peer.
pub struct Outcomes {
    bounds: &'static [u64],
    table: Table<Outcome, Histogram>,
}

impl Outcomes {
    fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            table: Table::new(OUTCOMES, Histogram::new(bounds)),
        }
    }

    #[inline]
    fn record(&self, outcome: Outcome, elapsed: Duration, exemplar: Option<TraceId>) {
        let hash = Fnv::default()
            .u64(u64::from(outcome.status))
            .bytes(outcome.error_type.as_bytes())
            .finish();
        self.table
            .get_or_insert(
                hash,
                |o| *o == outcome,
                || (outcome, Histogram::new(self.bounds)),
            )
            .observe_duration(elapsed, exemplar);
    }

    fn snapshots(&self) -> impl Iterator<Item = (Outcome, Snapshot)> + '_ {
        self.table.entries().map(|(o, h)| (*o, h.snapshot()))
    }
}

/// One route of one method on the server.
pub struct ServerRoute {
    pub method: &'static str,
    pub route: Option<Box<str>>,
    /// Whether its requests have a SERVER span (all but the untraced paths,
    /// such as `/health`, called without a trace): only those count in the
    /// spanmetrics series.
    pub traced: bool,
    outcomes: Outcomes,
}

impl ServerRoute {
    /// Counts a request that got a response with `status` (a 5xx is an
    /// error, `error.type` its code), or none (`status` `None`: `_OTHER`).
    #[inline]
    pub fn record(&self, status: Option<u16>, elapsed: Duration, exemplar: Option<TraceId>) {
        if !crate::enabled() {
            return;
        }
        let outcome = match status {
            Some(status) => Outcome {
                status,
                error_type: "",
            },
            None => Outcome {
                status: 0,
                error_type: OTHER_ERROR,
            },
        };
        self.outcomes.record(outcome, elapsed, exemplar);
    }

    /// The SERVER span's name: `{METHOD} {route}` (`HTTP` for `_OTHER`).
    pub fn span_name(&self) -> String {
        let method = if self.method == OTHER_ERROR {
            "HTTP"
        } else {
            self.method
        };
        match &self.route {
            Some(route) => format!("{method} {route}"),
            None => method.to_owned(),
        }
    }

    /// Per outcome: whether it is an error (a 5xx or no response), and its snapshot.
    pub(crate) fn snapshots(&self) -> impl Iterator<Item = (bool, Snapshot)> + '_ {
        self.outcomes
            .snapshots()
            .map(|(o, s)| (o.status == 0 || o.status >= 500, s))
    }
}

/// Every route the server saw.
pub struct ServerMetrics {
    routes: Table<(&'static str, Option<Box<str>>, bool), ServerRoute>,
}

/// The process's HTTP server metrics.
pub fn server() -> &'static ServerMetrics {
    static SERVER: OnceLock<&'static ServerMetrics> = OnceLock::new();
    SERVER.get_or_init(|| {
        register("http_server_request_duration_seconds", || ServerMetrics {
            routes: Table::new(
                ROUTES,
                ServerRoute {
                    method: OTHER_ERROR,
                    route: None,
                    traced: true,
                    outcomes: Outcomes::new(&HTTP_AND_SPANMETRICS),
                },
            ),
        })
    })
}

impl ServerMetrics {
    /// The route a request is counted under: its method as semconv names it
    /// (`_OTHER` for one it does not know), its matched route (never the raw
    /// path: `None` when no route matched) and whether it is traced.
    #[inline]
    pub fn route(&self, method: &'static str, route: Option<&str>, traced: bool) -> &ServerRoute {
        let hash = Fnv::default()
            .bytes(method.as_bytes())
            .bytes(route.unwrap_or("\0").as_bytes())
            .u64(u64::from(traced))
            .finish();
        self.routes.get_or_insert(
            hash,
            |(m, r, t)| *m == method && r.as_deref() == route && *t == traced,
            || {
                let owned: Option<Box<str>> = route.map(Into::into);
                (
                    (method, owned.clone(), traced),
                    ServerRoute {
                        method,
                        route: owned,
                        traced,
                        outcomes: Outcomes::new(&HTTP_AND_SPANMETRICS),
                    },
                )
            },
        )
    }

    pub(crate) fn routes(&self) -> impl Iterator<Item = &ServerRoute> {
        self.routes.entries().map(|(_, r)| r)
    }
}

impl Collect for ServerMetrics {
    fn collect(&self, out: &mut Writer) {
        const NAME: &str = "http_server_request_duration_seconds";
        out.family(
            NAME,
            "Duration of HTTP server requests (every request, whatever the trace sampling).",
            Kind::Histogram,
        );
        let view = View {
            bounds: &HTTP,
            scale: buckets::SECONDS,
        };
        for route in self.routes() {
            for (outcome, snapshot) in route.outcomes.snapshots() {
                let status = outcome.status.to_string();
                let mut labels = vec![("http_request_method", route.method)];
                if let Some(r) = &route.route {
                    labels.push(("http_route", r));
                }
                if outcome.status != 0 {
                    labels.push(("http_response_status_code", &status));
                }
                if !outcome.error_type.is_empty() {
                    labels.push(("error_type", outcome.error_type));
                } else if outcome.status >= 500 {
                    labels.push(("error_type", &status));
                }
                out.histogram(NAME, &render_labels(&labels), view, &snapshot);
            }
        }
    }
}

/// One peer (method, server address and port) of the process's clients.
pub struct ClientPeer {
    pub method: &'static str,
    pub address: Box<str>,
    pub port: u16,
    outcomes: Outcomes,
}

impl ClientPeer {
    /// Counts a call answered with `status` (a 4xx or 5xx is an error,
    /// `error.type` its code) or failed without an answer (`error_type`:
    /// `timeout`, `connect_error`, …).
    #[inline]
    pub fn record(
        &self,
        status: Option<u16>,
        error_type: &'static str,
        elapsed: Duration,
        exemplar: Option<TraceId>,
    ) {
        if !crate::enabled() {
            return;
        }
        let outcome = match status {
            Some(status) => Outcome {
                status,
                error_type: "",
            },
            None => Outcome {
                status: 0,
                error_type,
            },
        };
        self.outcomes.record(outcome, elapsed, exemplar);
    }
}

/// Every peer the process's HTTP clients called.
pub struct ClientMetrics {
    peers: Table<(&'static str, Box<str>, u16), ClientPeer>,
}

/// The process's HTTP client metrics. Peers past the table's capacity (a
/// browser fetching many sites) share the series `server_address="_OTHER"`.
pub fn client() -> &'static ClientMetrics {
    static CLIENT: OnceLock<&'static ClientMetrics> = OnceLock::new();
    CLIENT.get_or_init(|| {
        register("http_client_request_duration_seconds", || ClientMetrics {
            peers: Table::new(
                ROUTES,
                ClientPeer {
                    method: OTHER_ERROR,
                    address: OTHER_ERROR.into(),
                    port: 0,
                    outcomes: Outcomes::new(&HTTP),
                },
            ),
        })
    })
}

impl ClientMetrics {
    #[inline]
    pub fn peer(&self, method: &'static str, address: &str, port: u16) -> &ClientPeer {
        let hash = Fnv::default()
            .bytes(method.as_bytes())
            .bytes(address.as_bytes())
            .u64(u64::from(port))
            .finish();
        self.peers.get_or_insert(
            hash,
            |(m, a, p)| *m == method && &**a == address && *p == port,
            || {
                (
                    (method, address.into(), port),
                    ClientPeer {
                        method,
                        address: address.into(),
                        port,
                        outcomes: Outcomes::new(&HTTP),
                    },
                )
            },
        )
    }
}

impl Collect for ClientMetrics {
    fn collect(&self, out: &mut Writer) {
        const NAME: &str = "http_client_request_duration_seconds";
        out.family(
            NAME,
            "Duration of HTTP client requests (every request, whatever the trace sampling).",
            Kind::Histogram,
        );
        let view = View {
            bounds: &HTTP,
            scale: buckets::SECONDS,
        };
        let overflow = std::iter::once(self.peers.overflow());
        for peer in self.peers.entries().map(|(_, p)| p).chain(overflow) {
            for (outcome, snapshot) in peer.outcomes.snapshots() {
                let status = outcome.status.to_string();
                let port = peer.port.to_string();
                let mut labels = vec![
                    ("http_request_method", peer.method),
                    ("server_address", &*peer.address),
                ];
                if peer.port != 0 {
                    labels.push(("server_port", &port));
                }
                if outcome.status != 0 {
                    labels.push(("http_response_status_code", &status));
                }
                if !outcome.error_type.is_empty() {
                    labels.push(("error_type", outcome.error_type));
                } else if outcome.status >= 400 {
                    labels.push(("error_type", &status));
                }
                out.histogram(NAME, &render_labels(&labels), view, &snapshot);
            }
        }
    }
}
