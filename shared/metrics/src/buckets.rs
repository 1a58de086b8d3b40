//! Bucket boundaries, in base units (nanoseconds for durations).
//!
//! The semantic conventions fix the HTTP and GenAI ones; the spanmetrics
//! ones are the OpenTelemetry Collector spanmetrics connector's defaults
//! (`defaultHistogramBucketsMs` in its config.go), which is what Jaeger's
//! Monitor tab is used to. The HTTP server keeps ONE storage on the union
//! of the HTTP and spanmetrics bounds and shows it both ways.

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// `http.server.request.duration` / `http.client.request.duration` (semconv), in ns.
pub static HTTP: [u64; 14] = [
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    75 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    750 * MS,
    S,
    2500 * MS,
    5 * S,
    7500 * MS,
    10 * S,
];

/// The spanmetrics connector's default duration buckets, in ns.
pub static SPANMETRICS: [u64; 16] = [
    2 * MS,
    4 * MS,
    6 * MS,
    8 * MS,
    10 * MS,
    50 * MS,
    100 * MS,
    200 * MS,
    400 * MS,
    800 * MS,
    S,
    1400 * MS,
    2 * S,
    5 * S,
    10 * S,
    15 * S,
];

/// The HTTP server's storage: every bound of [`HTTP`] and [`SPANMETRICS`].
pub static HTTP_AND_SPANMETRICS: [u64; 24] = [
    2 * MS,
    4 * MS,
    5 * MS,
    6 * MS,
    8 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    75 * MS,
    100 * MS,
    200 * MS,
    250 * MS,
    400 * MS,
    500 * MS,
    750 * MS,
    800 * MS,
    S,
    1400 * MS,
    2 * S,
    2500 * MS,
    5 * S,
    7500 * MS,
    10 * S,
    15 * S,
];

/// `gen_ai.client.operation.duration` (semconv), in ns.
pub static GEN_AI_DURATION: [u64; 14] = [
    10 * MS,
    20 * MS,
    40 * MS,
    80 * MS,
    160 * MS,
    320 * MS,
    640 * MS,
    1280 * MS,
    2560 * MS,
    5120 * MS,
    10240 * MS,
    20480 * MS,
    40960 * MS,
    81920 * MS,
];

/// `gen_ai.client.token.usage` (semconv), in tokens.
pub static GEN_AI_TOKENS: [u64; 14] = [
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304, 16_777_216,
    67_108_864,
];

/// Background jobs and exports: the HTTP bounds stretched to a minute, in ns.
pub static JOB: [u64; 16] = [
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    S,
    2500 * MS,
    5 * S,
    10 * S,
    15 * S,
    30 * S,
    60 * S,
    120 * S,
    300 * S,
];

/// Nanoseconds per second and per millisecond, the scales views show durations in.
pub const SECONDS: f64 = 1e9;
pub const MILLISECONDS: f64 = 1e6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_storage_holds_every_shown_bound_and_ascends() {
        for b in HTTP.iter().chain(&SPANMETRICS) {
            assert!(HTTP_AND_SPANMETRICS.contains(b), "{b}");
        }
        let mut union: Vec<u64> = HTTP.iter().chain(&SPANMETRICS).copied().collect();
        union.sort_unstable();
        union.dedup();
        assert_eq!(union, HTTP_AND_SPANMETRICS);
        for bounds in [
            &HTTP[..],
            &SPANMETRICS,
            &GEN_AI_DURATION,
            &GEN_AI_TOKENS,
            &JOB,
        ] {
            assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
