//! Link options of guestlinkd's release build: identical code folding (lld's
//! `--icf=all`), which folds the copies generic code leaves behind and keeps the daemon
//! under its size budget (docs/benchmarks.md). Only where rustc links with lld: on
//! x86_64-unknown-linux-gnu since Rust 1.90, unless the build picks its own linker
//! (`-fuse-ld=bfd` for the static builds: GNU ld has no ICF).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    let own_linker = std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("fuse-ld"));
    if release && target == "x86_64-unknown-linux-gnu" && !own_linker {
        println!("cargo:rustc-link-arg-bin=guestlinkd=-Wl,--icf=all");
    }
}
