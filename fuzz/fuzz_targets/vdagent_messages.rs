//! One SPICE agent message's data (type from the first four bytes, negotiation from the
//! fifth): parsing never panics, and what parses encodes and parses again.
#![no_main]

use guestlink_proto_vdagent::{AgentMessage, Negotiated};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let kind = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) % 32;
    let n = Negotiated {
        selection: data[4] & 1 != 0,
        grab_serial: data[4] & 2 != 0,
    };
    if let Ok(m) = AgentMessage::parse(kind, &data[5..], n) {
        let bytes = m.to_data(n);
        let again = AgentMessage::parse(m.kind() as u32, &bytes, n);
        assert!(
            again.is_ok(),
            "{m:?} does not parse after encoding: {again:?}"
        );
    }
});
