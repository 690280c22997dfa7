//! `docs/man/guestlink.1` is what `guestlink --generate-man` writes from the clap
//! definitions behind `--help`. Regenerate with `scripts/gen-docs.sh`.

#[test]
fn the_manual_page_is_current() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guestlink"))
        .arg("--generate-man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/man/guestlink.1");
    assert!(
        out.stdout == std::fs::read(path).unwrap(),
        "docs/man/guestlink.1 is stale: run scripts/gen-docs.sh"
    );
}
