//! LightDM's greeter frames on any bytes cut at any places: no panic, and never more
//! buffered than one frame and one read while the stream is good.
#![no_main]

use guestlink_fuzz::reads;
use guestlink_proto_lightdm::{Decoder, FRAME_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::default();
    for piece in reads(data) {
        d.push(piece);
        loop {
            match d.next_message() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(d.buffered() <= FRAME_MAX + piece.len(), "{}", d.buffered());
    }
});
