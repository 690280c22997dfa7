//! Link options of a release binary that idles in every guest (guestlinkd,
//! guestlink-session), for their build scripts, which include this file. Only where
//! rustc links with lld: on x86_64-unknown-linux-gnu since Rust 1.90, unless the build
//! picks its own linker (`-fuse-ld=bfd` for the static builds: GNU ld has neither ICF
//! nor symbol ordering).
//!
//! - identical code folding (`--icf=all`), which folds the copies generic code leaves
//!   behind (guestlinkd's size budget counts on it, docs/benchmarks.md);
//! - the function layout: the crate's `layout.order` lists the functions the running
//!   program executes, and lld places them together at the front of its code, so an
//!   idle process keeps a few hundred KiB of code resident instead of all of it (the
//!   kernel maps code in windows around each page touched). `scripts/gen-layout.py`
//!   writes the list from a run of the release build; names the build does not have
//!   (another toolchain, changed code) are skipped;
//! - a link map beside the binary (`target/release/NAME.map`), from which that script
//!   and `scripts/check-size.sh` learn where each function went.

use std::path::{Path, PathBuf};

/// Prints the link options of binary `bin` for cargo.
pub fn link_options(bin: &str) {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=layout.order");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    let own_linker = std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("fuse-ld"));
    if !(release && target == "x86_64-unknown-linux-gnu" && !own_linker) {
        return;
    }
    let arg = |a: &str| println!("cargo:rustc-link-arg-bin={bin}=-Wl,{a}");
    arg("--icf=all");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let order = manifest.join("layout.order");
    if order.exists() {
        arg(&format!("--symbol-ordering-file={}", order.display()));
        arg("--no-warn-symbol-ordering");
    }
    // OUT_DIR is <target>/<profile>/build/<crate>-HASH/out.
    if let Some(dir) = std::env::var_os("OUT_DIR").and_then(|o| profile_dir(Path::new(&o))) {
        arg(&format!(
            "-Map={}",
            dir.join(format!("{bin}.map")).display()
        ));
    }
}

fn profile_dir(out: &Path) -> Option<PathBuf> {
    Some(out.parent()?.parent()?.parent()?.to_path_buf())
}
