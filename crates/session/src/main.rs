//! guestlink-session: the per-user session agent.
//!
//! Runs in a user's graphical session (a systemd user unit), connects to guestlinkd's
//! guest socket, registers its logind session, and owns the desktop side: it answers
//! guestlinkd's `SESSION_REQUEST`s (read, set, offer or clear the clipboard; apply the
//! host's display layout through XRandR) and reports when another application takes the
//! clipboard. `guestlink-session clipboard get|set` reads and
//! sets the session clipboard from a shell, through guestlinkd, like `xclip` does, and
//! `guestlink-session clipboard clear` empties it.

// One exception, documented where it is: the greeter takes the pipes LightDM leaves it.
#![deny(unsafe_code)]

mod agent;
mod clipboard;
mod displays;
mod greeter;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use guestlink_client::{Client, Endpoint};
use guestlink_vocabulary::commands::{
    GuestlinkClipboardClear, GuestlinkClipboardGet, GuestlinkClipboardSet,
};
use guestlink_vocabulary::types::{
    Base64Data, ClipboardGetArgs, ClipboardSelection, ClipboardSelectionArgs, ClipboardSetArgs,
};

/// guestlink-session — the desktop side of guestlinkd for one user session.
#[derive(Debug, Parser)]
#[command(name = "guestlink-session", version)]
struct Cli {
    /// guestlinkd's guest socket.
    #[arg(
        long,
        global = true,
        env = "GUESTLINK_GUEST_SOCKET",
        default_value = "/run/guestlink/agent.sock"
    )]
    socket: PathBuf,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the session (the default).
    Run {
        /// Clipboard back end.
        #[arg(long, value_enum, default_value = "auto")]
        backend: clipboard::Backend,
        /// The logind session served (default $XDG_SESSION_ID, else the one guestlinkd
        /// finds for this process: its own, or as a systemd user unit the user's display
        /// session).
        #[arg(long, env = "XDG_SESSION_ID")]
        session: Option<String>,
    },
    /// Be LightDM's greeter, for single sign-on only: log in the user whose credentials
    /// the host sends (through pam_guestlink.so in the greeter's PAM service), with no
    /// screen of its own.
    Greeter {
        /// The D-Bus address guestlinkd announces hand-offs on (default: the system bus).
        #[arg(long)]
        bus: Option<String>,
        /// The session started for the user (default: LightDM's user-session).
        #[arg(long, default_value = "")]
        session: String,
    },
    /// Read or set this session's clipboard through guestlinkd.
    Clipboard {
        #[command(subcommand)]
        action: ClipAction,
    },
}

/// A selection, as users type it.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Selection {
    Clipboard,
    Primary,
}

impl From<Selection> for ClipboardSelection {
    fn from(s: Selection) -> Self {
        match s {
            Selection::Clipboard => ClipboardSelection::Clipboard,
            Selection::Primary => ClipboardSelection::Primary,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ClipAction {
    /// Print the clipboard.
    Get {
        #[arg(long, value_enum, default_value = "clipboard")]
        selection: Selection,
        /// MIME type wanted (default text).
        #[arg(long = "type", short = 't')]
        mime: Option<String>,
    },
    /// Set the clipboard from TEXT or standard input.
    Set {
        #[arg(long, value_enum, default_value = "clipboard")]
        selection: Selection,
        /// MIME type (default text).
        #[arg(long = "type", short = 't')]
        mime: Option<String>,
        text: Option<String>,
    },
    /// Empty the clipboard.
    Clear {
        #[arg(long, value_enum, default_value = "clipboard")]
        selection: Selection,
    },
}

fn main() -> ExitCode {
    // The manual page and completion scripts, from the same definitions as --help.
    if let Some(code) = guestlink_clidocs::handle(<Cli as clap::CommandFactory>::command, "1") {
        return code;
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GUESTLINK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal, not in the journal of the user unit.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("guestlink-session: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guestlink-session: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Cmd::Run {
        backend: clipboard::Backend::Auto,
        session: std::env::var("XDG_SESSION_ID").ok(),
    });
    match command {
        Cmd::Run { backend, session } => {
            let clipboard = clipboard::start(backend)?;
            // Mutter's DisplayConfig takes the host's layout on GNOME, XRandR wherever
            // else there is an X server.
            let displays = displays::detect(backend != clipboard::Backend::Headless).await;
            if let Some(d) = displays {
                tracing::info!("display layouts through {d:?}");
            }
            agent::serve(&cli.socket, session, clipboard, displays).await
        }
        Cmd::Greeter { bus, session } => greeter::run(greeter::Options { bus, session }).await,
        Cmd::Clipboard { action } => {
            let ep = Endpoint::path(&cli.socket);
            let mut c = Client::connect(&ep, Duration::from_secs(10)).await?;
            match action {
                ClipAction::Get { selection, mime } => {
                    let data = c
                        .call::<GuestlinkClipboardGet>(&ClipboardGetArgs {
                            selection: Some(selection.into()),
                            mime_type: mime.clone(),
                        })
                        .await?;
                    // A host's BMP for a PNG asked for comes as it is: converted here.
                    let (_, data) = clipboard::convert::as_wanted(
                        mime.as_deref(),
                        (data.mime_type, data.data.0),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&data)?;
                    out.flush()?;
                }
                ClipAction::Set {
                    selection,
                    mime,
                    text,
                } => {
                    let data = match text {
                        Some(t) => t.into_bytes(),
                        None => {
                            let mut buf = Vec::new();
                            std::io::stdin().read_to_end(&mut buf)?;
                            buf
                        }
                    };
                    c.call::<GuestlinkClipboardSet>(&ClipboardSetArgs {
                        selection: Some(selection.into()),
                        mime_type: mime.unwrap_or_else(|| clipboard::mime::TEXT.to_string()),
                        data: Base64Data(data),
                    })
                    .await?;
                }
                ClipAction::Clear { selection } => {
                    c.call::<GuestlinkClipboardClear>(&ClipboardSelectionArgs {
                        selection: Some(selection.into()),
                        mime_type: None,
                    })
                    .await?;
                }
            }
            Ok(())
        }
    }
}
