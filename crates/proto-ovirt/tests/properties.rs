//! The oVirt line codec against arbitrary input.

use guestlink_proto_ovirt::{encode, Decoder, Limits, Message};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_bytes_are_safe_and_bounded(bytes in prop::collection::vec(any::<u8>(), 0..20000), cut in 1usize..700) {
        let mut d = Decoder::new(Limits { max_line: 512 });
        for piece in bytes.chunks(cut) {
            d.feed(piece);
            prop_assert!(d.buffered() <= 512);
            while d.next_message().is_some() {}
        }
        // Whatever came before, a newline and a good line are understood.
        d.feed(b"\n{\"__name__\":\"refresh\"}\n");
        let mut last = None;
        while let Some(m) = d.next_message() { last = Some(m); }
        prop_assert_eq!(last, Some(Ok(Message::new("refresh"))));
    }

    #[test]
    fn messages_survive_any_split(texts in prop::collection::vec(".{0,40}", 1..6), cut in 1usize..64) {
        let mut stream = Vec::new();
        let msgs: Vec<Message> = texts.iter().enumerate()
            .map(|(i, t)| Message::new(format!("m{i}")).arg("text", t.as_str()))
            .collect();
        for m in &msgs { encode(m, &mut stream); }
        let mut d = Decoder::default();
        for piece in stream.chunks(cut) { d.feed(piece); }
        let got: Vec<Message> = std::iter::from_fn(|| d.next_message()).map(|r| r.unwrap()).collect();
        prop_assert_eq!(got.len(), msgs.len());
        for (g, m) in got.iter().zip(&msgs) {
            prop_assert_eq!(&g.name, &m.name);
            let text = m.args["text"].as_str().unwrap();
            prop_assert_eq!(g.args["text"].as_str().unwrap(), guestlink_proto_ovirt::xml_safe(text));
        }
    }
}
