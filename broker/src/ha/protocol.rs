//! The bytes of RocketMQ's classic HA connection (remoting.md §13): a raw TCP stream, no
//! remoting frames, big-endian.
//!
//! ```text
//! slave → master: offset report, 8 bytes, repeated
//!   0   8  i64  slaveMaxPhyOffset   the slave's CommitLog end (0 for an empty slave)
//!
//! master → slave: transfer frame, 12-byte header + body, repeated
//!   0   8  i64  masterPhyOffset     CommitLog offset of the first body byte
//!   8   4  i32  bodySize            0 for a heartbeat
//!  12   n       body                raw CommitLog bytes from masterPhyOffset (records may
//!                                   be cut anywhere; never crosses a CommitLog segment)
//! ```
//!
//! Pure: the reader and writer threads in `master` and `slave` do the I/O.

/// Bytes of an offset report.
pub const REPORT_SIZE: usize = 8;
const HEADER_OFFSET_POS: usize = 0;
const HEADER_BODY_SIZE_POS: usize = HEADER_OFFSET_POS + 8;
/// Bytes of a transfer frame header.
pub const HEADER_SIZE: usize = HEADER_BODY_SIZE_POS + 4;
const _: () = assert!(HEADER_SIZE == 12);
/// Largest body a slave accepts (the master's `haTransferBatchSize` is at most this).
pub const BODY_SIZE_MAX: usize = 64 << 20;

/// Encodes an offset report.
pub fn encode_report(offset: i64) -> [u8; REPORT_SIZE] {
    offset.to_be_bytes()
}

/// Encodes a transfer frame header.
pub fn encode_header(offset: i64, body_size: u32) -> [u8; HEADER_SIZE] {
    let mut header = [0u8; HEADER_SIZE];
    header[HEADER_OFFSET_POS..HEADER_BODY_SIZE_POS].copy_from_slice(&offset.to_be_bytes());
    header[HEADER_BODY_SIZE_POS..].copy_from_slice(&body_size.to_be_bytes());
    header
}

/// A malformed frame: the connection that sent it is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A negative CommitLog offset.
    #[error("HA frame at stream byte {at} has offset {offset}, expected >= 0")]
    NegativeOffset {
        /// Position of the frame in the stream.
        at: u64,
        /// The offset sent.
        offset: i64,
    },
    /// A body size outside `0..=BODY_SIZE_MAX`.
    #[error("HA frame at stream byte {at} has body size {size}, expected 0..={BODY_SIZE_MAX}")]
    BadBodySize {
        /// Position of the frame in the stream.
        at: u64,
        /// The size sent.
        size: i32,
    },
}

/// One complete transfer frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// CommitLog offset of the first body byte.
    pub offset: i64,
    /// Raw CommitLog bytes (empty for a heartbeat).
    pub body: &'a [u8],
}

/// Splits the master's stream into frames, keeping a partial frame until the rest arrives.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as frames.
    consumed: usize,
    /// Stream position of `buf[0]`, for error messages.
    stream_pos: u64,
}

impl FrameReader {
    /// Appends bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.consumed > 0 && self.consumed == self.buf.len() {
            self.stream_pos += self.consumed as u64;
            self.buf.clear();
            self.consumed = 0;
        } else if self.consumed >= 1 << 20 {
            self.stream_pos += self.consumed as u64;
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` until one has fully arrived.
    ///
    /// # Errors
    ///
    /// [`FrameError`] for a header no master sends; the stream cannot be resynchronised.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        let available = &self.buf[self.consumed..];
        if available.len() < HEADER_SIZE {
            return Ok(None);
        }
        let at = self.stream_pos + self.consumed as u64;
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&available[HEADER_OFFSET_POS..HEADER_BODY_SIZE_POS]);
        let offset = i64::from_be_bytes(offset);
        let mut size = [0u8; 4];
        size.copy_from_slice(&available[HEADER_BODY_SIZE_POS..HEADER_SIZE]);
        let size = i32::from_be_bytes(size);
        if offset < 0 {
            return Err(FrameError::NegativeOffset { at, offset });
        }
        let body_len = match usize::try_from(size) {
            Ok(len) if len <= BODY_SIZE_MAX => len,
            _ => return Err(FrameError::BadBodySize { at, size }),
        };
        if available.len() < HEADER_SIZE + body_len {
            return Ok(None);
        }
        let start = self.consumed + HEADER_SIZE;
        self.consumed = start + body_len;
        Ok(Some(Frame { offset, body: &self.buf[start..self.consumed] }))
    }

    /// Bytes received but not yet returned as frames.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.consumed
    }
}

/// Reads the slave's offset reports. RocketMQ's master keeps only the newest complete
/// report of each read; this hands out every one, in order.
#[derive(Debug, Default)]
pub struct ReportReader {
    partial: [u8; REPORT_SIZE],
    partial_len: usize,
}

impl ReportReader {
    /// Feeds bytes read from the socket and calls `on_report` for each complete report.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_report: impl FnMut(i64)) {
        while !bytes.is_empty() {
            let take = (REPORT_SIZE - self.partial_len).min(bytes.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&bytes[..take]);
            self.partial_len += take;
            bytes = &bytes[take..];
            if self.partial_len == REPORT_SIZE {
                self.partial_len = 0;
                on_report(i64::from_be_bytes(self.partial));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(offset: i64, body: &[u8]) -> Vec<u8> {
        let mut out = encode_header(offset, u32::try_from(body.len()).unwrap()).to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(encode_report(0x0102_0304_0506_0708), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            frame_bytes(1 << 30, b"ab"),
            [0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']
        );
        // A heartbeat: the next offset to transfer, no body.
        assert_eq!(encode_header(4096, 0), [0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut stream = frame_bytes(100, b"hello");
        stream.extend(frame_bytes(105, b""));
        stream.extend(frame_bytes(105, &[7u8; 3000]));
        for cut in 1..stream.len() {
            let mut reader = FrameReader::default();
            let mut frames = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                reader.extend(part);
                while let Some(frame) = reader.next_frame().unwrap() {
                    frames.push((frame.offset, frame.body.to_vec()));
                }
            }
            assert_eq!(frames.len(), 3, "cut at {cut}");
            assert_eq!(frames[0], (100, b"hello".to_vec()));
            assert_eq!(frames[1], (105, Vec::new()));
            assert_eq!(frames[2], (105, vec![7u8; 3000]));
            assert_eq!(reader.pending(), 0);
        }
    }

    #[test]
    fn bad_headers_are_errors_not_panics() {
        let mut reader = FrameReader::default();
        reader.extend(&encode_header(-1, 0));
        assert!(matches!(reader.next_frame(), Err(FrameError::NegativeOffset { at: 0, .. })));
        let mut reader = FrameReader::default();
        let mut header = encode_header(8, 0);
        header[8..].copy_from_slice(&(-5i32).to_be_bytes());
        reader.extend(&header);
        assert!(matches!(reader.next_frame(), Err(FrameError::BadBodySize { size: -5, .. })));
        let mut reader = FrameReader::default();
        reader.extend(&encode_header(8, u32::try_from(BODY_SIZE_MAX + 1).unwrap()));
        assert!(reader.next_frame().is_err());
        // Every strict prefix of a valid frame is "not yet".
        let stream = frame_bytes(9, b"xyz");
        for len in 0..stream.len() {
            let mut reader = FrameReader::default();
            reader.extend(&stream[..len]);
            assert_eq!(reader.next_frame(), Ok(None), "prefix of {len} bytes");
        }
    }

    #[test]
    fn reports_split_anywhere() {
        let mut bytes = Vec::new();
        for value in [0i64, 1, 1 << 40, i64::MAX] {
            bytes.extend_from_slice(&encode_report(value));
        }
        for cut in 0..=bytes.len() {
            let mut reader = ReportReader::default();
            let mut seen = Vec::new();
            reader.feed(&bytes[..cut], |v| seen.push(v));
            reader.feed(&bytes[cut..], |v| seen.push(v));
            assert_eq!(seen, [0, 1, 1 << 40, i64::MAX], "cut at {cut}");
        }
    }
}
