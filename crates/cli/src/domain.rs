//! `--domain NAME`: the host end of a libvirt domain's `org.guestlink.0` channel, read
//! from `virsh dumpxml` (which honours `LIBVIRT_DEFAULT_URI`). libvirt keeps the
//! `org.qemu.guest_agent.0` socket open itself, so guestlink uses its own port.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};

/// The port guestlink looks for.
pub const PORT: &str = "org.guestlink.0";

/// The socket path of `domain`'s guestlink channel.
pub fn socket(domain: &str) -> anyhow::Result<PathBuf> {
    let virsh = std::env::var_os("GUESTLINK_VIRSH").unwrap_or_else(|| "virsh".into());
    let out = std::process::Command::new(&virsh)
        .args(["dumpxml", "--", domain])
        .output()
        .with_context(|| format!("cannot run {}", PathBuf::from(&virsh).display()))?;
    if !out.status.success() {
        bail!(
            "virsh dumpxml {domain} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let xml = String::from_utf8_lossy(&out.stdout);
    channel_path(&xml, PORT).ok_or_else(|| {
        anyhow!(
            "domain {domain} has no {PORT} channel: add one with `virsh edit {domain}` inside <devices>:\n  <channel type='unix'>\n    <target type='virtio' name='{PORT}'/>\n  </channel>"
        )
    })
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    for quote in ['\'', '"'] {
        let key = format!("{name}={quote}");
        if let Some(at) = tag.find(&key) {
            let rest = &tag[at + key.len()..];
            return rest.find(quote).map(|end| &rest[..end]);
        }
    }
    None
}

/// The `source path` of the unix channel whose virtio target is named `port`.
pub fn channel_path(xml: &str, port: &str) -> Option<PathBuf> {
    let mut rest = xml;
    while let Some(start) = rest.find("<channel") {
        let body = &rest[start..];
        let end = body.find("</channel>").unwrap_or(body.len());
        let channel = &body[..end];
        rest = &body[end..];
        let target = channel.find("<target").map(|i| &channel[i..]);
        let named = target.and_then(|t| attr(&t[..t.find('>').unwrap_or(t.len())], "name"));
        if named != Some(port) {
            continue;
        }
        let source = channel.find("<source").map(|i| &channel[i..])?;
        let tag = &source[..source.find('>').unwrap_or(source.len())];
        return attr(tag, "path").map(PathBuf::from);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<domain type='kvm'>
  <devices>
    <channel type='unix'>
      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>
    </channel>
    <channel type="unix">
      <source mode="bind" path="/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.guestlink.0"/>
      <target type="virtio" name="org.guestlink.0" state="connected"/>
      <alias name="channel1"/>
    </channel>
  </devices>
</domain>"#;

    #[test]
    fn the_guestlink_channel_is_found_among_others() {
        assert_eq!(
            channel_path(XML, PORT).unwrap(),
            PathBuf::from("/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.guestlink.0")
        );
        assert!(channel_path(XML, "com.redhat.spice.0").is_none());
        assert!(channel_path("<domain/>", PORT).is_none());
    }
}
