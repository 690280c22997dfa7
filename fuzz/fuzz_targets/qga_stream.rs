//! The QGA stream decoder (QEMU's JSON lexer and parser with qemu-ga's limits) and the
//! request envelope, on any bytes cut at any places: no panic, bounded frames.
#![no_main]

use guestlink_fuzz::reads;
use guestlink_proto_qga::{Decoder, Frame, Limits, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits, so that the fuzzer reaches them.
    let mut d = Decoder::new(Limits {
        max_message_bytes: 4096,
        max_tokens: 512,
        max_depth: 32,
    });
    for piece in reads(data) {
        d.feed(piece);
        while let Some(frame) = d.next_frame() {
            if let Frame::Value(v) = frame {
                let _ = Request::from_value(v);
            }
        }
        assert!(d.pending_frames() == 0);
    }
});
