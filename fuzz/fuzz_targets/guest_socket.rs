//! The guest socket's reading: frames taken one at a time as they complete
//! (`feed_frame`, as the socket's read loop does), then the request envelope.
#![no_main]

use guestlink_fuzz::reads;
use guestlink_proto_qga::{Decoder, Frame, Limits, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new(Limits {
        max_message_bytes: 8192,
        ..Limits::default()
    });
    for piece in reads(data) {
        let mut pos = 0;
        while pos < piece.len() {
            let used = d.feed_frame(&piece[pos..]);
            assert!(used <= piece.len() - pos);
            pos += used;
            if let Some(Frame::Value(v)) = d.next_frame() {
                let _ = Request::from_value(v);
            }
            if used == 0 && d.pending_frames() == 0 {
                break;
            }
        }
    }
});
