//! Real peers (Debian's qemu-ga, spice-vdagentd, tmux…): a test that needs one runs
//! against it, says SKIPPED without it on a developer's machine, and fails without it
//! in CI, so that a missing package never turns into a green run.

use std::path::Path;

/// Whether the peer program at `path` is here. In CI (`CI` set) or with
/// `GUESTLINK_REQUIRE_PEERS=1`, its absence fails the calling test.
pub fn peer_available(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("GUESTLINK_REQUIRE_PEERS").is_some();
    assert!(
        !required,
        "{path} is required for this test (install it; .ci/run does)"
    );
    eprintln!("SKIPPED: {path} is not installed (CI installs it and requires it)");
    false
}
