//! gzip of OTLP request bodies (`OTEL_EXPORTER_OTLP_COMPRESSION=gzip`).
//!
//! Over gRPC tonic compresses each message itself, at a fixed level 6
//! (tonic 0.14 `codec/compression.rs`); the HTTP path uses the same level,
//! so both transports send the same bytes for the same batch and the
//! figures in docs/performance.md hold for both.

use std::io::Write;

/// The gzip level of both transports (tonic's, which cannot be changed).
pub const GZIP_LEVEL: u32 = 6;

/// `body` gzip-compressed at [`GZIP_LEVEL`].
pub fn gzip(body: &[u8]) -> Vec<u8> {
    gzip_at(body, GZIP_LEVEL)
}

/// `body` gzip-compressed at `level` (0–9; the benchmark compares levels).
pub fn gzip_at(body: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::new(level),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = b"resource spans resource spans resource spans".repeat(50);
        let packed = super::gzip(&body);
        assert!(packed.len() < body.len() / 5, "{}", packed.len());
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, body);
    }
}
