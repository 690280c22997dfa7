//! `docs/man/guestlink-session.1` and its subcommands' pages are what `guestlink-session
//! --generate-man` and `--generate-man-dir` write from the clap definitions behind
//! `--help`. Regenerate with `scripts/gen-docs.sh`.

const BIN: &str = env!("CARGO_BIN_EXE_guestlink-session");
/// guestlink-session(1), -run and -clipboard.
const MIN_PAGES: usize = 3;

#[test]
fn the_manual_page_is_current() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guestlink-session"))
        .arg("--generate-man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/man/guestlink-session.1"
    );
    assert!(
        out.stdout == std::fs::read(path).unwrap(),
        "docs/man/guestlink-session.1 is stale: run scripts/gen-docs.sh"
    );
}

/// Every page `--generate-man-dir` writes (the binary's and one per subcommand) is in
/// `docs/man` as written.
#[test]
fn the_manual_pages_are_current() {
    let dir = std::env::temp_dir().join(format!(
        "gl-man-{}-{}",
        env!("CARGO_PKG_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let st = std::process::Command::new(BIN)
        .arg("--generate-man-dir")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
    let mut pages = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let checked_in = std::fs::read(docs.join(&name)).unwrap_or_default();
        assert!(
            std::fs::read(entry.path()).unwrap() == checked_in,
            "docs/man/{name} is stale or missing: run scripts/gen-docs.sh"
        );
        pages += 1;
    }
    assert!(pages >= MIN_PAGES, "{pages} pages");
    std::fs::remove_dir_all(&dir).unwrap();
}
