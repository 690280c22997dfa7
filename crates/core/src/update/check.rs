//! The checks a staged executable passes before it replaces the running one: all its
//! bytes and the announced SHA-256; the ed25519 signature of its bytes when the guest
//! has an update key; and that it runs (`-V` answers within 10 s and names guestlinkd).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guestlink_vocabulary::types::base64_decode;

use super::upload::Upload;

/// The largest executable accepted (an unstripped debug build fits).
pub const MAX_SIZE: u64 = 256 << 20;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses a SHA-256 in hex.
pub fn parse_sha256(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Parameter 'sha256' expects 64 hexadecimal digits".into());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Reads an ed25519 public key: 32 bytes in base64 or hex on one line, or an OpenSSH
/// `ssh-ed25519 AAAA... comment` line.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or("the key file is empty")?;
    let raw = if let Some(rest) = line.strip_prefix("ssh-ed25519 ") {
        let blob = base64_decode(rest.split_whitespace().next().unwrap_or("").as_bytes())
            .map_err(|_| "the ssh-ed25519 key is not base64")?;
        // string "ssh-ed25519", string key (each a 4-byte length and the bytes).
        let name_len = u32::from_be_bytes(
            blob.get(..4)
                .ok_or("short key")?
                .try_into()
                .map_err(|_| "short key")?,
        ) as usize;
        let at = 4 + name_len;
        blob.get(at + 4..at + 4 + 32)
            .ok_or("short ssh-ed25519 key")?
            .to_vec()
    } else if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
        parse_sha256(line)?.to_vec()
    } else {
        base64_decode(line.as_bytes())
            .map_err(|_| "the key is neither base64, hex nor ssh-ed25519")?
    };
    raw.try_into()
        .map_err(|_| "an ed25519 public key has 32 bytes".to_string())
}

/// The upload is whole, has the announced digest and, when `key` exists, a valid
/// signature. The error says what failed.
pub fn verify(u: &Upload, key: &Path) -> Result<(), String> {
    if u.received != u.size {
        return Err(format!(
            "the update is incomplete: {} of {} bytes arrived",
            u.received, u.size
        ));
    }
    let digest = u.digest();
    if digest != u.sha256 {
        return Err(format!(
            "the update's sha256 is {}, not the {} announced",
            hex(&digest),
            hex(&u.sha256)
        ));
    }
    let key_text = match std::fs::read_to_string(key) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read the update key {}: {e}", key.display())),
    };
    let Some(key_text) = key_text else {
        return Ok(());
    };
    let public = parse_key(&key_text).map_err(|e| format!("{}: {e}", key.display()))?;
    let sig = u.signature.as_ref().ok_or_else(|| {
        format!(
            "the update is not signed, and this guest requires a signature by {}",
            key.display()
        )
    })?;
    let public = ed25519_compact::PublicKey::new(public);
    let sig = ed25519_compact::Signature::from_slice(sig)
        .map_err(|_| "the signature is not 64 bytes".to_string())?;
    let mut state = public.verify_incremental(&sig).map_err(|_| {
        format!(
            "the update's signature does not match the key {}",
            key.display()
        )
    })?;
    let mut file = std::fs::File::open(&u.path)
        .map_err(|e| format!("cannot read {}: {e}", u.path.display()))?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => state.absorb(&buf[..n]),
            Err(e) => return Err(format!("cannot read {}: {e}", u.path.display())),
        }
    }
    state.verify().map_err(|_| {
        format!(
            "the update's signature does not match the key {}",
            key.display()
        )
    })
}

/// What `exe -V` prints, when it runs and names guestlinkd within 10 s.
pub fn version_of(exe: &Path) -> Result<String, String> {
    let mut cmd = Command::new(exe);
    cmd.arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // The staged file was written by this process: a child another thread forks
    // (guest-exec) may briefly hold its descriptor until its own exec, and spawning
    // then fails with ETXTBSY. That passes; a program that does not run does not.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("the new executable does not run: {e}")),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the new executable did not answer -V within 10 s".into());
            }
        }
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    let line = out.lines().next().unwrap_or("").trim().to_owned();
    if !status.success() || !line.contains("guestlinkd") {
        return Err(format!(
            "the new executable is not a guestlinkd (-V: {status}, '{}')",
            line.escape_debug()
        ));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_three_spellings() {
        let raw = [7u8; 32];
        let b64 = guestlink_vocabulary::types::base64_encode(&raw);
        assert_eq!(parse_key(&format!("# update key\n{b64}\n")).unwrap(), raw);
        assert_eq!(parse_key(&hex(&raw)).unwrap(), raw);
        let mut blob = Vec::new();
        blob.extend(11u32.to_be_bytes());
        blob.extend(b"ssh-ed25519");
        blob.extend(32u32.to_be_bytes());
        blob.extend(raw);
        let ssh = format!(
            "ssh-ed25519 {} host@example",
            guestlink_vocabulary::types::base64_encode(&blob)
        );
        assert_eq!(parse_key(&ssh).unwrap(), raw);
        assert!(parse_key("").is_err());
        assert!(parse_key("AAAA").is_err());
        assert!(parse_sha256("xyz").is_err());
        assert_eq!(parse_sha256(&"ab".repeat(32)).unwrap(), [0xab; 32]);
    }

    #[test]
    fn version_of_wants_a_guestlinkd() {
        let dir = std::env::temp_dir().join(format!("guestlink-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            p
        };
        let good = script("good", "echo 'QEMU Guest Agent 10.0.2 (guestlinkd 9.9.9)'");
        assert_eq!(
            version_of(&good).unwrap(),
            "QEMU Guest Agent 10.0.2 (guestlinkd 9.9.9)"
        );
        let other = script("other", "echo 'QEMU Guest Agent 8.0'");
        assert!(version_of(&other).unwrap_err().contains("not a guestlinkd"));
        let fails = script("fails", "exit 3");
        assert!(version_of(&fails).is_err());
        let text = dir.join("text");
        std::fs::write(&text, "not a program").unwrap();
        assert!(version_of(&text).unwrap_err().contains("does not run"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
