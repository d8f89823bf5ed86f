//! Arbitrary bytes as a stream of remoting frames, fed to the decoder all at once and in
//! chunks of varying size: both yield the same frames, the same error (or none) and the same
//! leftover bytes. Every frame that decodes to a command survives encode → decode.
#![no_main]

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use bytes::BytesMut;
use ferromq_fuzz::remoting::{command_round_trips, decode_headers};
use ferromq_remoting::{Frame, FrameDecoder, RemotingCommand};
use libfuzzer_sys::fuzz_target;

/// Chunk sizes to draw from: single bytes, a split inside the 8-byte prefix, and larger.
const CHUNK_LENS: [usize; 8] = [1, 2, 3, 5, 8, 13, 64, 1024];

fuzz_target!(|data: &[u8]| {
    let decoder = FrameDecoder::default();
    let mut whole = BytesMut::from(data);
    let (frames, failed) = drain(&decoder, &mut whole);

    // The chunk sizes follow from the input, so a crash reproduces from its bytes alone.
    let mut state = BuildHasherDefault::<DefaultHasher>::default().hash_one(data) | 1;
    let (mut buffered, mut rest) = (BytesMut::new(), data);
    let (mut chunked_frames, mut chunked_failed) = (Vec::new(), false);
    while !rest.is_empty() && !chunked_failed {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = CHUNK_LENS[(state % 8) as usize].min(rest.len());
        buffered.extend_from_slice(&rest[..len]);
        rest = &rest[len..];
        let (more, failed) = drain(&decoder, &mut buffered);
        chunked_frames.extend(more);
        chunked_failed = failed;
    }
    assert_eq!(chunked_frames, frames);
    assert_eq!(chunked_failed, failed);
    if !failed {
        assert_eq!(buffered, whole);
    }

    for frame in frames {
        decode_headers(&frame.header);
        if let Ok(command) = RemotingCommand::from_frame(frame) {
            command_round_trips(&command);
        }
    }
});

/// Decodes frames until the buffer holds no whole frame (false) or an error (true).
fn drain(decoder: &FrameDecoder, buf: &mut BytesMut) -> (Vec<Frame>, bool) {
    let mut frames = Vec::new();
    loop {
        match decoder.decode(buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, false),
            Err(_) => return (frames, true),
        }
    }
}
