//! The same bytes sent to Debian's qemu-ga and to guestlinkd; the replies must agree:
//! exactly for protocol behaviour (errors, ids, sync, recovery), and in shape and value
//! for the information commands (both run on this machine).
//!
//! Debian ships qemu-ga 7.2, while guestlinkd follows 10.0; the documented differences
//! (spec §8) are normalised in `same_error` and nowhere else.

mod common;

use common::*;
use serde_json::Value;

/// (request bytes, number of reply lines).
const EXACT: &[(&[u8], usize)] = &[
    (br#"{"execute":"guest-ping","id":"abc"}"#, 1),
    (br#"{"execute":"guest-ping","id":{"a":[1,2]}}"#, 1),
    (br#"{"execute":"guest-bogus","id":"x1"}"#, 1),
    (br#"{"execute":"guest-ping"}{"execute":"guest-ping","id":2}"#, 2),
    (b"[1,2]", 1),
    (b"42 ", 1),
    (b"\"s\" ", 1),
    (b"null ", 1),
    (b"true ", 1),
    (b"{}", 1),
    (br#"{"arguments":{}}"#, 1),
    (br#"{"execute": 1}"#, 1),
    (br#"{"execute":"guest-ping","extra":1}"#, 1),
    (br#"{"exec-oob":"guest-ping","id":9}"#, 1),
    (br#"{"execute":"guest-ping","arguments":[]}"#, 1),
    (br#"{"execute":"guest-ping","arguments":null}"#, 1),
    (b"hello\n", 1),
    (b"}", 1),
    (b"{foo}", 1),
    (br#"{"execute":"guest-ping",}"#, 1),
    (br#"{"execute":"guest-ping","id":1,"id":2}"#, 1),
    (b"{\"execute\":\"a\x01b\"}\n", 2),
    (br#"{"execute":"guest-ping","id":"\x"}"#, 1),
    (b"{\"execute\":\"guest-ping\",\"id\":\"\xc3\"}", 1),
    (b"\xff", 1),
    (b"\x04", 1),
    (br#"{"a":1]"#, 1),
    (b"[1,,]", 1),
    (br#"{"execute":"guest-ping","id":"\uD800"}"#, 1),
    (br#"{"execute":"guest-ping","id":"\u00zz"}"#, 1),
    (b"12\xff", 2),
    (br#"{"execute":"guest-ping","arguments":{"foo":42}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"foo":1}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":"abc"}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":1.5}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":1e3}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":null}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":9223372036854775808}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":99999999999999999999}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":true}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":-5}}"#, 1),
    (br#"{"execute":"guest-sync","arguments":{"id":-0}}"#, 1),
    (br#"{"execute":"qmp_capabilities"}"#, 1),
    (br#"{"execute":""}"#, 1),
    (b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":111}}\n", 2),
    (b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":112}}\n", 1),
    (b"{\"execute\":\"guest-pi\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":113}}\n", 2),
    (b"{\"execute\":\"guest-pi\x04{\"execute\":\"guest-sync\",\"arguments\":{\"id\":9}}\n", 2),
    (b"{'execute':'guest-ping','id':'a\\'b'}", 1),
    (b"{\"execute\":\"guest-ping\",\"id\":\"\\u00e9\\ud83d\\ude00\x7f/\"}", 1),
    (b"{\"execute\":\"guest-ping\",\"id\":\"\xc0\x80\"}", 1),
    (br#"{"execute":"guest-ping","id":0.1}"#, 1),
    (br#"{"execute":"guest-ping","id":1.0}"#, 1),
    (br#"{"execute":"guest-ping","id":[[[[[[[[[[1]]]]]]]]]]}"#, 1),
];

/// Command-level checks that are safe to run on the build machine (each fails before
/// touching anything), in order, on fresh instances (handles start at 1000). Errors
/// must match byte for byte, results in value (qemu-ga orders members by hash).
const COMMAND_ERRORS: &[&str] = &[
    r#"{"execute":"guest-file-open","arguments":{"path":"foo","mode":"rw"}}"#,
    r#"{"execute":"guest-file-open","arguments":{"path":"nodir/x"}}"#,
    r#"{"execute":"guest-file-open","arguments":{"path":1,"bar":2}}"#,
    r#"{"execute":"guest-file-read","arguments":{"handle":5}}"#,
    r#"{"execute":"guest-file-open","arguments":{"path":"foo","mode":"w+"}}"#,
    r#"{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"a$=="}}"#,
    r#"{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"aGVsbG8=","count":6}}"#,
    r#"{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"aGVsbG8=","count":-1}}"#,
    r#"{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"aGVsbG8"}}"#,
    r#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":0,"whence":5}}"#,
    r#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":0,"whence":"bogus"}}"#,
    r#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":0,"whence":true}}"#,
    r#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":-5,"whence":0}}"#,
    r#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":1,"whence":"set"}}"#,
    r#"{"execute":"guest-file-read","arguments":{"handle":1000,"count":50331649}}"#,
    r#"{"execute":"guest-file-read","arguments":{"handle":1000,"count":-1}}"#,
    r#"{"execute":"guest-file-read","arguments":{"handle":1000}}"#,
    r#"{"execute":"guest-file-read","arguments":{"handle":1000}}"#,
    r#"{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"eA=="}}"#,
    r#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":0,"whence":"end"}}"#,
    r#"{"execute":"guest-file-flush","arguments":{"handle":1000}}"#,
    r#"{"execute":"guest-file-close","arguments":{"handle":1000}}"#,
    r#"{"execute":"guest-file-close","arguments":{"handle":1000}}"#,
    r#"{"execute":"guest-file-open","arguments":{"path":"foo","mode":"r"}}"#,
    r#"{"execute":"guest-file-write","arguments":{"handle":1001,"buf-b64":"eA=="}}"#,
    r#"{"execute":"guest-file-read","arguments":{"handle":1001,"count":0}}"#,
    r#"{"execute":"guest-file-read","arguments":{"handle":1001,"count":4}}"#,
    r#"{"execute":"guest-shutdown","arguments":{"mode":"bogus"}}"#,
    r#"{"execute":"guest-shutdown","arguments":{"mode":1}}"#,
    r#"{"execute":"guest-set-time","arguments":{"time":4102444800000000000}}"#,
    r#"{"execute":"guest-set-time","arguments":{"time":"x"}}"#,
    r#"{"execute":"guest-set-user-password","arguments":{"username":"a:b","password":"cGFzcw==","crypted":false}}"#,
    r#"{"execute":"guest-set-user-password","arguments":{"username":"root","password":"cGFzcwp4","crypted":false}}"#,
    r#"{"execute":"guest-set-user-password","arguments":{"username":"root","password":"!!","crypted":false}}"#,
    r#"{"execute":"guest-set-user-password","arguments":{"username":"root","password":"cGFzcw=="}}"#,
    r##"{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":"root","keys":["# c"]}}"##,
    r#"{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":"root","keys":["a\nb"]}}"#,
    r#"{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":999,"online":true}]}}"#,
    r#"{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":0}]}}"#,
    r#"{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":0,"online":true,"x":1}]}}"#,
    r#"{"execute":"guest-set-vcpus","arguments":{"vcpus":[]}}"#,
    r#"{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[{"phys-index":999999,"online":true}]}}"#,
    r#"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":"x"}}"#,
    r#"{"execute":"guest-fstrim","arguments":{"minimum":"x"}}"#,
    r#"{"execute":"guest-exec","arguments":{"path":"true","arg":"x"}}"#,
    r#"{"execute":"guest-exec","arguments":{"path":"true","env":[1]}}"#,
    r#"{"execute":"guest-exec","arguments":{"path":"true","input-data":"%%"}}"#,
    r#"{"execute":"guest-exec-status","arguments":{"pid":"x"}}"#,
];

/// Where guestlinkd deliberately answers differently (docs/compatibility.md, "Deliberate
/// differences"), with its exact reply. Not sent to qemu-ga: `guest-set-time` with
/// -1 ns makes qemu-ga 7.2 try to set the clock to 1970.
const DELIBERATE: &[(&str, &str)] = &[
    (
        r#"{"execute":"guest-set-time","arguments":{"time":-1}}"#,
        r#"{"error": {"class": "GenericError", "desc": "Invalid time"}}"#,
    ),
    (
        // qemu-ga 7.2 says "...: Success" (errno 0).
        r#"{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"nosuchuserxyz"}}"#,
        r#"{"error": {"class": "GenericError", "desc": "failed to lookup user 'nosuchuserxyz': No such user"}}"#,
    ),
    (
        // qemu-ga 8.2+ says "PID ld does not exist" (a format-string bug), 7.2
        // "Invalid parameter 'pid'".
        r#"{"execute":"guest-exec-status","arguments":{"pid":123456789}}"#,
        r#"{"error": {"class": "GenericError", "desc": "PID 123456789 does not exist"}}"#,
    ),
];

/// Information commands whose results must match in value (same machine, same files).
const SAME_VALUE: &[&str] = &[
    "guest-get-osinfo",
    "guest-get-host-name",
    "guest-get-timezone",
    "guest-get-users",
];

/// Debian's qemu-ga and guestlinkd, freshly started, with a connection to each; `None`
/// when qemu-ga is missing outside CI.
fn side_by_side() -> Option<(Agent, Agent, Conn, Conn)> {
    if !peer_available(QEMU_GA) {
        return None;
    }
    let theirs = Agent::start(QEMU_GA, &[]);
    let ours = Agent::start(GUESTLINKD, &[]);
    let (t, o) = (theirs.connect(), ours.connect());
    Some((theirs, ours, t, o))
}

fn run_exact(conn: &mut Conn, input: &[u8], n: usize) -> Vec<Vec<u8>> {
    conn.send(input);
    conn.lines(n)
}

#[test]
fn protocol_behaviour_matches_qemu_ga_byte_for_byte() {
    let Some((_theirs, _ours, mut t, mut o)) = side_by_side() else {
        return;
    };
    let mut failures = Vec::new();
    for (input, n) in EXACT {
        let a = run_exact(&mut t, input, *n);
        let b = run_exact(&mut o, input, *n);
        if a != b {
            failures.push(format!(
                "input {:?}\n  qemu-ga:    {:?}\n  guestlinkd: {:?}",
                String::from_utf8_lossy(input),
                a.iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect::<Vec<_>>(),
                b.iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect::<Vec<_>>()
            ));
        }
    }
    // Limits: the first reply to over-deep nesting, then both must resynchronise.
    let deep = format!(
        "{{\"execute\":\"guest-ping\",\"id\":{}{}}}",
        "[".repeat(1100),
        "]".repeat(1100)
    );
    let a = {
        t.send(deep.as_bytes());
        t.resync(1)
    };
    let b = {
        o.send(deep.as_bytes());
        o.resync(1)
    };
    if a.first() != b.first() {
        failures.push(format!(
            "nesting limit: {:?} vs {:?}",
            a.first().map(|l| parse(l)),
            b.first().map(|l| parse(l))
        ));
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn command_errors_match_qemu_ga() {
    let Some((_theirs, _ours, mut t, mut o)) = side_by_side() else {
        return;
    };
    let mut failures = Vec::new();
    for req in COMMAND_ERRORS {
        let a = run_exact(&mut t, req.as_bytes(), 1);
        let b = run_exact(&mut o, req.as_bytes(), 1);
        let (pa, pb) = (parse(&a[0]), parse(&b[0]));
        let same = if pa.get("error").is_some() {
            a == b
        } else {
            pa == pb
        };
        if !same {
            failures.push(format!(
                "{req}\n  qemu-ga:    {}\n  guestlinkd: {}",
                String::from_utf8_lossy(&a[0]),
                String::from_utf8_lossy(&b[0])
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for (req, want) in DELIBERATE {
        let got = run_exact(&mut o, req.as_bytes(), 1);
        assert_eq!(String::from_utf8_lossy(&got[0]), *want, "{req}");
    }
}

fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
        Value::String(_) => "string".into(),
        Value::Number(n) if n.is_f64() => "number".into(),
        Value::Number(_) => "integer".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

#[test]
fn information_commands_agree_in_shape_and_value() {
    let Some((_theirs, _ours, mut t, mut o)) = side_by_side() else {
        return;
    };
    for cmd in SAME_VALUE {
        let req = format!("{{\"execute\":\"{cmd}\"}}");
        let a = t.json(req.as_bytes());
        let b = o.json(req.as_bytes());
        assert_eq!(a, b, "{cmd}");
    }
    let (a, b) = (
        t.json(br#"{"execute":"guest-get-time"}"#),
        o.json(br#"{"execute":"guest-get-time"}"#),
    );
    assert_eq!(shape(&a), shape(&b));
    let skew = a["return"].as_i64().unwrap() - b["return"].as_i64().unwrap();
    assert!(skew.abs() < 60_000_000_000, "clocks differ by {skew} ns");
    // guest-info: same shape; every command we have is theirs too, with the same flag.
    let (a, b) = (
        t.json(br#"{"execute":"guest-info"}"#),
        o.json(br#"{"execute":"guest-info"}"#),
    );
    assert_eq!(shape(&a), shape(&b));
    let theirs_cmds = a["return"]["supported_commands"].as_array().unwrap();
    let ours_cmds = b["return"]["supported_commands"].as_array().unwrap();
    // Both directions: every command of Debian's qemu-ga is ours too, except the
    // Windows-only guest-get-devices (listed disabled by 7.2, absent since 9.1).
    for c in theirs_cmds {
        if c["name"] != "guest-get-devices" {
            assert!(
                ours_cmds.iter().any(|o| o["name"] == c["name"]),
                "guestlinkd lacks {c}"
            );
        }
    }
    for c in ours_cmds {
        let Some(same) = theirs_cmds.iter().find(|t| t["name"] == c["name"]) else {
            let name = c["name"].as_str().unwrap();
            // Extensions carry QAPI's downstream prefix and never collide with QEMU's.
            assert!(
                NEWER_THAN_7_2.contains(&name) || name.starts_with("__org.guestlink_"),
                "qemu-ga lacks {c}"
            );
            continue;
        };
        assert_eq!(
            same["success-response"], c["success-response"],
            "{}",
            c["name"]
        );
        assert_eq!(same["enabled"], c["enabled"], "{}", c["name"]);
    }
}

/// Commands added after qemu-ga 7.2 (Debian's build here).
const NEWER_THAN_7_2: &[&str] = &["guest-get-load", "guest-network-get-route"];

/// qemu-ga 7.2 words a disabled command as "Command X has been disabled"; 9.1+ (and
/// guestlinkd) add ": the command is not allowed".
fn same_error(theirs: &Value, ours: &Value) -> bool {
    let (t, o) = (desc(theirs), desc(ours));
    theirs["error"]["class"] == ours["error"]["class"]
        && (t == o || format!("{t}: the command is not allowed") == o)
}

#[test]
fn blocked_commands_are_refused_alike() {
    if !peer_available(QEMU_GA) {
        return;
    }
    let args = ["-b", "guest-ping,guest-get-time"];
    let theirs = Agent::start(QEMU_GA, &args);
    let ours = Agent::start(GUESTLINKD, &args);
    let (mut t, mut o) = (theirs.connect(), ours.connect());
    for cmd in ["guest-ping", "guest-get-time"] {
        let req = format!("{{\"execute\":\"{cmd}\",\"id\":3}}");
        let (a, b) = (t.json(req.as_bytes()), o.json(req.as_bytes()));
        assert!(same_error(&a, &b), "{cmd}: {a} vs {b}");
        assert_eq!(a["id"], b["id"]);
    }
    let (a, b) = (
        t.json(br#"{"execute":"guest-info"}"#),
        o.json(br#"{"execute":"guest-info"}"#),
    );
    for c in b["return"]["supported_commands"].as_array().unwrap() {
        let same = a["return"]["supported_commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == c["name"]);
        let Some(same) = same else { continue };
        assert_eq!(same["enabled"], c["enabled"], "{}", c["name"]);
    }
    assert_eq!(theirs.terminate().code(), Some(0));
    assert_eq!(ours.terminate().code(), Some(0));
}

/// Drops members that legitimately differ between the two agents on this machine.
fn without(mut v: Value, keys: &[&str]) -> Value {
    match &mut v {
        Value::Object(m) => {
            for k in keys {
                m.remove(*k);
            }
            for (_, x) in m.iter_mut() {
                *x = without(x.take(), keys);
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without(x.take(), keys);
            }
        }
        _ => {}
    }
    v
}

fn sorted_by(mut v: Vec<Value>, key: &str) -> Vec<Value> {
    v.sort_by_key(|x| x[key].to_string());
    v
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[test]
fn inventory_matches_qemu_ga() {
    let Some((_theirs, _ours, mut t, mut o)) = side_by_side() else {
        return;
    };
    let mut both = |cmd: &str| {
        let req = format!("{{\"execute\":\"{cmd}\"}}");
        let (a, b) = (t.json(req.as_bytes()), o.json(req.as_bytes()));
        assert!(
            a.get("return").is_some() && b.get("return").is_some(),
            "{cmd}: {a} / {b}"
        );
        (a["return"].clone(), b["return"].clone())
    };
    // Filesystems: the same mounts, sizes and disk addresses. guestlinkd also reads the
    // serial from sysfs when udev has none, and reports total-bytes-privileged (9.1+);
    // used-bytes moves while the tests write files.
    let (a, b) = both("guest-get-fsinfo");
    let drop = ["serial", "total-bytes-privileged", "used-bytes"];
    assert_eq!(
        without(a.clone(), &drop),
        without(b.clone(), &drop),
        "fsinfo"
    );
    for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
        let (ux, uy) = (
            x["used-bytes"].as_i64().unwrap(),
            y["used-bytes"].as_i64().unwrap(),
        );
        assert!((ux - uy).abs() < 1 << 30, "used-bytes {ux} vs {uy}");
    }
    let (a, b) = both("guest-get-disks");
    assert_eq!(without(a, &["serial"]), without(b, &["serial"]), "disks");
    // CPUs and memory blocks: the same set (qemu-ga lists in directory order).
    let (a, b) = both("guest-get-vcpus");
    assert_eq!(
        sorted_by(a.as_array().unwrap().clone(), "logical-id"),
        sorted_by(b.as_array().unwrap().clone(), "logical-id"),
        "vcpus"
    );
    let (a, b) = both("guest-get-memory-blocks");
    assert_eq!(
        sorted_by(a.as_array().unwrap().clone(), "phys-index"),
        sorted_by(b.as_array().unwrap().clone(), "phys-index"),
        "memory blocks"
    );
    let (a, b) = both("guest-get-memory-block-info");
    assert_eq!(a, b, "memory block size");
    // Network: same interfaces, MACs and addresses; counters move.
    let (a, b) = both("guest-network-get-interfaces");
    let (a, b) = (without(a, &["statistics"]), without(b, &["statistics"]));
    assert_eq!(a, b, "interfaces");
    // Counters: same devices and CPUs, same members.
    let (a, b) = both("guest-get-diskstats");
    let ids = |v: &Value| -> Vec<(Value, Value, Value, Vec<String>)> {
        let mut x: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].clone(),
                    d["major"].clone(),
                    d["minor"].clone(),
                    keys_of(&d["stats"]),
                )
            })
            .collect();
        x.sort_by_key(|d| format!("{:?}", d));
        x
    };
    assert_eq!(ids(&a), ids(&b), "diskstats");
    let (a, b) = both("guest-get-cpustats");
    let cpus = |v: &Value| -> Vec<(Value, Vec<String>)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| (c["cpu"].clone(), keys_of(c)))
            .collect()
    };
    assert_eq!(cpus(&a), cpus(&b), "cpustats");
    let (a, b) = both("guest-fsfreeze-status");
    assert_eq!(a, b);
}
