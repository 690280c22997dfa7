//! What an executable is, read from its ELF header: the architecture it runs on, and
//! whether it needs a dynamic loader (a `PT_INTERP` program header). `guestlink iso`
//! puts each binary under its architecture's directory and refuses dynamic ones, which
//! would need the guest's C library to match the build's.

use anyhow::{bail, Context as _};

/// The facts `guestlink iso` needs about one executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    /// The directory name of its architecture on the image (`uname -m` in the guest).
    pub arch: &'static str,
    /// It names a program interpreter (a dynamic loader).
    pub dynamic: bool,
}

const PT_INTERP: u32 = 3;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the header of a 64-bit little-endian ELF executable.
pub fn inspect(bytes: &[u8]) -> anyhow::Result<Elf> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("not an ELF executable");
    }
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        bail!("not a 64-bit little-endian ELF executable");
    }
    let machine = u16_at(bytes, 18).context("truncated ELF header")?;
    let arch = match machine {
        62 => "x86_64",
        183 => "aarch64",
        243 => "riscv64",
        other => bail!("ELF machine {other} is not one guestlink builds for"),
    };
    let phoff = u64_at(bytes, 32).context("truncated ELF header")?;
    let phentsize = u16_at(bytes, 54).context("truncated ELF header")? as usize;
    let phnum = u16_at(bytes, 56).context("truncated ELF header")? as usize;
    let mut dynamic = false;
    for i in 0..phnum {
        let at = usize::try_from(phoff)
            .ok()
            .and_then(|o| o.checked_add(i.checked_mul(phentsize)?))
            .context("ELF program headers out of range")?;
        let kind = u32_at(bytes, at).context("truncated ELF program headers")?;
        dynamic |= kind == PT_INTERP;
    }
    Ok(Elf { arch, dynamic })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header with the given machine and program header types.
    fn elf(machine: u16, headers: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        for kind in headers {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&kind.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn architecture_and_interpreter() {
        let e = inspect(&elf(62, &[6, 3, 1])).unwrap();
        assert_eq!(
            e,
            Elf {
                arch: "x86_64",
                dynamic: true
            }
        );
        let e = inspect(&elf(183, &[6, 1, 2])).unwrap();
        assert_eq!(
            e,
            Elf {
                arch: "aarch64",
                dynamic: false
            }
        );
    }

    #[test]
    fn the_running_test_binary_is_read() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = inspect(&me).unwrap();
        assert_eq!(e.arch, std::env::consts::ARCH);
    }

    #[test]
    fn refuses_what_is_not_a_64_bit_elf() {
        assert!(inspect(b"#!/bin/sh\n").is_err());
        assert!(inspect(&elf(3, &[])).is_err());
        let mut b = elf(62, &[1]);
        b[4] = 1;
        assert!(inspect(&b).is_err());
        // Program headers said to lie beyond the file.
        let mut b = elf(62, &[1]);
        b[56..58].copy_from_slice(&9u16.to_le_bytes());
        assert!(inspect(&b).is_err());
        assert!(inspect(&elf(62, &[])[..30]).is_err());
    }
}
