//! The decoder against the framing rules and hostile input.

use guestlink_proto_vdagent::{
    encode, encode_on, ChunkHeader, DecodeError, Decoder, Limits, Message, MessageHeader, Port,
};
use proptest::prelude::*;

fn drain(d: &mut Decoder) -> Vec<Result<Message, DecodeError>> {
    std::iter::from_fn(|| d.next_message()).collect()
}

fn msg(port: Port, kind: u32, data: &[u8]) -> Result<Message, DecodeError> {
    Ok(Message {
        port,
        kind,
        data: data.to_vec(),
    })
}

fn chunk(port: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = ChunkHeader {
        port,
        size: payload.len() as u32,
    }
    .to_bytes()
    .to_vec();
    v.extend_from_slice(payload);
    v
}

fn header(protocol: u32, kind: u32, size: u32) -> Vec<u8> {
    MessageHeader {
        protocol,
        kind,
        opaque: 0,
        size,
    }
    .to_bytes()
    .to_vec()
}

#[test]
fn a_server_chunk_between_the_chunks_of_a_client_message() {
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let mut client = Vec::new();
    encode(4, &data, &mut client);
    let mut mouse = Vec::new();
    encode_on(
        Port::Server,
        1,
        &[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        &mut mouse,
    );
    // Client chunk 1, the server's mouse chunk, client chunks 2 and 3.
    let first = 8 + 2048;
    let mut stream = client[..first].to_vec();
    stream.extend_from_slice(&mouse);
    stream.extend_from_slice(&client[first..]);
    let mut d = Decoder::default();
    for b in stream.chunks(7) {
        d.feed(b);
    }
    assert_eq!(
        drain(&mut d),
        [
            msg(Port::Server, 1, &[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]),
            msg(Port::Client, 4, &data)
        ]
    );
    assert_eq!(d.buffered(), 0);
}

#[test]
fn lost_framing_resets_and_the_next_message_is_read() {
    for bad in [
        ChunkHeader {
            port: 1,
            size: 2049,
        }
        .to_bytes(),
        ChunkHeader { port: 3, size: 4 }.to_bytes(),
        ChunkHeader { port: 0, size: 4 }.to_bytes(),
    ] {
        let mut d = Decoder::default();
        // Half a message on port 1, then a broken header and junk in the same read.
        let mut start = chunk(1, &header(1, 4, 100));
        start.extend_from_slice(&bad);
        start.extend_from_slice(b"junk that belongs to nothing");
        d.feed(&start);
        let errs = drain(&mut d);
        assert_eq!(errs.len(), 1);
        assert!(matches!(
            errs[0],
            Err(DecodeError::ChunkTooLarge(_) | DecodeError::BadPort(_))
        ));
        let mut next = Vec::new();
        encode(9, &[0, 0, 0, 0], &mut next);
        d.feed(&next);
        assert_eq!(drain(&mut d), [msg(Port::Client, 9, &[0, 0, 0, 0])]);
    }
}

#[test]
fn refused_messages_are_skipped_exactly() {
    let mut d = Decoder::new(Limits { max_message: 16 });
    let mut s = Vec::new();
    // Protocol 2, 4 data bytes: skipped.
    let mut m = header(2, 6, 4);
    m.extend_from_slice(&[1, 2, 3, 4]);
    s.extend(chunk(1, &m));
    // 100 bytes over a 16-byte limit, in two chunks: skipped without being stored.
    let mut big = header(1, 4, 100);
    big.extend_from_slice(&[9; 50]);
    s.extend(chunk(1, &big));
    s.extend(chunk(1, &[9; 50]));
    // Then a good one.
    encode(3, &[3, 0, 0, 0, 1, 0, 0, 0], &mut s);
    d.feed(&s);
    assert_eq!(
        drain(&mut d),
        [
            Err(DecodeError::Protocol(2)),
            Err(DecodeError::TooLarge {
                size: 100,
                limit: 16
            }),
            msg(Port::Client, 3, &[3, 0, 0, 0, 1, 0, 0, 0]),
        ]
    );
}

#[test]
fn a_chunk_past_its_message_drops_the_rest_of_the_chunk() {
    let mut d = Decoder::default();
    let mut payload = header(1, 14, 4);
    payload.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    payload.extend_from_slice(&header(1, 13, 0)); // a second message in the same chunk
    let mut s = chunk(1, &payload);
    encode(13, &[], &mut s);
    d.feed(&s);
    assert_eq!(
        drain(&mut d),
        [
            msg(Port::Client, 14, &[0xff; 4]),
            Err(DecodeError::Overrun(Port::Client)),
            msg(Port::Client, 13, &[]),
        ]
    );
}

#[test]
fn a_reset_port_forgets_half_a_message() {
    let mut d = Decoder::default();
    let mut big = Vec::new();
    encode(4, &[5; 3000], &mut big);
    d.feed(&big[..2056]);
    assert!(d.buffered() > 0);
    d.reset_port(Port::Client);
    assert_eq!(d.buffered(), 0);
    let mut s = Vec::new();
    encode(8, &[0, 0, 0, 0, 1, 0, 0, 0], &mut s);
    d.feed(&s);
    assert_eq!(
        drain(&mut d),
        [msg(Port::Client, 8, &[0, 0, 0, 0, 1, 0, 0, 0])]
    );
}

#[test]
fn client_disconnected_drops_the_half_client_message_before_the_next_client() {
    // Half a message on the client port; then, in the same input, spice-server's
    // CLIENT_DISCONNECTED on the server port and the next client's capabilities.
    let mut half = Vec::new();
    encode(4, &[5; 3000], &mut half);
    let mut input = half[..2056].to_vec();
    encode_on(Port::Server, 13, &[], &mut input);
    let caps = [1, 0, 0, 0, 0xff, 0x3f, 0, 0];
    encode(6, &caps, &mut input);
    let mut d = Decoder::default();
    d.feed(&input);
    assert_eq!(
        drain(&mut d),
        [msg(Port::Server, 13, &[]), msg(Port::Client, 6, &caps)]
    );
    assert_eq!(d.buffered(), 0);
    // Byte by byte, the same.
    let mut d = Decoder::default();
    for b in &input {
        d.feed(std::slice::from_ref(b));
    }
    assert_eq!(
        drain(&mut d),
        [msg(Port::Server, 13, &[]), msg(Port::Client, 6, &caps)]
    );
}

proptest! {
    #[test]
    fn messages_survive_any_split(
        msgs in prop::collection::vec((1u32..17, prop::collection::vec(any::<u8>(), 0..6000)), 1..6),
        cut in 1usize..3000,
    ) {
        let mut stream = Vec::new();
        for (kind, data) in &msgs {
            encode(*kind, data, &mut stream);
        }
        let mut d = Decoder::default();
        for piece in stream.chunks(cut) {
            d.feed(piece);
        }
        let got = drain(&mut d);
        let want: Vec<_> = msgs.iter().map(|(k, data)| msg(Port::Client, *k, data)).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn any_bytes_are_safe_and_bounded(
        bytes in prop::collection::vec(any::<u8>(), 0..20000),
        cut in 1usize..512,
    ) {
        let limit = 4096;
        let mut d = Decoder::new(Limits { max_message: limit });
        for piece in bytes.chunks(cut) {
            d.feed(piece);
            // At most one message per port, each within the limit, plus headers.
            prop_assert!(d.buffered() <= 2 * (limit + 20) + 8);
            while d.next_message().is_some() {}
        }
    }

    #[test]
    fn valid_chunks_with_random_headers_never_panic(
        parts in prop::collection::vec((1u32..3, prop::collection::vec(any::<u8>(), 0..64)), 0..200),
    ) {
        let mut d = Decoder::new(Limits { max_message: 1024 });
        for (port, payload) in parts {
            d.feed(&chunk(port, &payload));
            while d.next_message().is_some() {}
        }
    }
}
