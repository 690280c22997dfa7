//! QEMU's agent test suite (`tests/unit/test-qga.c`) as protocol cases.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{base64, member, random_u32, Ctx};
use crate::conn::{error_of, no_error, Conn};
use crate::{ensure, Failure};

/// "Hello World!\n" and its terminating NUL, as the C test writes it.
const HELLO: &[u8] = b"Hello World!\n\0";
const HELLO_B64: &str = "SGVsbG8gV29ybGQhCgA=";

/// T01: a client's 0xFF, then `guest-sync-delimited`; the reply follows a 0xFF.
pub fn sync_delimited(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    let r = random_u32();
    c.send_sync_delimited(r)?;
    c.skip_to_sentinel()?;
    let v = c.reply()?;
    ensure!(no_error(&v)? == &json!(r), "expected {r}, got {v}");
    Ok(())
}

/// T02.
pub fn sync(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let r = random_u32();
    let v = ctx.conn()?.execute("guest-sync", json!({ "id": r }))?;
    ensure!(no_error(&v)? == &json!(r), "expected {r}, got {v}");
    Ok(())
}

/// T03.
pub fn ping(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-ping"}"#)?;
    ensure!(no_error(&v)? == &json!({}), "ping returned {v}");
    Ok(())
}

/// T04: a version string and a well-formed command list.
pub fn info(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-info"}"#)?;
    let r = no_error(&v)?;
    ensure!(
        r["version"].as_str().is_some_and(|s| !s.is_empty()),
        "no version in {r}"
    );
    let cmds = r["supported_commands"]
        .as_array()
        .ok_or_else(|| Failure(format!("no supported_commands in {r}")))?;
    for c in cmds {
        ensure!(
            c["name"].is_string()
                && c["enabled"].is_boolean()
                && c["success-response"].is_boolean(),
            "malformed command entry {c}"
        );
    }
    Ok(())
}

fn first_has(v: &Value, members: &[&str]) -> Result<(), Failure> {
    let arr = no_error(v)?
        .as_array()
        .ok_or_else(|| Failure(format!("not an array: {v}")))?;
    if let Some(first) = arr.first() {
        for m in members {
            member(first, m)?;
        }
    }
    Ok(())
}

/// T05.
pub fn network_get_interfaces(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx
        .conn()?
        .call(r#"{"execute":"guest-network-get-interfaces"}"#)?;
    ensure!(
        no_error(&v)?.as_array().is_some_and(|a| !a.is_empty()),
        "expected a non-empty list: {v}"
    );
    first_has(&v, &["name"])
}

/// T06.
pub fn get_vcpus(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-get-vcpus"}"#)?;
    first_has(&v, &["online", "logical-id"])
}

/// T07.
pub fn get_fsinfo(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-get-fsinfo"}"#)?;
    first_has(&v, &["name", "mountpoint", "type", "disk"])
}

/// T08 (QEMU 10.0).
pub fn get_load(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-get-load"}"#)?;
    let r = no_error(&v)?;
    for m in ["load1m", "load5m", "load15m"] {
        ensure!(member(r, m)?.is_number(), "{m} is not a number in {r}");
    }
    Ok(())
}

/// T09: an error is tolerated (no memory hotplug in sysfs).
pub fn get_memory_block_info(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx
        .conn()?
        .call(r#"{"execute":"guest-get-memory-block-info"}"#)?;
    if v.get("error").is_none() {
        ensure!(
            no_error(&v)?["size"].as_u64().is_some_and(|s| s > 0),
            "size must be positive: {v}"
        );
    }
    Ok(())
}

/// T10: an error is tolerated.
pub fn get_memory_blocks(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx
        .conn()?
        .call(r#"{"execute":"guest-get-memory-blocks"}"#)?;
    if v.get("error").is_some() {
        return Ok(());
    }
    first_has(&v, &["phys-index", "online"])
}

fn open(c: &mut Conn, path: &str, mode: &str) -> Result<Value, Failure> {
    let v = c.execute("guest-file-open", json!({"path": path, "mode": mode}))?;
    Ok(no_error(&v)?.clone())
}

fn read_default(c: &mut Conn, h: &Value) -> Result<Value, Failure> {
    let v = c.execute("guest-file-read", json!({ "handle": h }))?;
    Ok(no_error(&v)?.clone())
}

/// Seeks to `offset` from the start; expects that position and no end of file.
fn seek_set(c: &mut Conn, h: &Value, offset: i64) -> Result<(), Failure> {
    let s = c.execute(
        "guest-file-seek",
        json!({"handle": h, "offset": offset, "whence": "set"}),
    )?;
    expect(
        "seek",
        no_error(&s)?,
        json!({"position": offset, "eof": false}),
    )
}

fn expect(what: &str, got: &Value, want: Value) -> Result<(), Failure> {
    for (k, w) in want.as_object().into_iter().flatten() {
        ensure!(&got[k] == w, "{what}: {k} should be {w}, got {got}");
    }
    Ok(())
}

/// T11: write, flush, close, check the file, then read, read at end, seek, read.
pub fn file_ops(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let workdir = ctx.workdir.map(|d| d.join("foo"));
    let c = ctx.conn()?;
    let h = open(c, "foo", "w+")?;
    let w = c.execute(
        "guest-file-write",
        json!({"handle": h, "buf-b64": HELLO_B64}),
    )?;
    expect("write", no_error(&w)?, json!({"count": 14, "eof": false}))?;
    c.execute("guest-file-flush", json!({ "handle": h }))?;
    c.execute("guest-file-close", json!({ "handle": h }))?;
    if let Some(path) = workdir {
        let content = std::fs::read(&path).map_err(|e| Failure(format!("{path:?}: {e}")))?;
        ensure!(content == HELLO, "file holds {content:?}");
    }
    let h = open(c, "foo", "r")?;
    expect(
        "read",
        &read_default(c, &h)?,
        json!({"count": 14, "eof": true, "buf-b64": HELLO_B64}),
    )?;
    expect(
        "read at end",
        &read_default(c, &h)?,
        json!({"count": 0, "eof": true, "buf-b64": ""}),
    )?;
    seek_set(c, &h, 6)?;
    let r = read_default(c, &h)?;
    expect("read after seek", &r, json!({"count": 8, "eof": true}))?;
    ensure!(base64(&r["buf-b64"])? == HELLO[6..], "read {r}");
    c.execute("guest-file-close", json!({ "handle": h }))?;
    Ok(())
}

/// T12: a read right after a write sees the end; after seeking back, the data.
pub fn file_write_read(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    let h = open(c, "foo", "w+")?;
    let w = c.execute(
        "guest-file-write",
        json!({"handle": h, "buf-b64": HELLO_B64}),
    )?;
    expect("write", no_error(&w)?, json!({"count": 14, "eof": false}))?;
    expect(
        "read after write",
        &read_default(c, &h)?,
        json!({"count": 0, "eof": true, "buf-b64": ""}),
    )?;
    seek_set(c, &h, 0)?;
    expect(
        "read",
        &read_default(c, &h)?,
        json!({"count": 14, "eof": true, "buf-b64": HELLO_B64}),
    )?;
    c.execute("guest-file-close", json!({ "handle": h }))?;
    Ok(())
}

/// T13.
pub fn get_time(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-get-time"}"#)?;
    ensure!(
        no_error(&v)?.as_i64().is_some_and(|t| t > 0),
        "time must be positive: {v}"
    );
    Ok(())
}

/// T14.
pub fn id(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-ping","id":1}"#)?;
    no_error(&v)?;
    ensure!(v["id"] == json!(1), "id not echoed: {v}");
    Ok(())
}

/// T15.
pub fn invalid_oob(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"exec-oob":"guest-ping"}"#)?;
    error_of(&v, "GenericError").map(drop)
}

/// T16.
pub fn invalid_cmd(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-invalid-cmd"}"#)?;
    error_of(&v, "CommandNotFound").map(drop)
}

/// T17.
pub fn invalid_args(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx
        .conn()?
        .call(r#"{"execute":"guest-ping","arguments":{"foo":42}}"#)?;
    let d = error_of(&v, "GenericError")?;
    ensure!(d == "Parameter 'foo' is unexpected", "desc was {d:?}");
    Ok(())
}

/// T18.
pub fn fsfreeze_status(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-fsfreeze-status"}"#)?;
    ensure!(no_error(&v)? == "thawed", "status was {v}");
    Ok(())
}

/// Polls `guest-exec-status` until the child exited (5 s at most, as QEMU's test).
pub fn wait_exec(c: &mut Conn, pid: &Value) -> Result<Value, Failure> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = c.execute("guest-exec-status", json!({ "pid": pid }))?;
        let r = no_error(&v)?;
        if r["exited"] == json!(true) {
            return Ok(r.clone());
        }
        ensure!(
            Instant::now() < deadline,
            "pid {pid} still running after 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn exec(c: &mut Conn, args: Value) -> Result<Value, Failure> {
    let v = c.execute("guest-exec", args)?;
    let pid = member(no_error(&v)?, "pid")?.clone();
    ensure!(pid.as_i64().is_some_and(|p| p > 0), "bad pid in {v}");
    wait_exec(c, &pid)
}

/// T22 (on Windows through `cmd /c echo`, whose line ends in CR LF).
pub fn guest_exec(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let (request, want): (Value, &[u8]) = if ctx.windows {
        (
            json!({"path": "cmd", "arg": ["/c", "echo test_str"], "capture-output": true}),
            b"test_str\r\n",
        )
    } else {
        (
            json!({"path": "echo", "arg": ["-n", "\" test_str \""], "capture-output": true}),
            b"\" test_str \"",
        )
    };
    let s = exec(ctx.conn()?, request)?;
    ensure!(s["exitcode"] == json!(0), "status {s}");
    ensure!(base64(member(&s, "out-data")?)? == want, "output {s}");
    Ok(())
}

const SCRIPT: &str =
    "for i in $(seq 4); do if (( $i % 2 )); then echo stdout; else echo stderr 1>&2; fi; done;";
/// The same for `cmd /c`.
const CMD_SCRIPT: &str = "echo stdout& echo stderr>&2& echo stdout& echo stderr>&2";

/// The script of T23 and T24 for the target's shell, with its line ending.
fn script(ctx: &Ctx<'_>, mode: &str) -> (Value, &'static str) {
    if ctx.windows {
        (
            json!({"path": "cmd", "arg": ["/c", CMD_SCRIPT], "capture-output": mode}),
            "\r\n",
        )
    } else {
        (
            json!({"path": "bash", "arg": ["-c", SCRIPT], "capture-output": mode}),
            "\n",
        )
    }
}

/// T23.
pub fn guest_exec_separated(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let (request, nl) = script(ctx, "separated");
    let s = exec(ctx.conn()?, request)?;
    ensure!(s["exitcode"] == json!(0), "status {s}");
    ensure!(
        base64(member(&s, "out-data")?)? == format!("stdout{nl}stdout{nl}").as_bytes(),
        "stdout in {s}"
    );
    ensure!(
        base64(member(&s, "err-data")?)? == format!("stderr{nl}stderr{nl}").as_bytes(),
        "stderr in {s}"
    );
    Ok(())
}

/// T24; on Windows, where `merged` does not exist, the request is a GenericError.
pub fn guest_exec_merged(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let (request, _) = script(ctx, "merged");
    if ctx.windows {
        let v = ctx.conn()?.execute("guest-exec", request)?;
        return error_of(&v, "GenericError").map(drop);
    }
    let s = exec(ctx.conn()?, request)?;
    ensure!(s["exitcode"] == json!(0), "status {s}");
    ensure!(
        base64(member(&s, "out-data")?)? == b"stdout\nstderr\nstdout\nstderr\n",
        "merged output in {s}"
    );
    ensure!(s.get("err-data").is_none(), "err-data present: {s}");
    Ok(())
}

/// T25.
pub fn guest_exec_invalid(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    error_of(
        &c.execute("guest-exec", json!({"path": "/bin/invalid-cmd42"}))?,
        "GenericError",
    )?;
    error_of(
        &c.execute("guest-exec-status", json!({"pid": 0}))?,
        "GenericError",
    )?;
    Ok(())
}

/// T27.
pub fn get_host_name(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-get-host-name"}"#)?;
    member(no_error(&v)?, "host-name").map(drop)
}

/// T28.
pub fn get_timezone(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-get-timezone"}"#)?;
    member(no_error(&v)?, "offset").map(drop)
}

/// T29.
pub fn get_users(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let v = ctx.conn()?.call(r#"{"execute":"guest-get-users"}"#)?;
    ensure!(no_error(&v)?.is_array(), "not an array: {v}");
    Ok(())
}

/// The exit case is run by the runner itself.
pub fn unused(_ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    Ok(())
}

fn disabled(c: &mut Conn, cmd: &str) -> Result<(), Failure> {
    let v = c.call(&format!("{{\"execute\":\"{cmd}\"}}"))?;
    let d = error_of(&v, "CommandNotFound")?;
    ensure!(d.contains("has been disabled"), "{cmd}: desc {d:?}");
    Ok(())
}

fn enabled(c: &mut Conn, cmd: &str) -> Result<(), Failure> {
    let v = c.call(&format!("{{\"execute\":\"{cmd}\"}}"))?;
    no_error(&v).map(drop)
}

fn own_instance(
    ctx: &Ctx<'_>,
    args: &[&str],
    f: impl FnOnce(&mut Conn) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let instance = ctx.launcher()?.start(args, None)?;
    let mut c = instance.connect()?;
    f(&mut c)?;
    drop(c);
    let st = instance.terminate()?;
    ensure!(st.code() == Some(0), "SIGTERM ended the agent with {st}");
    Ok(())
}

/// T19.
pub fn blocked_rpcs(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    own_instance(ctx, &["-b", "guest-ping,guest-get-time"], |c| {
        disabled(c, "guest-ping")?;
        disabled(c, "guest-get-time")?;
        enabled(c, "guest-get-fsinfo")
    })
}

/// T20.
pub fn allowed_rpcs(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    own_instance(ctx, &["-a", "guest-ping,guest-get-time"], |c| {
        enabled(c, "guest-ping")?;
        enabled(c, "guest-get-time")?;
        disabled(c, "guest-get-fsinfo")
    })
}

const TEST_CONFIG: &str = "[general]
daemon=false
method=virtio-serial
path=/path/to/org.qemu.guest_agent.0
pidfile=/var/foo/qemu-ga.pid
statedir=/var/state
verbose=true
block-rpcs=guest-ping;guest-get-time
";

/// T21: `-D` with `QGA_CONF` as the only environment variable.
pub fn config(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let dir = std::env::temp_dir().join(format!("qga-config.{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).map_err(|e| Failure(e.to_string()))?;
    std::fs::write(dir.join("data/test-qga-config"), TEST_CONFIG)
        .map_err(|e| Failure(e.to_string()))?;
    let out = ctx
        .launcher()?
        .run(&["-D"], &[("QGA_CONF", "data/test-qga-config")], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    ensure!(
        out.status.code() == Some(0),
        "-D exited with {}",
        out.status
    );
    ensure!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    ensure!(
        lines.next() == Some("[general]"),
        "first group is not general: {text}"
    );
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::trim)
    };
    ensure!(get("daemon") == Some("false"), "daemon in {text}");
    ensure!(get("method") == Some("virtio-serial"), "method in {text}");
    ensure!(
        get("path") == Some("/path/to/org.qemu.guest_agent.0"),
        "path in {text}"
    );
    ensure!(
        get("pidfile") == Some("/var/foo/qemu-ga.pid"),
        "pidfile in {text}"
    );
    ensure!(get("statedir") == Some("/var/state"), "statedir in {text}");
    ensure!(get("verbose") == Some("true"), "verbose in {text}");
    let list: Vec<&str> = get("block-rpcs")
        .unwrap_or("")
        .split(';')
        .filter(|s| !s.is_empty())
        .collect();
    ensure!(
        list == ["guest-ping", "guest-get-time"],
        "block-rpcs in {text}"
    );
    Ok(())
}

const OS_RELEASE: &str = r#"ID=qemu-ga-test
NAME=QEMU-GA
PRETTY_NAME="QEMU Guest Agent test"
VERSION="Test 1"
VERSION_ID=1
VARIANT="Unit test \"\'\$\`\\ and \\\\ etc."
VARIANT_ID=unit-test
"#;

/// T26: os-release from `QGA_OS_RELEASE`, in an environment with nothing else.
pub fn get_osinfo(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let file = std::env::temp_dir().join(format!("qga-os-release.{}", std::process::id()));
    std::fs::write(&file, OS_RELEASE).map_err(|e| Failure(e.to_string()))?;
    let path = file.to_string_lossy().into_owned();
    let instance = ctx
        .launcher()?
        .start(&[], Some(&[("QGA_OS_RELEASE", path.as_str())]))?;
    let mut c = instance.connect()?;
    let v = c.call(r#"{"execute":"guest-get-osinfo"}"#)?;
    let _ = std::fs::remove_file(&file);
    expect(
        "osinfo",
        no_error(&v)?,
        json!({
            "id": "qemu-ga-test",
            "name": "QEMU-GA",
            "pretty-name": "QEMU Guest Agent test",
            "version": "Test 1",
            "version-id": "1",
            "variant": "Unit test \"'$`\\ and \\\\ etc.",
            "variant-id": "unit-test",
        }),
    )?;
    drop(c);
    let st = instance.terminate()?;
    ensure!(st.code() == Some(0), "SIGTERM ended the agent with {st}");
    Ok(())
}
