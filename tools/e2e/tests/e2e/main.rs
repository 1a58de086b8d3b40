//! End-to-end: every service a real process, real Redis, real sshd, spans
//! exported over OTLP to the trace tool and read back through its Jaeger API.
//! Run by `scripts/test.sh` (which builds every binary and fetches the model).

mod distribution;
mod metrics;
mod mutual_tls;
mod otlp_tls;
mod page;
mod redis_acl;
mod research;
mod sampling;
mod shutdown;
mod startup;
