//! Reaching the agent from the command line, and explaining failures in words an
//! administrator can act on.

use guestlink_client::{Client, ClientError, Endpoint};

use crate::Cli;

/// The endpoint the options name.
pub fn endpoint(cli: &Cli) -> anyhow::Result<Endpoint> {
    if let Some(domain) = &cli.domain {
        return crate::domain::socket(domain).map(Endpoint::path);
    }
    match (&cli.socket, &cli.vsock) {
        (Some(p), _) => Ok(Endpoint::path(p)),
        (None, Some(v)) => Endpoint::vsock(v).map_err(anyhow::Error::msg),
        (None, None) => Err(crate::exit::Usage(
            "no agent given: use --socket PATH (or GUESTLINK_SOCKET), --vsock CID:PORT or --domain NAME".into(),
        )
        .into()),
    }
}

/// Connects and resynchronises.
pub async fn client(cli: &Cli) -> anyhow::Result<Client> {
    let ep = endpoint(cli)?;
    Ok(Client::connect(&ep, cli.reply_timeout()).await?)
}

/// An error's text, and a hint for the common causes.
pub fn explain(e: &anyhow::Error) -> (String, Option<&'static str>) {
    let hint = match e.downcast_ref::<ClientError>() {
        Some(ClientError::Connect { source, .. }) => match source.kind() {
            std::io::ErrorKind::NotFound => Some(
                "no such socket: is the VM running, and is the channel configured? libvirt puts it under /var/lib/libvirt/qemu/channel/target/",
            ),
            std::io::ErrorKind::PermissionDenied => {
                Some("permission denied: run as root or as the QEMU user")
            }
            std::io::ErrorKind::ConnectionRefused => Some(
                "nobody listens on it: QEMU is not running, or another client holds the channel",
            ),
            _ => None,
        },
        Some(ClientError::Timeout(_)) => Some(
            "is the guest agent running inside the guest? QEMU accepts the connection even when no agent listens",
        ),
        Some(e) if e.is_disabled() && e.to_string().contains("frozen state") => Some(
            "the guest's filesystems are frozen: `guestlink thaw` thaws them, then the command works again",
        ),
        Some(e) if e.is_disabled() => Some(
            "the agent's policy disables this command: see its --allow-rpcs/--block-rpcs or configuration, and `guestlinkd --explain command=NAME` in the guest",
        ),
        _ => None,
    };
    // Our errors carry their cause in their own text; anyhow's chain would repeat it.
    let text = match e.downcast_ref::<ClientError>() {
        Some(c) => c.to_string(),
        None => format!("{e:#}"),
    };
    (text, hint)
}

/// A client of an agent that must be guestlinkd (see [`require_guestlinkd`]).
pub async fn guestlinkd_client(cli: &Cli, what: &str, command: &str) -> anyhow::Result<Client> {
    let mut c = client(cli).await?;
    require_guestlinkd(&mut c, what, command).await?;
    Ok(c)
}

/// Fails with [`crate::exit::NeedsGuestlinkd`] unless the agent has `command` (a
/// guestlink extension), for `what` (`guestlink events`). An agent that has it but
/// refuses it goes on, and the call says why.
pub async fn require_guestlinkd(c: &mut Client, what: &str, command: &str) -> anyhow::Result<()> {
    let info = c
        .call::<guestlink_vocabulary::commands::GuestInfo>(&guestlink_vocabulary::types::Empty {})
        .await?;
    if info.supported_commands.iter().any(|s| s.name == command) {
        return Ok(());
    }
    let ours = info
        .supported_commands
        .iter()
        .any(|s| s.name.starts_with("__org.guestlink_"));
    let agent = if ours {
        format!("guestlinkd without {command}")
    } else {
        format!("qemu-ga {}", info.version)
    };
    Err(crate::exit::NeedsGuestlinkd {
        what: what.to_string(),
        agent,
    }
    .into())
}
