//! oVirt JSON lines on any bytes cut at any places: no panic, never more buffered
//! than the line cap and one read, and everything decoded encodes to one XML-safe
//! line.
#![no_main]

use guestlink_fuzz::reads;
use guestlink_proto_ovirt::{encode, Decoder, Limits};
use libfuzzer_sys::fuzz_target;

const CAP: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new(Limits { max_line: CAP });
    for piece in reads(data) {
        d.feed(piece);
        while let Some(m) = d.next_message() {
            let Ok(m) = m else { continue };
            let mut line = Vec::new();
            encode(&m, &mut line);
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(line.last(), Some(&b'\n'));
        }
        assert!(d.buffered() <= CAP + 64, "{}", d.buffered());
    }
});
