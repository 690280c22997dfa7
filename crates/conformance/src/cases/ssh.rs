//! QEMU's SSH key unit tests (`qga/commands-posix-ssh.c`) as protocol cases. They
//! rewrite the `authorized_keys` of the account given with `--ssh-user`, so they run
//! only on a disposable guest. Files are prepared and checked through `guest-file-*`.

use serde_json::{json, Value};

use super::{base64, base64_encode, Ctx};
use crate::conn::{error_of, no_error, Conn};
use crate::{ensure, Failure};

const K1: &str = "algo key1 comments";
const K2: &str = "algo key2 comments";

fn user<'a>(ctx: &Ctx<'a>) -> Result<&'a str, Failure> {
    ctx.ssh_user
        .ok_or_else(|| Failure("needs --ssh-user".into()))
}

fn read_file(c: &mut Conn, path: &str) -> Result<Option<Vec<u8>>, Failure> {
    let v = c.execute("guest-file-open", json!({"path": path, "mode": "r"}))?;
    let Ok(h) = no_error(&v).cloned() else {
        return Ok(None);
    };
    let r = c.execute("guest-file-read", json!({"handle": h, "count": 1 << 20}))?;
    c.execute("guest-file-close", json!({ "handle": h }))?;
    Ok(Some(base64(&no_error(&r)?["buf-b64"])?))
}

fn write_file(c: &mut Conn, path: &str, data: &str) -> Result<(), Failure> {
    let v = c.execute("guest-file-open", json!({"path": path, "mode": "w"}))?;
    let h = no_error(&v)?.clone();
    let b64 = base64_encode(data.as_bytes());
    no_error(&c.execute("guest-file-write", json!({"handle": h, "buf-b64": b64}))?)?;
    c.execute("guest-file-close", json!({ "handle": h }))?;
    Ok(())
}

/// The account's `authorized_keys`, from /etc/passwd read through the agent.
fn keys_path(c: &mut Conn, user: &str) -> Result<String, Failure> {
    let passwd =
        read_file(c, "/etc/passwd")?.ok_or_else(|| Failure("cannot read /etc/passwd".into()))?;
    let text = String::from_utf8_lossy(&passwd);
    let home = text
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user) && f.len() > 5)
        .map(|f| f[5].to_string())
        .ok_or_else(|| Failure(format!("{user} is not in /etc/passwd")))?;
    Ok(format!("{home}/.ssh/authorized_keys"))
}

fn add(c: &mut Conn, user: &str, keys: &[&str], reset: Option<bool>) -> Result<Value, Failure> {
    let mut args = json!({"username": user, "keys": keys});
    if let Some(r) = reset {
        args["reset"] = json!(r);
    }
    c.execute("guest-ssh-add-authorized-keys", args)
}

fn content(c: &mut Conn, path: &str) -> Result<String, Failure> {
    Ok(String::from_utf8_lossy(&read_file(c, path)?.unwrap_or_default()).into_owned())
}

/// S1.
pub fn s1_invalid_user(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let c = ctx.conn()?;
    error_of(&add(c, "", &[], None)?, "GenericError")?;
    let v = c.execute(
        "guest-ssh-remove-authorized-keys",
        json!({"username": "", "keys": []}),
    )?;
    error_of(&v, "GenericError").map(drop)
}

/// S2.
pub fn s2_invalid_key(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let u = user(ctx)?;
    let c = ctx.conn()?;
    error_of(&add(c, u, &["not a valid\nkey"], None)?, "GenericError")?;
    let v = c.execute(
        "guest-ssh-remove-authorized-keys",
        json!({"username": u, "keys": ["not a valid\nkey"]}),
    )?;
    error_of(&v, "GenericError").map(drop)
}

/// S3.
pub fn s3_add_keys(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let u = user(ctx)?;
    let c = ctx.conn()?;
    let path = keys_path(c, u)?;
    no_error(&add(c, u, &[], Some(true))?)?;
    no_error(&add(c, u, &[K2], None)?)?;
    ensure!(
        content(c, &path)? == K2,
        "after adding K2: {:?}",
        content(c, &path)?
    );
    no_error(&add(c, u, &[K1, K2], None)?)?;
    let got = content(c, &path)?;
    ensure!(got == format!("{K2}\n{K1}"), "after adding K1, K2: {got:?}");
    Ok(())
}

/// S4.
pub fn s4_reset(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let u = user(ctx)?;
    let c = ctx.conn()?;
    let path = keys_path(c, u)?;
    no_error(&add(c, u, &[K1, K2], Some(true))?)?;
    ensure!(
        content(c, &path)? == format!("{K1}\n{K2}"),
        "reset to K1, K2"
    );
    no_error(&add(c, u, &[K2], Some(true))?)?;
    ensure!(content(c, &path)? == K2, "reset to K2");
    no_error(&add(c, u, &[], Some(true))?)?;
    ensure!(content(c, &path)?.is_empty(), "reset to nothing");
    Ok(())
}

/// S5.
pub fn s5_remove(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let u = user(ctx)?;
    let c = ctx.conn()?;
    let path = keys_path(c, u)?;
    let preset = format!("{K1}\n{K1}\n# a commented line\nalgo some-key another\n");
    write_file(c, &path, &preset)?;
    let rm = |c: &mut Conn, keys: &[&str]| {
        c.execute(
            "guest-ssh-remove-authorized-keys",
            json!({"username": u, "keys": keys}),
        )
    };
    no_error(&rm(c, &[K2])?)?;
    ensure!(
        content(c, &path)? == preset,
        "removing an absent key changed the file"
    );
    no_error(&rm(c, &[K1, K2])?)?;
    let got = content(c, &path)?;
    ensure!(
        got == "# a commented line\nalgo some-key another\n",
        "after removal: {got:?}"
    );
    Ok(())
}

/// S6.
pub fn s6_get(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let u = user(ctx)?;
    let c = ctx.conn()?;
    let path = keys_path(c, u)?;
    write_file(
        c,
        &path,
        &format!("{K1}\n# a commented line\nalgo some-key another\n"),
    )?;
    let v = c.execute("guest-ssh-get-authorized-keys", json!({ "username": u }))?;
    let keys = no_error(&v)?["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(keys.len() == 2, "keys: {v}");
    ensure!(
        keys.iter()
            .all(|k| k.as_str().is_some_and(|k| k.starts_with("algo "))),
        "keys: {v}"
    );
    Ok(())
}
