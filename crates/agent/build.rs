//! Link options of guestlinkd's release build, only where rustc links with lld (on
//! x86_64-unknown-linux-gnu since Rust 1.90, unless the build picks its own linker:
//! `-fuse-ld=bfd` for the static builds):
//!
//! - identical code folding (`--icf=all`), which folds the copies generic code leaves
//!   behind and keeps the daemon under its size budget (docs/benchmarks.md);
//! - the function layout: `layout.order` lists the functions a running agent executes
//!   (start-up, serving its channels, idling), and lld places them together at the
//!   front of the code, so an idle agent keeps a few hundred KiB of code resident
//!   instead of all of it (the kernel maps code in windows around each page touched).
//!   `scripts/gen-layout.py` writes the list from a run of the release build; names
//!   the build does not have (another toolchain, changed code) are skipped;
//! - a link map beside the binary (`target/release/guestlinkd.map`), from which that
//!   script and `scripts/check-size.sh` learn where each function went.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=layout.order");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    let own_linker = std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("fuse-ld"));
    if !(release && target == "x86_64-unknown-linux-gnu" && !own_linker) {
        return;
    }
    let arg = |a: &str| println!("cargo:rustc-link-arg-bin=guestlinkd=-Wl,{a}");
    arg("--icf=all");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let order = manifest.join("layout.order");
    if order.exists() {
        arg(&format!("--symbol-ordering-file={}", order.display()));
        arg("--no-warn-symbol-ordering");
    }
    // OUT_DIR is <target>/<profile>/build/guestlinkd-HASH/out.
    if let Some(dir) = std::env::var_os("OUT_DIR").and_then(|o| profile_dir(Path::new(&o))) {
        arg(&format!("-Map={}", dir.join("guestlinkd.map").display()));
    }
}

fn profile_dir(out: &Path) -> Option<PathBuf> {
    Some(out.parent()?.parent()?.parent()?.to_path_buf())
}
