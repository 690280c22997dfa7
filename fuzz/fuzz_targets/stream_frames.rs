//! Live-stream frames on any bytes cut at any places: no panic, never more held than
//! one frame, every read makes progress, and every frame decoded encodes back to the
//! same frame.
#![no_main]

use guestlink_fuzz::reads;
use guestlink_proto_stream::{encode, Decoder, HEADER, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new();
    for piece in reads(data) {
        let mut at = 0;
        while at < piece.len() {
            let (used, frame) = d.feed(&piece[at..]);
            assert!(used > 0);
            at += used;
            assert!(d.buffered() <= HEADER + MAX_PAYLOAD);
            if let Some(Ok(f)) = frame {
                let mut bytes = Vec::new();
                encode(&mut bytes, &f);
                let mut again = Decoder::new();
                let (n, back) = again.feed(&bytes);
                assert_eq!(n, bytes.len());
                assert_eq!(back, Some(Ok(f)));
            }
        }
    }
});
