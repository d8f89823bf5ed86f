//! Bounded zlib inflate and deflate for message bodies (Java `UtilAll.uncompress` /
//! `compress`: a zlib stream with header and Adler-32 trailer).
//!
//! Inflating grows the output as data arrives, never by a length read from the input, and
//! stops once the output passes the caller's limit.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{Error, Result};

/// Output is grown in steps of this many bytes.
const CHUNK_LEN: usize = 32 * 1024;

/// Why [`inflate`] failed, before the caller adds the record offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InflateFailure {
    /// The output would exceed the limit.
    TooLarge,
    /// The stream is corrupt or ends early.
    Corrupt(String),
}

impl InflateFailure {
    pub(crate) fn into_error(self, offset: usize, limit: usize) -> Error {
        match self {
            Self::TooLarge => Error::DecompressedTooLarge { offset, limit },
            Self::Corrupt(reason) => Error::Decompress { offset, reason },
        }
    }
}

/// Inflates one complete zlib stream from `input`, producing at most `limit` bytes. Bytes
/// after the end of the stream are ignored, as Java's `InflaterInputStream` does. Memory use
/// stays below about twice `limit`.
///
/// # Errors
///
/// [`Error::DecompressedTooLarge`] past `limit`, [`Error::Decompress`] for a corrupt or
/// truncated stream; both with offset 0.
pub fn inflate(input: &[u8], limit: usize) -> Result<Vec<u8>> {
    inflate_bounded(input, limit).map_err(|failure| failure.into_error(0, limit))
}

/// [`inflate`] with the failure not yet turned into an [`Error`].
pub(crate) fn inflate_bounded(input: &[u8], limit: usize) -> Result<Vec<u8>, InflateFailure> {
    let mut inflater = Decompress::new(true);
    let mut out = Vec::new();
    loop {
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        // One byte beyond the limit tells "exactly at the limit" from "over it".
        let room = limit.saturating_add(1).saturating_sub(out.len());
        if room == 0 {
            return Err(InflateFailure::TooLarge);
        }
        out.reserve(room.min(CHUNK_LEN));
        let before_in = inflater.total_in();
        let before_out = inflater.total_out();
        let status = inflater
            .decompress_vec(rest, &mut out, FlushDecompress::None)
            .map_err(|err| InflateFailure::Corrupt(err.to_string()))?;
        if out.len() > limit {
            return Err(InflateFailure::TooLarge);
        }
        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => {
                let progressed =
                    inflater.total_in() != before_in || inflater.total_out() != before_out;
                if !progressed && out.len() < out.capacity() {
                    return Err(InflateFailure::Corrupt(
                        "the zlib stream ends before its end marker".to_owned(),
                    ));
                }
            }
        }
    }
}

/// Deflates `input` as one zlib stream at `level` (0..=9; Java producers use 5).
#[must_use]
pub fn deflate(input: &[u8], level: u32) -> Vec<u8> {
    let mut deflater = Compress::new(Compression::new(level.min(9)), true);
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    loop {
        let consumed = usize::try_from(deflater.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        out.reserve(CHUNK_LEN);
        match deflater.compress_vec(rest, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return out,
            Ok(Status::Ok | Status::BufError) => {}
            // Compressing into a growing Vec with Finish cannot fail; return what we have
            // rather than panic, the reader will then report a truncated stream.
            Err(_) => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_respects_the_limit() {
        let body: Vec<u8> = (0..200_000_u32).map(|i| (i % 251) as u8).collect();
        let compressed = deflate(&body, 5);
        assert_eq!(inflate_bounded(&compressed, body.len()), Ok(body.clone()));
        assert_eq!(inflate_bounded(&compressed, body.len() - 1), Err(InflateFailure::TooLarge));
        assert_eq!(inflate_bounded(&deflate(b"", 5), 0), Ok(Vec::new()));
    }

    #[test]
    fn truncated_or_garbage_streams_fail() {
        let compressed = deflate(b"hello hello hello hello", 5);
        for len in 0..compressed.len() {
            let prefix = &compressed[..len];
            assert!(
                matches!(inflate_bounded(prefix, 1 << 20), Err(InflateFailure::Corrupt(_))),
                "prefix of {len} bytes"
            );
        }
        assert!(matches!(
            inflate_bounded(b"not zlib at all", 1 << 20),
            Err(InflateFailure::Corrupt(_))
        ));
    }

    #[test]
    fn ignores_bytes_after_the_stream() {
        let mut compressed = deflate(b"abc", 5);
        compressed.extend_from_slice(b"trailing");
        assert_eq!(inflate_bounded(&compressed, 100), Ok(b"abc".to_vec()));
    }
}
