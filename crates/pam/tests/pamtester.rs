//! pam_guestlink.so in a real PAM stack, driven by Debian's `pamtester` as a display
//! manager would drive it: the host hands credentials to a running guestlinkd (on a
//! private bus standing in for the system bus), the greeter side answers the module's
//! prompt with the token from the bus, and the next module of the stack (`pam_exec`
//! with `expose_authtok`) sees the host's user and password. A wrong token and a second
//! use of the right one fail.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use futures_util::StreamExt as _;
use guestlink_client::{Client, Endpoint};
use guestlink_testkit::{sibling_lib, Kill, Scratch, SsoAgent};
use guestlink_vocabulary::commands::GuestlinkCredentialsHandoff;
use guestlink_vocabulary::types::CredentialsArgs;

const T: Duration = Duration::from_secs(10);
const PASSWORD: &str = "c0rrect h0rse, battery";

fn require(program: &str) -> PathBuf {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{program} is required: apt-get install pamtester dbus-daemon (.ci/run does)")
        })
}

/// The module, beside this test (`target/<profile>/libpam_guestlink.so`).
fn module() -> PathBuf {
    sibling_lib("guestlink-pam", "libpam_guestlink.so")
}

/// A PAM service file in /etc/pam.d, removed when dropped.
struct Service {
    name: String,
}

impl Service {
    fn install(module: &Path, socket: &Path, check: &Path) -> Service {
        let name = format!("guestlink-sso-test-{}", std::process::id());
        let text = format!(
            "auth requisite {} socket={}\n\
             auth required pam_exec.so expose_authtok quiet {}\n\
             account required pam_permit.so\n",
            module.display(),
            socket.display(),
            check.display()
        );
        std::fs::write(Path::new("/etc/pam.d").join(&name), text)
            .expect("writing /etc/pam.d needs root");
        Service { name }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Path::new("/etc/pam.d").join(&self.name));
    }
}

/// `pamtester SERVICE nobody authenticate`, answering the prompt with `token`.
fn pamtester(service: &str, token: &str) -> Output {
    let mut child = Command::new(require("pamtester"))
        .args(["-v", service, "nobody", "authenticate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = writeln!(stdin, "{token}");
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pam_stack_signs_on_with_the_credentials_the_host_sent() {
    let dir = Scratch::new("pam-sso");
    let mut bus = Command::new(require("dbus-daemon"))
        .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut address = String::new();
    BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let _bus = Kill(bus);
    let address = address.trim().to_string();

    let agent = SsoAgent::start(dir.path(), &address);
    let (socket, qga) = (agent.socket.clone(), agent.qga.clone());

    // The module after ours: succeeds only for the host's user and password, and
    // records the user it saw.
    let seen = dir.join("seen");
    let check = dir.join("check.sh");
    std::fs::write(
        &check,
        format!(
            "#!/bin/sh\npw=$(tr -d '\\000')\n[ \"$PAM_USER\" = alice ] && [ \"$pw\" = '{PASSWORD}' ] || exit 1\necho \"$PAM_USER\" > '{}'\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&check, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let service = Service::install(&module(), &socket, &check);

    // The greeter's side of the bus: the token comes with UserAuthenticated.
    let watcher = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .unwrap();
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.ovirt.vdsm.Credentials")
        .member("UserAuthenticated")
        .build()
        .unwrap();
    let mut signals = zbus::MessageStream::for_match_rule(rule, &watcher, None)
        .await
        .unwrap();

    let mut host = Client::connect(&Endpoint::path(&qga), T).await.unwrap();
    let handoff = tokio::spawn(async move {
        host.call::<GuestlinkCredentialsHandoff>(&CredentialsArgs {
            username: "alice".into(),
            password: PASSWORD.into(),
        })
        .await
    });
    let signal = tokio::time::timeout(T, signals.next())
        .await
        .expect("no UserAuthenticated signal")
        .unwrap()
        .unwrap();
    let token: String = signal.body().deserialize().unwrap();

    let name = service.name.clone();
    let (wrong, right, again) = tokio::task::spawn_blocking(move || {
        let wrong = pamtester(&name, "not-the-token");
        let right = pamtester(&name, &token);
        let again = pamtester(&name, &token);
        (wrong, right, again)
    })
    .await
    .unwrap();
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(!wrong.status.success(), "a wrong token: {}", text(&wrong));
    assert!(right.status.success(), "the token: {}", text(&right));
    assert!(
        text(&right).contains("successfully authenticated"),
        "{}",
        text(&right)
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "alice\n");
    // One use: the hand-off is over.
    assert!(!again.status.success(), "a second use: {}", text(&again));
    let collected = tokio::time::timeout(T, handoff)
        .await
        .expect("the hand-off ends")
        .unwrap()
        .unwrap();
    assert!(collected.collected);
    assert!(
        !socket.exists(),
        "the credentials socket outlived the hand-off"
    );
}
