//! The cloud-init NoCloud seed (`guestlink iso --cloud-init`): an image labelled
//! `cidata` with `meta-data` and `user-data`. Its user-data waits for the agent image
//! (label `GUESTLINK`), mounts it read-only and runs its install.sh, once, at the
//! instance's first boot; nothing is done inside the guest by hand.

use super::payload::Payload;

/// The label cloud-init's NoCloud data source looks for.
pub const LABEL: &str = "cidata";

/// What the seed says besides installing the agent.
#[derive(Debug, Default)]
pub struct Seed {
    /// cloud-init runs its first-boot modules once per instance id.
    pub instance_id: String,
    /// The guest's host name, when one is given.
    pub hostname: Option<String>,
}

/// The runcmd line: wait up to 60 s for the agent image, install from it, unmount.
const INSTALL: &str = "set -e; dev=/dev/disk/by-label/GUESTLINK; \
for i in $(seq 60); do [ -e $dev ] && break; sleep 1; done; \
dir=$(mktemp -d); mount -o ro $dev $dir; sh $dir/install.sh; umount $dir; rmdir $dir";

/// The seed's files: `meta-data` and `user-data`.
pub fn payload(seed: &Seed) -> Payload {
    let mut meta = format!("instance-id: {}\n", yaml_string(&seed.instance_id));
    if let Some(h) = &seed.hostname {
        meta.push_str(&format!("local-hostname: {}\n", yaml_string(h)));
    }
    let user = format!(
        "#cloud-config\n\
         # guestlink: install the guest agent from the image labelled GUESTLINK that is\n\
         # attached beside this seed (guestlink iso). Runs once, at the first boot.\n\
         runcmd:\n  - [sh, -c, {}]\n",
        yaml_string(INSTALL)
    );
    let mut p = Payload::default();
    p.add("meta-data", meta, 0o644);
    p.add("user-data", user, 0o644);
    p
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn yaml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: &Payload, name: &str) -> String {
        let f = p.files.iter().find(|f| f.path == name).unwrap();
        String::from_utf8(f.data.clone()).unwrap()
    }

    #[test]
    fn user_data_installs_from_the_agent_image() {
        let p = payload(&Seed {
            instance_id: "iid-1".into(),
            hostname: Some("vm: \"one\"".into()),
        });
        let meta = text(&p, "meta-data");
        assert_eq!(
            meta,
            "instance-id: \"iid-1\"\nlocal-hostname: \"vm: \\\"one\\\"\"\n"
        );
        let user = text(&p, "user-data");
        assert!(user.starts_with("#cloud-config\n"), "{user}");
        let line = user
            .lines()
            .find(|l| l.starts_with("  - [sh, -c, "))
            .unwrap();
        let arg = line
            .trim_start_matches("  - [sh, -c, ")
            .trim_end_matches(']');
        let cmd: String = serde_json::from_str(arg).unwrap();
        assert_eq!(cmd, INSTALL);
        assert!(cmd.contains("/dev/disk/by-label/GUESTLINK") && cmd.contains("install.sh"));
    }

    #[test]
    fn the_install_line_is_valid_shell() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", INSTALL])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
