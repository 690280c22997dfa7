//! Single sign-on through a real display manager: Debian's LightDM (as root, on Xvfb,
//! with a private bus standing in for the system bus) runs `guestlink-session greeter`
//! as its greeter, as user `lightdm`. The host hands credentials to guestlinkd; the
//! greeter sees the token on the bus, LightDM's PAM conversation runs
//! `pam_guestlink.so`, whose "Token?" the greeter answers, the next module checks the
//! user and password the host sent, and LightDM starts that user's session, which
//! records who it runs as. A wrong password logs nobody in, and an announcement a
//! user forges on the bus is ignored. The test adds a user of its
//! own for the session and removes it after.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guestlink_client::{Client, Endpoint};
use guestlink_testkit::{sibling_lib, Kill, Scratch, SsoAgent};
use guestlink_vocabulary::commands::GuestlinkCredentialsHandoff;
use guestlink_vocabulary::types::CredentialsArgs;

const SESSION: &str = env!("CARGO_BIN_EXE_guestlink-session");
const T: Duration = Duration::from_secs(20);
/// The user the host signs on, made for the test (with a home in the scratch directory)
/// and removed after it.
const USER: &str = "glsso-test";
const PASSWORD: &str = "s3cret, from the host";

fn require(program: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{program} is required: apt-get install lightdm xvfb dbus-daemon (.ci/run does)")
        })
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn wait_until(what: &str, logs: &[PathBuf], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !done() {
        if Instant::now() > deadline {
            let text: String = logs
                .iter()
                .map(|l| {
                    format!(
                        "--- {}\n{}\n",
                        l.display(),
                        std::fs::read_to_string(l).unwrap_or_default()
                    )
                })
                .collect();
            panic!("{what} did not happen\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PAM service file in /etc/pam.d, removed when dropped.
struct Service(PathBuf);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The test's user, removed when dropped.
struct User;

impl User {
    fn add(home: &Path) -> User {
        let _ = Command::new("userdel").arg(USER).output();
        let out = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", "-d"])
            .arg(home)
            .arg(USER)
            .output()
            .expect("useradd");
        assert!(out.status.success(), "useradd: {out:?}");
        std::fs::create_dir(home).unwrap();
        let st = Command::new("chown").arg(USER).arg(home).status().unwrap();
        assert!(st.success());
        User
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(USER).output();
    }
}

/// LightDM, stopped with SIGTERM (which stops its X server and sessions) when dropped.
struct LightDm(std::process::Child);

impl Drop for LightDm {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One sign-on attempt with `password`: what the user's session wrote (who it runs
/// as), if one started, and whether the greeter says it signed on.
fn sign_on(password: &str) -> (Option<String>, bool) {
    let lightdm = require("lightdm");
    let xvfb = require("Xvfb");
    let dbus = require("dbus-daemon");
    let dir = Scratch::new("lightdm");
    // LightDM's greeter (user lightdm) and the user's session reach into it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().display().to_string();
    let _user = User::add(&dir.join("home"));

    // The private "system" bus: anyone may connect, as on the system bus.
    let bus = dir.join("bus");
    write(
        &dir.join("bus.conf"),
        &format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"#,
            bus.display()
        ),
        0o644,
    );
    let _bus = Kill(
        Command::new(dbus)
            .arg(format!("--config-file={d}/bus.conf"))
            .args(["--nofork", "--nopidfile"])
            .spawn()
            .unwrap(),
    );
    let address = format!("unix:path={}", bus.display());
    wait_until("the bus", &[], || {
        std::os::unix::net::UnixStream::connect(&bus).is_ok()
    });

    let agent = SsoAgent::start(dir.path(), &address);
    let (socket, qga, agent_log) = (&agent.socket, &agent.qga, &agent.log);

    // The greeter's PAM service: pam_guestlink, then a check of what it set.
    let check = dir.join("check.sh");
    write(
        &check,
        &format!(
            "#!/bin/sh\npw=$(tr -d '\\000')\n[ \"$PAM_USER\" = {USER} ] && [ \"$pw\" = '{PASSWORD}' ]\n"
        ),
        0o755,
    );
    let service = format!("guestlink-lightdm-test-{}", std::process::id());
    let pam_file = Service(Path::new("/etc/pam.d").join(&service));
    std::fs::write(
        &pam_file.0,
        format!(
            "auth requisite {} socket={}\n\
             auth required pam_exec.so expose_authtok quiet {}\n\
             account required pam_permit.so\n\
             session required pam_permit.so\n",
            sibling_lib("guestlink-pam", "libpam_guestlink.so").display(),
            socket.display(),
            check.display()
        ),
    )
    .expect("writing /etc/pam.d needs root");

    // Xvfb for LightDM's X server: its command line less what Xvfb does not take.
    write(
        &dir.join("xserver.sh"),
        &format!(
            "#!/bin/sh\nset -- \"$@\" --end\nwhile [ \"$1\" != --end ]; do\n  case \"$1\" in\n    vt*|-novtswitch|-keeptty) shift ;;\n    -seat|-background) shift 2 ;;\n    *) set -- \"$@\" \"$1\"; shift ;;\n  esac\ndone\nshift\nexec {} \"$@\" -screen 0 1024x768x24\n",
            xvfb.display()
        ),
        0o755,
    );
    // The user's session records who it runs as.
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let who = out.join("who");
    write(
        &dir.join("session.sh"),
        &format!("#!/bin/sh\nid -un > {}\nexec sleep 60\n", who.display()),
        0o755,
    );
    for sub in ["greeters", "sessions"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    write(
        &dir.join("greeters/guestlink-sso.desktop"),
        &format!(
            "[Desktop Entry]\nName=guestlink single sign-on\nExec={SESSION} greeter --bus {address}\nType=Application\n"
        ),
        0o644,
    );
    write(
        &dir.join("sessions/record.desktop"),
        &format!("[Desktop Entry]\nName=record\nExec={d}/session.sh\nType=Application\n"),
        0o644,
    );
    write(
        &dir.join("lightdm.conf"),
        &format!(
            "[LightDM]\ngreeters-directory={d}/greeters\nsessions-directory={d}/sessions\n\
             run-directory={d}/run\ncache-directory={d}/cache\nlog-directory={d}/log\n\
             user-authority-in-system-dir=true\nminimum-display-number=70\n\
             [Seat:*]\nxserver-command={d}/xserver.sh\ngreeter-session=guestlink-sso\n\
             user-session=record\npam-service={service}\nsession-wrapper={d}/session.sh\n"
        ),
        0o644,
    );
    let log = dir.join("log/lightdm.log");
    let greeter_log = dir.join("log/seat0-greeter.log");
    let logs = [log.clone(), greeter_log.clone(), agent_log.clone()];
    let _lightdm = LightDm(
        Command::new(lightdm)
            .arg("-c")
            .arg(dir.join("lightdm.conf"))
            .arg("-d")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The greeter is up and listening once it has said hello to LightDM.
    wait_until("the greeter's connection to LightDM", &logs, || {
        std::fs::read_to_string(&greeter_log).is_ok_and(|t| t.contains("waiting for credentials"))
    });

    // A user's forged announcement is ignored: only root's count (dbus-send is gone by
    // the time the greeter asks the bus whose it was, which is refused the same way).
    let forged = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(require("dbus-send"))
        .arg(format!("--bus={address}"))
        .args([
            "--type=signal",
            "/org/ovirt/vdsm/Credentials",
            "org.ovirt.vdsm.Credentials.UserAuthenticated",
            "string:forged",
        ])
        .output()
        .unwrap();
    assert!(forged.status.success(), "dbus-send: {forged:?}");
    wait_until("the greeter ignoring a user's announcement", &logs, || {
        std::fs::read_to_string(&greeter_log)
            .is_ok_and(|t| t.contains("ignored credentials announced by"))
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let collected = rt.block_on(async {
        let mut host = Client::connect(&Endpoint::path(qga), T).await.unwrap();
        host.call::<GuestlinkCredentialsHandoff>(&CredentialsArgs {
            username: USER.into(),
            password: password.into(),
        })
        .await
        .unwrap()
        .collected
    });
    assert!(
        collected,
        "the greeter's PAM stack never collected the credentials"
    );
    if password == PASSWORD {
        wait_until("the user's session", &logs, || {
            std::fs::read_to_string(&who).is_ok_and(|t| t.ends_with('\n'))
        });
    } else {
        // The failure reaches the greeter; no session starts.
        wait_until("the greeter seeing the failure", &logs, || {
            std::fs::read_to_string(&greeter_log).is_ok_and(|t| t.contains("sign-on failed"))
        });
    }
    let greeter = std::fs::read_to_string(&greeter_log).unwrap_or_default();
    (
        std::fs::read_to_string(&who).ok(),
        greeter.contains("signed on as"),
    )
}

#[test]
fn lightdm_logs_in_the_user_the_host_sent_and_nobody_on_a_wrong_password() {
    // One LightDM at a time (each has its PAM service, display and bus).
    let (who, signed_on) = sign_on("not the password");
    assert_eq!(who, None, "a session started on a wrong password");
    assert!(!signed_on);
    let (who, signed_on) = sign_on(PASSWORD);
    assert_eq!(who, Some(format!("{USER}\n")));
    assert!(signed_on);
}
