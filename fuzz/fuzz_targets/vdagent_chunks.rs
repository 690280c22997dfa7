//! SPICE agent chunk reassembly on any bytes cut at any places, then every message
//! parsed under every negotiation: no panic, and never more buffered than the cap
//! plus one chunk per port.
#![no_main]

use guestlink_fuzz::reads;
use guestlink_proto_vdagent::{AgentMessage, Decoder, Limits, Negotiated};
use libfuzzer_sys::fuzz_target;

const CAP: usize = 16 << 10;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new(Limits { max_message: CAP });
    for piece in reads(data) {
        d.feed(piece);
        while let Some(m) = d.next_message() {
            let Ok(m) = m else { continue };
            assert!(m.data.len() <= CAP);
            for (selection, grab_serial) in [(false, false), (true, false), (true, true)] {
                let n = Negotiated {
                    selection,
                    grab_serial,
                };
                let _ = AgentMessage::parse(m.kind, &m.data, n);
            }
        }
        assert!(d.buffered() <= CAP + 2 * 2048 + 64, "{}", d.buffered());
    }
});
