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
        (None, None) => Err(anyhow::anyhow!(
            "no agent given: use --socket PATH (or GUESTLINK_SOCKET), --vsock CID:PORT or --domain NAME"
        )),
    }
}

/// Connects and resynchronises.
pub async fn client(cli: &Cli) -> anyhow::Result<Client> {
    let ep = endpoint(cli)?;
    Ok(Client::connect(&ep, cli.reply_timeout()).await?)
}

/// An error with a hint for the common causes.
pub fn explain(e: &anyhow::Error) -> String {
    let hint = match e.downcast_ref::<ClientError>() {
        Some(ClientError::Connect { source, .. }) => match source.kind() {
            std::io::ErrorKind::NotFound => {
                " (no such socket: is the VM running, and is the channel configured? libvirt puts it under /var/lib/libvirt/qemu/channel/target/)"
            }
            std::io::ErrorKind::PermissionDenied => " (permission denied: run as root or as the QEMU user)",
            std::io::ErrorKind::ConnectionRefused => " (nobody listens on it: QEMU is not running, or another client holds the channel)",
            _ => "",
        },
        Some(ClientError::Timeout(_)) => {
            " (is the guest agent running inside the guest? QEMU accepts the connection even when no agent listens)"
        }
        Some(e) if e.is_disabled() && e.to_string().contains("frozen state") => {
            " (the guest's filesystems are frozen: `guestlink thaw` thaws them, then the command works again)"
        }
        Some(e) if e.is_disabled() => {
            " (the agent's policy disables this command: see its --allow-rpcs/--block-rpcs or configuration)"
        }
        _ => "",
    };
    // Our errors carry their cause in their own text; anyhow's chain would repeat it.
    let text = match e.downcast_ref::<ClientError>() {
        Some(c) => c.to_string(),
        None => format!("{e:#}"),
    };
    format!("{text}{hint}")
}
