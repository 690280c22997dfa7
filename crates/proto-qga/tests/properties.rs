//! Properties of the QGA decoder that must hold for any input.

use guestlink_proto_qga::{Decoder, Frame};
use proptest::prelude::*;

fn frames_of(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c);
        out.extend(std::iter::from_fn(|| d.next_frame()));
    }
    out
}

const REQUESTS: &[&str] = &[
    r#"{"execute":"guest-ping"}"#,
    r#"{"execute":"guest-sync","arguments":{"id":12345},"id":"x"}"#,
    "{'execute':'guest-info','id':[1,{\"a\":null}]}",
    r#"{"execute":"guest-sync-delimited","arguments":{"id":-7}}"#,
    "hello\n",
    "[1,2]\n",
    "{\"id\":\"\\u00e9\\ud83d\\ude00\"}",
    "\u{ff}",
];

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(REQUESTS), 1..8).prop_map(|parts| {
        let mut s = Vec::new();
        for p in parts {
            s.extend_from_slice(p.as_bytes());
            s.push(b'\n');
        }
        s
    })
}

/// Frames through `feed_frame`, called repeatedly on each chunk, and whether every
/// call stopped right after a frame or at the chunk's end.
fn frames_one_at_a_time(chunks: &[&[u8]]) -> (Vec<Frame>, bool) {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    let mut at_most_one = true;
    for c in chunks {
        let mut pos = 0;
        while pos < c.len() {
            let used = d.feed_frame(&c[pos..]);
            pos += used;
            at_most_one &= d.pending_frames() <= 1 && (d.pending_frames() == 1 || pos == c.len());
            out.extend(std::iter::from_fn(|| d.next_frame()));
        }
    }
    (out, at_most_one)
}

/// `data` cut at the given points.
fn split<'a>(data: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(&data[last..p]);
        last = p;
    }
    chunks.push(&data[last..]);
    chunks
}

proptest! {
    #[test]
    fn feed_frame_stops_after_each_frame(data in stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let whole = frames_of(&[&data]);
        let chunks = split(&data, &cuts);
        let (frames, stopped) = frames_one_at_a_time(&chunks);
        prop_assert!(stopped);
        prop_assert_eq!(frames, whole);
    }

    #[test]
    fn any_split_gives_the_same_frames(data in stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let whole = frames_of(&[&data]);
        let chunks = split(&data, &cuts);
        prop_assert_eq!(frames_of(&chunks), whole);
    }

    #[test]
    fn byte_at_a_time_equals_whole(data in stream()) {
        let singles: Vec<&[u8]> = data.chunks(1).collect();
        prop_assert_eq!(frames_of(&singles), frames_of(&[&data]));
    }

    #[test]
    fn garbage_never_panics_and_ff_resynchronises(garbage in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut d = Decoder::default();
        d.feed(&garbage);
        d.feed(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":42}}");
        let frames: Vec<Frame> = std::iter::from_fn(|| d.next_frame()).collect();
        let expected = serde_json::json!({"execute":"guest-sync-delimited","arguments":{"id":42}});
        prop_assert_eq!(frames.last(), Some(&Frame::Value(expected)));
        prop_assert!(d.is_idle());
    }

    #[test]
    fn truncated_json_then_control_byte_resynchronises(data in stream(), cut in any::<prop::sample::Index>()) {
        let mut d = Decoder::default();
        d.feed(&data[..cut.index(data.len())]);
        d.feed(b"\x04{\"execute\":\"guest-ping\"}");
        let frames: Vec<Frame> = std::iter::from_fn(|| d.next_frame()).collect();
        prop_assert_eq!(frames.last(), Some(&Frame::Value(serde_json::json!({"execute":"guest-ping"}))));
    }
}
