//! Raw bulk transfer on the wire: opt-in per conversation, payloads that are never
//! lexed as JSON, payloads consumed even when the command fails or is refused, and a
//! host that goes away in the middle of one.

mod common;

use common::*;
use serde_json::json;

const ENABLE: &[u8] = br#"{"execute":"__org.guestlink_bulk-enable"}"#;

/// Bytes that would confuse a JSON lexer: braces, newlines, 0xFF, a whole request.
fn hostile_payload(n: usize) -> Vec<u8> {
    let mut p = b"}\n\xff{\"execute\":\"guest-ping\"}\n\x00'\"[".to_vec();
    let mut x = 7u32;
    while p.len() < n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        p.push((x >> 16) as u8);
    }
    p.truncate(n);
    p
}

fn open(c: &mut Conn, path: &std::path::Path, mode: &str) -> i64 {
    let req = json!({"execute": "guest-file-open", "arguments": {"path": path, "mode": mode}});
    c.json(req.to_string().as_bytes())["return"]
        .as_i64()
        .unwrap()
}

fn write_raw(handle: i64, count: i64) -> Vec<u8> {
    json!({"execute": "__org.guestlink_file-write-raw", "arguments": {"handle": handle, "count": count}})
        .to_string()
        .into_bytes()
}

fn read_raw(handle: i64, count: i64) -> Vec<u8> {
    json!({"execute": "__org.guestlink_file-read-raw", "arguments": {"handle": handle, "count": count}, "id": "r"})
        .to_string()
        .into_bytes()
}

#[test]
fn raw_round_trip_only_after_opt_in() {
    let a = Agent::start(GUESTLINKD, &[]);
    let dir = scratch("bulk");
    let path = dir.join("f");
    let mut c = a.connect();

    // Listed in guest-info with QAPI's downstream prefix.
    let info = c.json(br#"{"execute":"guest-info"}"#);
    for name in [
        "__org.guestlink_bulk-enable",
        "__org.guestlink_file-read-raw",
        "__org.guestlink_file-write-raw",
    ] {
        assert!(
            info["return"]["supported_commands"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == name && c["enabled"] == true),
            "{name} not listed"
        );
    }
    // Without the opt-in nothing raw is ever sent, and the raw commands are refused.
    let h = open(&mut c, &path, "w+");
    let v = c.json(&read_raw(h, 10));
    assert_eq!(
        desc(&v),
        "__org.guestlink_file-read-raw needs bulk transfer: call __org.guestlink_bulk-enable first"
    );
    c.silence(200);

    assert_eq!(
        c.json(ENABLE),
        json!({"return": {"version": 1, "max-count": 48 << 20}})
    );
    // The payload follows the closing brace; a pipelined request after it is answered.
    let data = hostile_payload(3 << 20);
    let mut req = write_raw(h, data.len() as i64);
    req.extend_from_slice(&data);
    req.extend_from_slice(br#"{"execute":"guest-ping","id":"after"}"#);
    c.send(&req);
    assert_eq!(
        parse(&c.line()),
        json!({"return": {"count": data.len(), "eof": false}})
    );
    assert_eq!(parse(&c.line()), json!({"return": {}, "id": "after"}));
    assert_eq!(std::fs::read(&path).unwrap(), data);

    // Read it back: the reply line, then exactly `count` bytes, then the next reply.
    let seek = json!({"execute": "guest-file-seek", "arguments": {"handle": h, "offset": 0, "whence": "set"}});
    c.json(seek.to_string().as_bytes());
    let mut req = read_raw(h, 4 << 20);
    req.extend_from_slice(br#"{"execute":"guest-ping"}"#);
    c.send(&req);
    assert_eq!(
        parse(&c.line()),
        json!({"return": {"count": data.len(), "eof": true}, "id": "r"})
    );
    assert_eq!(c.bytes(data.len()), data);
    assert_eq!(parse(&c.line()), json!({"return": {}}));

    // A failing command still consumes its payload.
    let mut req = write_raw(999, 5);
    req.extend_from_slice(b"}}}}}");
    c.send(&req);
    assert_eq!(desc(&parse(&c.line())), "handle '999' has not been found");
    // A count out of range has no payload and is an argument error.
    let v = c.json(&write_raw(h, -1));
    assert_eq!(desc(&v), "value '-1' is invalid for argument count");
    let v = c.json(&write_raw(h, (48 << 20) + 1));
    assert_eq!(
        desc(&v),
        format!("value '{}' is invalid for argument count", (48 << 20) + 1)
    );
    assert_eq!(
        c.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );

    // A resync ends the opt-in.
    c.resync(5);
    let v = c.json(&read_raw(h, 10));
    assert!(desc(&v).contains("needs bulk transfer"), "{v}");
    c.silence(200);
    assert_eq!(a.terminate().code(), Some(0));
}

#[test]
fn refused_payload_is_consumed_and_a_host_may_vanish_mid_transfer() {
    let a = Agent::start(GUESTLINKD, &["-b", "__org.guestlink_file-write-raw"]);
    let dir = scratch("bulk-refused");
    let path = dir.join("f");
    let mut c = a.connect();
    let h = open(&mut c, &path, "w");
    c.json(ENABLE);
    let mut req = write_raw(h, 4);
    req.extend_from_slice(b"\n{}\n");
    c.send(&req);
    let v = parse(&c.line());
    assert_eq!(v["error"]["class"], "CommandNotFound", "{v}");
    assert!(desc(&v).contains("has been disabled"), "{v}");
    assert_eq!(
        c.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    drop(c);
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    assert_eq!(a.terminate().code(), Some(0));

    // The host disconnects after half a payload: nothing is written, and the next
    // host is served from a clean state.
    let a = Agent::start(GUESTLINKD, &[]);
    let mut c = a.connect();
    let h = open(&mut c, &path, "w");
    c.json(ENABLE);
    let mut req = write_raw(h, 1000);
    req.extend_from_slice(&[b'x'; 500]);
    c.send(&req);
    drop(c);
    let mut c = a.connect();
    assert_eq!(
        c.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    let v = c.json(&read_raw(h, 10));
    assert!(
        desc(&v).contains("needs bulk transfer"),
        "a new connection starts without bulk: {v}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    assert_eq!(a.terminate().code(), Some(0));
}
