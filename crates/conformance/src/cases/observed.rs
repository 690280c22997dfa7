//! Cases from observed qemu-ga behaviour that real clients (libvirt, Proxmox,
//! KubeVirt, QEMU's Python client) depend on, and an argument-error sweep over every
//! command the agent lists.

use std::time::Duration;

use serde_json::{json, Value};

use super::qemu::wait_exec;
use super::{member, random_u32, Ctx};
use crate::conn::{error_of, no_error, Conn};
use crate::{ensure, Failure};

/// Brings the stream back to a known state after garbage: 0xFF, then
/// `guest-sync-delimited` with a fresh id, skipping everything before its reply.
pub fn resync(c: &mut Conn) -> Result<(), Failure> {
    let r = random_u32();
    c.send_sync_delimited(r)?;
    loop {
        c.skip_to_sentinel()?;
        let v = c.reply()?;
        if v.get("return") == Some(&json!(r)) {
            return Ok(());
        }
    }
}

fn generic(c: &mut Conn, req: &str, desc: &str) -> Result<Value, Failure> {
    let v = c.call(req)?;
    let d = error_of(&v, "GenericError")?;
    ensure!(d == desc, "{req}: expected {desc:?}, got {d:?}");
    Ok(v)
}

/// X1.
pub fn x1_string_id(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-ping","id":"abc"}"#)?;
    ensure!(v == json!({"return": {}, "id": "abc"}), "got {v}");
    Ok(())
}

/// X2.
pub fn x2_structured_id(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx
        .conn()?
        .call(r#"{"execute":"guest-ping","id":{"a":[1,2]}}"#)?;
    ensure!(v["id"] == json!({"a": [1, 2]}), "got {v}");
    Ok(())
}

/// X3.
pub fn x3_id_on_error(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-bogus","id":"x1"}"#)?;
    error_of(&v, "CommandNotFound")?;
    ensure!(v["id"] == "x1", "got {v}");
    Ok(())
}

/// X4.
pub fn x4_pipelined(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    c.send(br#"{"execute":"guest-ping"}{"execute":"guest-ping","id":2}"#)?;
    let (a, b) = (c.reply()?, c.reply()?);
    ensure!(
        a == json!({"return": {}}) && b == json!({"return": {}, "id": 2}),
        "got {a} then {b}"
    );
    Ok(())
}

/// X5.
pub fn x5_split(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    c.send(br#"{"execute":"guest-pi"#)?;
    ensure!(
        c.silent_for(Duration::from_millis(200))?,
        "replied to half a request"
    );
    c.send(b"ng\",\"id\":5}\n")?;
    let v = c.reply()?;
    ensure!(v == json!({"return": {}, "id": 5}), "got {v}");
    Ok(())
}

/// X6.
pub fn x6_not_object(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    for input in ["[1,2]", "42", "\"s\"", "null"] {
        let v = generic(c, input, "QMP input must be a JSON object")?;
        ensure!(v.get("id").is_none(), "{input}: id in {v}");
    }
    Ok(())
}

/// X7.
pub fn x7_no_execute(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    generic(ctx.conn()?, "{}", "QMP input lacks member 'execute'").map(drop)
}

/// X8.
pub fn x8_extra_member(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let req = r#"{"execute":"guest-ping","extra":1}"#;
    generic(ctx.conn()?, req, "QMP input member 'extra' is unexpected").map(drop)
}

/// X9.
pub fn x9_bad_arguments(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let req = r#"{"execute":"guest-ping","arguments":[]}"#;
    generic(
        ctx.conn()?,
        req,
        "QMP input member 'arguments' must be an object",
    )
    .map(drop)
}

/// X10.
pub fn x10_garbage(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    let v = c.call("hello")?;
    let d = error_of(&v, "GenericError")?;
    ensure!(d.starts_with("JSON parse error"), "desc {d:?}");
    resync(c)
}

/// X11.
pub fn x11_missing_argument(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    generic(
        ctx.conn()?,
        r#"{"execute":"guest-sync"}"#,
        "Parameter 'id' is missing",
    )
    .map(drop)
}

/// X12.
pub fn x12_wrong_type(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let req = r#"{"execute":"guest-sync","arguments":{"id":"abc"}}"#;
    generic(
        ctx.conn()?,
        req,
        "Invalid parameter type for 'id', expected: integer",
    )
    .map(drop)
}

/// X13.
pub fn x13_delimited_bytes(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    c.send(b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":7}}\n")?;
    let line = c.line()?;
    ensure!(
        line == b"\xff{\"return\": 7}",
        "got {:?}",
        String::from_utf8_lossy(&line)
    );
    Ok(())
}

/// X14.
pub fn x14_recovery(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    c.send(br#"{"execute":"guest-pi"#)?;
    c.send(b"\x04{\"execute\":\"guest-sync\",\"arguments\":{\"id\":9}}\n")?;
    for _ in 0..8 {
        let v = c.reply()?;
        if v.get("return") == Some(&json!(9)) {
            return Ok(());
        }
        error_of(&v, "GenericError")?;
    }
    Err(Failure(
        "no reply to the guest-sync after the control character".into(),
    ))
}

fn nested(depth: usize) -> String {
    format!(
        "{{\"execute\":\"guest-ping\",\"id\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// X15.
pub fn x15_depth_ok(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    c.send(nested(1000).as_bytes())?;
    let line = c.line()?;
    let text = String::from_utf8_lossy(&line);
    ensure!(
        text.starts_with("{\"return\": {}, \"id\": [[["),
        "got {text:.80}"
    );
    ensure!(
        line.iter().filter(|&&b| b == b'[').count() == 1000,
        "id not echoed whole"
    );
    Ok(())
}

/// X16.
pub fn x16_depth_refused(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    c.send(nested(1100).as_bytes())?;
    let v = c.reply()?;
    let d = error_of(&v, "GenericError")?;
    ensure!(d == "JSON nesting depth limit exceeded", "desc {d:?}");
    resync(c)
}

/// X17.
pub fn x17_read_limit(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    let v = c.execute(
        "guest-file-open",
        json!({"path": "/proc/self/stat", "mode": "r"}),
    )?;
    let h = no_error(&v)?.clone();
    let r = c.execute("guest-file-read", json!({"handle": h, "count": 50_331_649}))?;
    let d = error_of(&r, "GenericError")?;
    c.execute("guest-file-close", json!({ "handle": h }))?;
    ensure!(
        d == "value '50331649' is invalid for argument count",
        "desc {d:?}"
    );
    Ok(())
}

/// X18.
pub fn x18_exec_reaped(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let request = if ctx.windows {
        json!({"path": "cmd", "arg": ["/c", "exit 0"]})
    } else {
        json!({"path": "true"})
    };
    let c = ctx.conn()?;
    let v = c.execute("guest-exec", request)?;
    let pid = member(no_error(&v)?, "pid")?.clone();
    wait_exec(c, &pid)?;
    let again = c.execute("guest-exec-status", json!({ "pid": pid }))?;
    error_of(&again, "GenericError").map(drop)
}

/// The commands that reply only when they fail.
const NO_REPLY: &[&str] = &[
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
];

/// The names `guest-info` lists.
pub fn listed_commands(c: &mut Conn) -> Result<Vec<Value>, Failure> {
    let v = c.call(r#"{"execute":"guest-info"}"#)?;
    Ok(no_error(&v)?["supported_commands"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// X19: `success-response` is false exactly for the no-reply commands, and every
/// listed command exists.
pub fn x19_info_truthful(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    for cmd in listed_commands(c)? {
        let name = cmd["name"].as_str().unwrap_or_default();
        let silent = NO_REPLY.contains(&name);
        ensure!(cmd["success-response"] == json!(!silent), "{cmd}");
        if cmd["enabled"] == json!(true) && !name.is_empty() && !NEVER_SWEEP.contains(&name) {
            let (_, d) = argument_error(c, name)?;
            ensure!(
                !d.contains("has not been found"),
                "{name} is listed but unknown"
            );
        }
    }
    Ok(())
}

/// X20: a bad mode is refused (and nothing is shut down).
pub fn x20_shutdown_bad_mode(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx
        .conn()?
        .execute("guest-shutdown", json!({"mode": "bogus"}))?;
    error_of(&v, "GenericError").map(drop)
}

/// Commands without required arguments that change the machine: the sweep never sends
/// them anything, in case an agent ignored an unknown argument and ran them.
const NEVER_SWEEP: &[&str] = &[
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
    "guest-fsfreeze-freeze",
    "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-thaw",
    "guest-fstrim",
    "guest-set-time",
];

/// Sends `name` with an undeclared argument and returns the error class and text: a
/// command with required arguments reports the first missing one, any other the
/// unexpected one. Never used for `NEVER_SWEEP` commands.
pub fn argument_error(c: &mut Conn, name: &str) -> Result<(String, String), Failure> {
    ensure!(!NEVER_SWEEP.contains(&name), "{name} is never swept");
    let v = c.execute(name, json!({"bogus-arg": 1}))?;
    ensure!(
        v.get("error").is_some(),
        "{name} ran with an undeclared argument: {v}"
    );
    Ok((
        v["error"]["class"].as_str().unwrap_or_default().to_string(),
        v["error"]["desc"].as_str().unwrap_or_default().to_string(),
    ))
}

/// The argument errors of every listed command that is safe to sweep, by name.
pub fn argument_sweep(c: &mut Conn) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for cmd in listed_commands(c)? {
        let name = cmd["name"].as_str().unwrap_or_default().to_string();
        if NEVER_SWEEP.contains(&name.as_str()) || cmd["enabled"] != json!(true) {
            continue;
        }
        let (class, desc) = argument_error(c, &name)?;
        out.push((name, format!("{class}: {desc}")));
    }
    Ok(out)
}

/// A1: every swept command refuses an undeclared argument in QEMU's words.
pub fn a1_argument_sweep(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    for (name, err) in argument_sweep(ctx.conn()?)? {
        ensure!(
            err == "GenericError: Parameter 'bogus-arg' is unexpected"
                || (err.starts_with("GenericError: Parameter '") && err.ends_with("' is missing")),
            "{name}: {err}"
        );
    }
    Ok(())
}

/// X21: a second client while the first is connected is either answered at once
/// (guestlinkd serves clients concurrently) or once the first leaves (qemu-ga serves
/// one at a time). Either way it is answered, correctly, in the end.
pub fn x21_second_client(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let instance = ctx.launcher()?.start(&[], None)?;
    let mut a = instance.connect()?;
    no_error(&a.call(r#"{"execute":"guest-ping"}"#)?)?;
    let mut b = instance.connect()?;
    b.send(b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":21}}\n")?;
    let early = b.line_within(Duration::from_millis(500))?;
    drop(a);
    let line = match early {
        Some(l) => l,
        None => b.line()?,
    };
    let v: Value = serde_json::from_slice(&line).map_err(|e| Failure(e.to_string()))?;
    ensure!(v == json!({"return": 21}), "second client got {v}");
    drop(b);
    let st = instance.terminate()?;
    ensure!(st.code() == Some(0), "SIGTERM ended the agent with {st}");
    Ok(())
}

/// X22: `-a guest-ping` disables `guest-sync` too (QEMU's rule, kept as is).
pub fn x22_allow_without_sync(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let instance = ctx.launcher()?.start(&["-a", "guest-ping"], None)?;
    let mut c = instance.connect()?;
    let v = c.execute("guest-sync", json!({"id": 1}))?;
    let d = error_of(&v, "CommandNotFound")?;
    ensure!(d.contains("has been disabled"), "desc {d:?}");
    no_error(&c.call(r#"{"execute":"guest-ping"}"#)?)?;
    drop(c);
    let st = instance.terminate()?;
    ensure!(st.code() == Some(0), "SIGTERM ended the agent with {st}");
    Ok(())
}

/// X23: an agent that starts with the frozen marker in its state directory (an earlier
/// instance died with the filesystems frozen) allows only the safe set, refuses the
/// rest with qemu-ga's frozen-state text, reports "frozen", and is itself again after
/// `guest-fsfreeze-thaw` (nothing is frozen, so it thaws nothing).
pub fn x23_frozen_state(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let instance = ctx.launcher()?.start_frozen()?;
    let mut c = instance.connect()?;
    let v = c.execute("guest-fsfreeze-status", json!({}))?;
    ensure!(v == json!({"return": "frozen"}), "status {v}");
    let v = c.execute("guest-get-time", json!({}))?;
    let d = error_of(&v, "CommandNotFound")?;
    ensure!(
        d == "Command guest-get-time has been disabled: the agent is in frozen state",
        "desc {d:?}"
    );
    no_error(&c.call(r#"{"execute":"guest-ping"}"#)?)?;
    let v = c.execute("guest-fsfreeze-thaw", json!({}))?;
    ensure!(v["return"].is_i64(), "thaw {v}");
    let v = c.execute("guest-fsfreeze-status", json!({}))?;
    ensure!(v == json!({"return": "thawed"}), "status after thaw {v}");
    let v = c.execute("guest-get-time", json!({}))?;
    ensure!(v["return"].is_i64(), "guest-get-time after thaw {v}");
    drop(c);
    let st = instance.terminate()?;
    ensure!(st.code() == Some(0), "SIGTERM ended the agent with {st}");
    Ok(())
}
