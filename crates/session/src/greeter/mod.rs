//! `guestlink-session greeter`: a LightDM greeter that logs in the user the host sent
//! (single sign-on), with no screen of its own.
//!
//! LightDM starts it on the login screen as its greeter (`greeter-session`). It waits
//! on the system bus for guestlinkd's `org.ovirt.vdsm.Credentials.UserAuthenticated`
//! signal, whose argument is a one-use token, then asks LightDM to authenticate with no
//! user named: LightDM runs its greeter PAM service, in which `pam_guestlink.so` asks
//! "Token?", collects the user and password from guestlinkd with the token and sets
//! them for the next module (`pam_unix.so use_first_pass`). When PAM says yes, the
//! greeter starts the user's default session and LightDM stops it. Any other prompt
//! (a password asked for because the stack has no `pam_guestlink.so`, or the token was
//! refused) cancels the attempt and the greeter waits for the next hand-off: it never
//! asks a person for anything. For VMs whose users log in only from the host (VDI);
//! where people also type passwords, keep a greeter with a screen. The frames on
//! LightDM's pipes are `guestlink-proto-lightdm`'s. Only root's announcements count:
//! any client of the system bus may send the signal.

use std::fs::File;
use std::os::fd::{FromRawFd as _, OwnedFd, RawFd};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::unix::pipe;

use guestlink_proto_lightdm::{Decoder, FromServer, ToServer};

/// The prompt of `pam_guestlink.so` (and oVirt's `pam_ovirt_cred`).
pub const TOKEN_PROMPT: &str = "Token?";

/// Zeroes a buffer that held a secret.
pub fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

/// The greeter's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The D-Bus address guestlinkd signals on (default: the system bus).
    pub bus: Option<String>,
    /// The session started for the user (empty: LightDM's default, `user-session`).
    pub session: String,
}

/// A descriptor LightDM left open for this process and named in `var`.
#[allow(unsafe_code)]
fn inherited(var: &str) -> anyhow::Result<OwnedFd> {
    let v = std::env::var(var).with_context(|| format!("{var} is not set: run by LightDM"))?;
    let fd: RawFd = v
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
        .with_context(|| format!("{var}={v} is not a pipe's file descriptor"))?;
    // Not reopened through /proc/self/fd: LightDM's session child changed user before
    // starting the greeter, which makes the process's /proc entries root's.
    // SAFETY: LightDM opened `fd` for this process and named it in `var`; nothing else
    // in the process owns or closes it, and it is taken once, here, at start-up.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The pipes LightDM gave this process, made non-blocking for the runtime.
fn daemon_pipes() -> anyhow::Result<(pipe::Sender, pipe::Receiver)> {
    let to = File::from(inherited("LIGHTDM_TO_SERVER_FD")?);
    let from = File::from(inherited("LIGHTDM_FROM_SERVER_FD")?);
    Ok((
        pipe::Sender::from_file(to).context("the pipe to LightDM")?,
        pipe::Receiver::from_file(from).context("the pipe from LightDM")?,
    ))
}

/// The conversation with LightDM.
struct Daemon {
    to: pipe::Sender,
    from: pipe::Receiver,
    decoder: Decoder,
}

impl Daemon {
    async fn send(&mut self, m: ToServer<'_>) -> anyhow::Result<()> {
        let mut frame = m.encode();
        let r = self.to.write_all(&frame).await;
        wipe(&mut frame);
        r.context("writing to LightDM")
    }

    async fn receive(&mut self) -> anyhow::Result<FromServer> {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(m);
            }
            let n = self.from.read(&mut buf).await.context("reading LightDM")?;
            anyhow::ensure!(n > 0, "LightDM closed the greeter's pipe");
            self.decoder.push(&buf[..n]);
        }
    }
}

/// Runs the greeter until LightDM stops it.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let (to, from) = daemon_pipes()?;
    let mut daemon = Daemon {
        to,
        from,
        decoder: Decoder::default(),
    };
    let bus = match &opts.bus {
        Some(a) => zbus::connection::Builder::address(a.as_str()).build().await,
        None => zbus::Connection::system().await,
    }
    .context("connecting to the system bus")?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.ovirt.vdsm.Credentials")
        .member("UserAuthenticated")
        .build()?;
    let mut tokens = zbus::MessageStream::for_match_rule(rule, &bus, None).await?;
    let dbus = zbus::fdo::DBusProxy::new(&bus).await?;

    daemon
        .send(ToServer::Connect {
            version: env!("CARGO_PKG_VERSION"),
            resettable: false,
        })
        .await?;
    let mut sso = Sso::default();
    loop {
        let replies = tokio::select! {
            signal = tokens.next() => {
                let Some(signal) = signal else { anyhow::bail!("the system bus went away") };
                let signal = signal?;
                // Any client of the system bus may send this signal: only root's (the
                // agent's) start a conversation, or a user could cut a hand-off short.
                if !from_root(&dbus, &signal).await {
                    continue;
                }
                match signal.body().deserialize::<String>() {
                    Ok(token) => vec![sso.token(token)],
                    Err(_) => continue,
                }
            }
            m = daemon.receive() => sso.on_message(m?, &opts.session),
        };
        for mut reply in replies {
            let sent = daemon.send(reply.as_message()).await;
            reply.wipe();
            sent?;
        }
    }
}

/// Whether `signal` comes from a connection of root's.
async fn from_root(dbus: &zbus::fdo::DBusProxy<'_>, signal: &zbus::Message) -> bool {
    let header = signal.header();
    let Some(sender) = header.sender() else {
        return false;
    };
    match dbus
        .get_connection_unix_user(zbus::names::BusName::Unique(sender.clone()))
        .await
    {
        Ok(0) => true,
        Ok(uid) => {
            tracing::warn!("ignored credentials announced by uid {uid}, not root");
            false
        }
        Err(e) => {
            tracing::warn!("ignored credentials announced by {sender}: {e}");
            false
        }
    }
}

/// What the greeter sends, owning its strings.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Authenticate(u32),
    Answer(String),
    Cancel,
    Start(String),
}

impl Reply {
    fn as_message(&self) -> ToServer<'_> {
        match self {
            Reply::Authenticate(sequence) => ToServer::Authenticate {
                sequence: *sequence,
                user: "",
            },
            Reply::Answer(token) => ToServer::ContinueAuthentication {
                answers: vec![token.as_str()],
            },
            Reply::Cancel => ToServer::CancelAuthentication,
            Reply::Start(session) => ToServer::StartSession { session },
        }
    }

    fn wipe(&mut self) {
        if let Reply::Answer(token) = self {
            wipe_string(token);
        }
    }
}

fn wipe_string(s: &mut String) {
    let mut bytes = std::mem::take(s).into_bytes();
    wipe(&mut bytes);
}

/// The single sign-on conversation, without I/O: tokens from the bus and LightDM's
/// messages in, the greeter's messages out.
#[derive(Debug, Default)]
struct Sso {
    /// The conversation under way (LightDM echoes it).
    sequence: u32,
    /// The token of that conversation, until PAM asks for it.
    token: Option<String>,
}

impl Sso {
    /// guestlinkd announced a hand-off: start a conversation for it (LightDM drops one
    /// still under way).
    fn token(&mut self, token: String) -> Reply {
        self.forget_token();
        self.sequence = self.sequence.wrapping_add(1);
        self.token = Some(token);
        tracing::info!("credentials announced: authenticating");
        Reply::Authenticate(self.sequence)
    }

    fn forget_token(&mut self) {
        if let Some(mut t) = self.token.take() {
            wipe_string(&mut t);
        }
    }

    fn on_message(&mut self, m: FromServer, session: &str) -> Vec<Reply> {
        match m {
            FromServer::Connected { version } => {
                tracing::info!("connected to LightDM {version}; waiting for credentials");
                vec![]
            }
            FromServer::Prompt {
                sequence, messages, ..
            } if sequence == self.sequence => {
                let prompts: Vec<_> = messages.iter().filter(|m| m.is_prompt()).collect();
                for m in messages.iter().filter(|m| !m.is_prompt()) {
                    tracing::info!("PAM: {}", m.text);
                }
                match (&prompts[..], self.token.take()) {
                    ([], token) => {
                        self.token = token;
                        vec![]
                    }
                    ([p], Some(token)) if p.text == TOKEN_PROMPT => vec![Reply::Answer(token)],
                    (asked, mut token) => {
                        if let Some(t) = token.as_mut() {
                            wipe_string(t);
                        }
                        let asked: Vec<_> = asked.iter().map(|p| p.text.as_str()).collect();
                        tracing::warn!(
                            "PAM asks {asked:?}, which a single sign-on greeter cannot answer \
                             (is pam_guestlink.so first in LightDM's greeter PAM service?)"
                        );
                        vec![Reply::Cancel]
                    }
                }
            }
            FromServer::EndAuthentication {
                sequence,
                user,
                result,
            } if sequence == self.sequence => {
                self.forget_token();
                if result == 0 {
                    tracing::info!("signed on as {user}: starting the session");
                    vec![Reply::Start(session.to_string())]
                } else {
                    tracing::warn!("single sign-on failed for {user:?} (PAM error {result})");
                    vec![]
                }
            }
            FromServer::SessionResult { code: 0 } => {
                tracing::info!("the session started");
                vec![]
            }
            FromServer::SessionResult { code } => {
                tracing::warn!("LightDM could not start the session ({code})");
                vec![]
            }
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlink_proto_lightdm::PamMessage;

    fn prompt(sequence: u32, texts: &[(u32, &str)]) -> FromServer {
        FromServer::Prompt {
            sequence,
            user: String::new(),
            messages: texts
                .iter()
                .map(|(style, text)| PamMessage {
                    style: *style,
                    text: text.to_string(),
                })
                .collect(),
        }
    }

    fn end(sequence: u32, result: u32) -> FromServer {
        FromServer::EndAuthentication {
            sequence,
            user: "alice".into(),
            result,
        }
    }

    #[test]
    fn a_token_answers_the_modules_prompt_and_success_starts_the_session() {
        let mut s = Sso::default();
        assert_eq!(s.token("t1".into()), Reply::Authenticate(1));
        // Information alone is not answered (LightDM goes on by itself).
        assert_eq!(s.on_message(prompt(1, &[(4, "hello")]), ""), vec![]);
        assert_eq!(
            s.on_message(prompt(1, &[(1, TOKEN_PROMPT)]), ""),
            vec![Reply::Answer("t1".into())]
        );
        assert_eq!(
            s.on_message(end(1, 0), "xfce"),
            vec![Reply::Start("xfce".into())]
        );
    }

    #[test]
    fn a_prompt_it_cannot_answer_cancels_and_the_token_is_used_once() {
        let mut s = Sso::default();
        s.token("t1".into());
        assert_eq!(
            s.on_message(prompt(1, &[(1, "Password: ")]), ""),
            vec![Reply::Cancel]
        );
        // The token is gone: a second "Token?" is not answered with it.
        assert_eq!(
            s.on_message(prompt(1, &[(1, TOKEN_PROMPT)]), ""),
            vec![Reply::Cancel]
        );
        // Failure starts nothing; a new hand-off starts a new conversation, and the old
        // conversation's messages are ignored.
        assert_eq!(s.on_message(end(1, 7), ""), vec![]);
        assert_eq!(s.token("t2".into()), Reply::Authenticate(2));
        assert_eq!(s.on_message(prompt(1, &[(1, TOKEN_PROMPT)]), ""), vec![]);
        assert_eq!(s.on_message(end(1, 0), ""), vec![]);
        assert_eq!(
            s.on_message(prompt(2, &[(1, TOKEN_PROMPT)]), ""),
            vec![Reply::Answer("t2".into())]
        );
    }

    #[test]
    fn an_answer_is_wiped_after_sending() {
        let mut r = Reply::Answer("secret".into());
        r.wipe();
        assert_eq!(r, Reply::Answer(String::new()));
    }
}
