//! The live channel from the command line: `guestlink exec` as a stream (output as it
//! is written, stdin forwarded, signals passed on), `guestlink shell` and
//! `guestlink forward`. Each needs an agent that offers live streams; `exec` falls back
//! to guest-exec polling against one that does not (a stock qemu-ga).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use guestlink_client::{Client, Live, LiveStream, StreamEvent, StreamWriter};
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{ForwardAddress, ShellArgs, StreamExecArgs, TerminalArgs};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

/// Options of a streamed `exec`.
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    /// Environment entries (NAME=VALUE).
    pub env: Vec<String>,
    /// Pass our standard input.
    pub stdin: bool,
    /// Seconds before the program is terminated.
    pub timeout: Option<u64>,
    /// User to run as.
    pub user: Option<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Say what happens.
    pub verbose: bool,
    /// Print one JSON object at the end instead of the output as it comes.
    pub json: bool,
}

fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(status.clamp(0, 255) as u8)
}

/// `guestlink exec`: streamed when the agent offers it, polled otherwise.
pub async fn exec(mut c: Client, argv: &[String], o: &ExecOptions) -> anyhow::Result<ExitCode> {
    if !c.offers_streams().await? {
        if o.verbose {
            eprintln!("guestlink: the agent has no live streams (a stock qemu-ga?): running with guest-exec and polling; output comes when the program ends");
        }
        if o.user.is_some() || o.cwd.is_some() || o.timeout.is_some() {
            bail!("--user, --cwd and --timeout need an agent with live streams (guestlinkd)");
        }
        return crate::exec::run(&mut c, argv, &o.env, o.stdin, o.json).await;
    }
    if o.verbose {
        eprintln!("guestlink: streaming with __org.guestlink_stream-exec");
    }
    let live = c.into_live().await?;
    let args = StreamExecArgs {
        path: argv[0].clone(),
        arg: Some(argv[1..].to_vec()),
        env: (!o.env.is_empty()).then(|| o.env.clone()),
        cwd: o.cwd.clone(),
        user: o.user.clone(),
        timeout: o.timeout.map(|t| t as i64),
        terminal: None,
    };
    let (s, _) = live.open::<cmd::GuestlinkStreamExec>(&args).await?;
    if o.json {
        return collect_json(s, o.stdin).await;
    }
    run_stream(s, o.stdin, false).await
}

/// `exec --json` on a stream: the output gathered, one object printed at the end.
async fn collect_json(mut s: LiveStream, pass_stdin: bool) -> anyhow::Result<ExitCode> {
    forward_input(s.writer(), pass_stdin);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(e) = s.recv().await {
        match e {
            StreamEvent::Data(d) => out.extend_from_slice(&d),
            StreamEvent::Stderr(d) => err.extend_from_slice(&d),
            StreamEvent::Eof => {}
            StreamEvent::Exit(st) => {
                let (code, sig) = match st {
                    guestlink_client::ExitStatus::Code(c) => (Some(c), None),
                    guestlink_client::ExitStatus::Signal(s) => (None, Some(s)),
                };
                println!("{}", crate::exec::json_result(code, sig, &out, &err));
                return Ok(exit_code(st.shell_status()));
            }
            StreamEvent::Reset(why) => bail!("the stream ended: {why}"),
        }
    }
    bail!("the connection to the agent ended")
}

/// Moves our standard input to the stream (then its end), and our signals.
fn forward_input(w: StreamWriter, pass_stdin: bool) {
    let input = w.clone();
    tokio::spawn(async move {
        if pass_stdin {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if !input.write(&buf[..n]).await {
                            return;
                        }
                    }
                }
            }
        }
        input.eof().await;
    });
    for (kind, num) in [
        (SignalKind::interrupt(), libc::SIGINT),
        (SignalKind::terminate(), libc::SIGTERM),
        (SignalKind::hangup(), libc::SIGHUP),
    ] {
        let w = w.clone();
        if let Ok(mut sig) = signal(kind) {
            tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    w.signal(num as u32).await;
                }
            });
        }
    }
}

/// Prints what the stream sends until the program's end; its status is ours.
async fn run_stream(mut s: LiveStream, pass_stdin: bool, raw: bool) -> anyhow::Result<ExitCode> {
    let w = s.writer();
    if raw {
        // Keys go as bytes: the guest's terminal turns ^C into SIGINT for its job.
        forward_keys(w.clone());
    } else {
        forward_input(w.clone(), pass_stdin);
    }
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    while let Some(e) = s.recv().await {
        match e {
            StreamEvent::Data(d) => {
                stdout.write_all(&d).await?;
                stdout.flush().await?;
            }
            StreamEvent::Stderr(d) => {
                stderr.write_all(&d).await?;
                stderr.flush().await?;
            }
            StreamEvent::Eof => {}
            StreamEvent::Exit(st) => return Ok(exit_code(st.shell_status())),
            StreamEvent::Reset(why) => bail!("the stream ended: {why}"),
        }
    }
    bail!("the connection to the agent ended")
}

/// Our terminal's size.
fn window_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer, which outlives the call.
    let r = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Our terminal in raw mode, restored when dropped (on every way out).
struct RawMode(nix::sys::termios::Termios);

impl RawMode {
    fn enter() -> anyhow::Result<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).context("cannot read the terminal's mode")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSADRAIN, &raw).context("cannot set the terminal's mode")?;
        Ok(RawMode(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSADRAIN,
            &self.0,
        );
    }
}

/// Keys and window sizes to a terminal stream.
fn forward_keys(w: StreamWriter) {
    let keys = w.clone();
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 4096];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !keys.write(&buf[..n]).await {
                        return;
                    }
                }
            }
        }
        keys.eof().await;
    });
    if let Ok(mut winch) = signal(SignalKind::window_change()) {
        tokio::spawn(async move {
            while winch.recv().await.is_some() {
                if let Some((rows, cols)) = window_size() {
                    w.resize(rows, cols).await;
                }
            }
        });
    }
}

/// `guestlink shell`.
pub async fn shell(
    c: Client,
    user: Option<String>,
    command: &[String],
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let mut c = c;
    crate::connect::require_guestlinkd(&mut c, "guestlink shell", "__org.guestlink_stream-enable")
        .await?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let terminal = tty.then(|| {
        let (rows, cols) = window_size().unwrap_or((24, 80));
        TerminalArgs {
            rows: Some(i64::from(rows)),
            cols: Some(i64::from(cols)),
            term: std::env::var("TERM").ok(),
        }
    });
    let live: Live = c.into_live().await?;
    let args = ShellArgs {
        user,
        command: (!command.is_empty()).then(|| command.join(" ")),
        env: None,
        terminal,
    };
    let (s, ret) = live.open::<cmd::GuestlinkShell>(&args).await?;
    if verbose {
        eprintln!("guestlink: shell pid {} in the guest", ret.pid);
    }
    let _raw = if tty { Some(RawMode::enter()?) } else { None };
    run_stream(s, true, tty).await
}

/// One side of a forward: a TCP address or a unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// Host (or bind address) and port.
    Tcp(String, u16),
    /// A unix socket.
    Path(String),
}

impl Addr {
    fn wire(&self) -> ForwardAddress {
        match self {
            Addr::Tcp(h, p) => ForwardAddress {
                host: Some(h.clone()),
                port: Some(i64::from(*p)),
                path: None,
            },
            Addr::Path(p) => ForwardAddress {
                host: None,
                port: None,
                path: Some(p.clone()),
            },
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(h, p) => write!(f, "{h}:{p}"),
            Addr::Path(p) => f.write_str(p),
        }
    }
}

/// Parses ssh's `[BIND:]PORT:HOST:HOSTPORT`, with socket paths in place of
/// `[BIND:]PORT` or `HOST:HOSTPORT`: the listening side and the connecting side.
pub fn parse_spec(spec: &str) -> anyhow::Result<(Addr, Addr)> {
    let parts: Vec<&str> = spec.split(':').collect();
    let port = |s: &str| -> anyhow::Result<u16> {
        s.parse()
            .map_err(|_| anyhow!("'{s}' in '{spec}' is not a port"))
    };
    let is_path = |s: &str| s.starts_with('/');
    let (listen, rest): (Addr, &[&str]) = match parts.as_slice() {
        [p, rest @ ..] if is_path(p) => (Addr::Path(p.to_string()), rest),
        [b, p, rest @ ..]
            if !rest.is_empty()
                && (rest.len() == 2 || is_path(rest[0]))
                && p.parse::<u16>().is_ok()
                && b.parse::<u16>().is_err() =>
        {
            (Addr::Tcp(b.to_string(), port(p)?), rest)
        }
        [p, rest @ ..] => (Addr::Tcp("localhost".into(), port(p)?), rest),
        [] => bail!("empty forward"),
    };
    let to = match rest {
        [p] if is_path(p) => Addr::Path(p.to_string()),
        [h, p] => Addr::Tcp(h.to_string(), port(p)?),
        _ => bail!(
            "'{spec}' is not [BIND:]PORT:HOST:HOSTPORT (socket paths may replace either side)"
        ),
    };
    Ok((listen, to))
}

async fn splice<S: AsyncRead + AsyncWrite>(mut s: LiveStream, sock: S) -> anyhow::Result<()> {
    let (mut r, mut w) = tokio::io::split(sock);
    let writer = s.writer();
    let up = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !writer.write(&buf[..n]).await {
                        return;
                    }
                }
            }
        }
        writer.eof().await;
    };
    let down = async {
        while let Some(e) = s.recv().await {
            match e {
                StreamEvent::Data(d) => w.write_all(&d).await?,
                StreamEvent::Eof => {
                    w.shutdown().await?;
                    return Ok(true);
                }
                StreamEvent::Reset(why) => bail!("{why}"),
                StreamEvent::Stderr(_) | StreamEvent::Exit(_) => {}
            }
        }
        bail!("the connection to the agent ended")
    };
    tokio::pin!(up);
    tokio::select! {
        r = down => { if r? { up.await; } }
        () = &mut up => {
            // We sent our end; the guest side's data may still come.
        }
    }
    Ok(())
}

async fn connect_local(to: &Addr) -> std::io::Result<guestlink_client::BoxStream> {
    Ok(match to {
        Addr::Tcp(h, p) => {
            let s = tokio::net::TcpStream::connect((h.as_str(), *p)).await?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        Addr::Path(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
    })
}

/// How long a connection waits for the agent to free a stream place.
const PLACE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens a forward's stream. The agent frees a stream's place a moment after both
/// ends closed, so a new connection may find the places full for that moment: it
/// waits for one rather than fail.
async fn open_forward(
    live: &Live,
    to: &Addr,
) -> Result<(LiveStream, guestlink_vocabulary::types::ForwardStream), guestlink_client::ClientError>
{
    let deadline = tokio::time::Instant::now() + PLACE_WAIT;
    loop {
        match live.open::<cmd::GuestlinkForwardConnect>(&to.wire()).await {
            Err(e)
                if e.to_string().contains("too many streams")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// `guestlink forward`: runs until interrupted.
pub async fn forward(
    mut c: Client,
    spec: &str,
    reverse: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (listen, to) = parse_spec(spec)?;
    // What happens, for a person (standard error) or a script (JSON lines on standard
    // output).
    let say = move |v: serde_json::Value, text: String| {
        if json {
            println!("{v}");
        } else {
            eprintln!("guestlink: {text}");
        }
    };
    crate::connect::require_guestlinkd(
        &mut c,
        "guestlink forward",
        "__org.guestlink_stream-enable",
    )
    .await?;
    let live = std::sync::Arc::new(c.into_live().await?);
    let work = async {
        if reverse {
            let ret = live
                .call::<cmd::GuestlinkForwardListen>(&listen.wire())
                .await?;
            let shown = match (&listen, ret.port) {
                (Addr::Tcp(h, _), Some(p)) => format!("{h}:{p}"),
                _ => listen.to_string(),
            };
            say(
                serde_json::json!({"listening": shown, "in": "guest", "to": to.to_string()}),
                format!("listening in the guest on {shown}, forwarding to {to} here"),
            );
            let mut accepts = live.accepts(ret.stream);
            while let Some((s, peer)) = accepts.recv().await {
                let to = to.clone();
                tokio::spawn(async move {
                    match connect_local(&to).await {
                        Ok(sock) => {
                            if let Err(e) = splice(s, sock).await {
                                say(
                                    serde_json::json!({"error": {"peer": peer, "desc": e.to_string()}}),
                                    format!("connection from {peer}: {e}"),
                                );
                            }
                        }
                        Err(e) => {
                            s.writer().reset(&format!("cannot connect to {to}: {e}"));
                            say(
                                serde_json::json!({"error": {"peer": peer, "desc": format!("cannot connect to {to}: {e}")}}),
                                format!("connection from {peer} (in the guest): cannot connect to {to}: {e}"),
                            );
                        }
                    }
                });
            }
            bail!("the connection to the agent ended")
        } else {
            enum L {
                Tcp(tokio::net::TcpListener),
                Unix(tokio::net::UnixListener),
            }
            let l = match &listen {
                Addr::Tcp(h, p) => L::Tcp(
                    tokio::net::TcpListener::bind((h.as_str(), *p))
                        .await
                        .with_context(|| format!("cannot listen on {listen}"))?,
                ),
                Addr::Path(p) => L::Unix(
                    tokio::net::UnixListener::bind(p)
                        .with_context(|| format!("cannot listen on {listen}"))?,
                ),
            };
            say(
                serde_json::json!({"listening": listen.to_string(), "in": "host", "to": to.to_string()}),
                format!("listening on {listen}, forwarding to {to} in the guest"),
            );
            // Connections beyond the agent's streams per connection wait for a place.
            let places = std::sync::Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(live.info().max_streams).unwrap_or(1).max(1),
            ));
            loop {
                let sock: guestlink_client::BoxStream = match &l {
                    L::Tcp(l) => {
                        let (s, _) = l.accept().await?;
                        let _ = s.set_nodelay(true);
                        Box::new(s)
                    }
                    L::Unix(l) => Box::new(l.accept().await?.0),
                };
                let live = live.clone();
                let to = to.clone();
                let place = places.clone().acquire_owned().await?;
                tokio::spawn(async move {
                    let _place = place;
                    let failed = match open_forward(&live, &to).await {
                        Ok((s, _)) => splice(s, sock).await.err(),
                        Err(e) => Some(anyhow::Error::from(e)),
                    };
                    if let Some(e) = failed {
                        say(
                            serde_json::json!({"error": {"to": to.to_string(), "desc": e.to_string()}}),
                            format!("forward to {to}: {e}"),
                        );
                    }
                });
            }
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Ok(ExitCode::SUCCESS),
    };
    if let (false, Addr::Path(p)) = (reverse, &listen) {
        let _ = std::fs::remove_file(p);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_specs_follow_ssh() {
        let t = |h: &str, p| Addr::Tcp(h.into(), p);
        assert_eq!(
            parse_spec("8080:localhost:80").unwrap(),
            (t("localhost", 8080), t("localhost", 80))
        );
        assert_eq!(
            parse_spec("0.0.0.0:8080:10.0.0.5:80").unwrap(),
            (t("0.0.0.0", 8080), t("10.0.0.5", 80))
        );
        assert_eq!(
            parse_spec("/tmp/a.sock:/run/b.sock").unwrap(),
            (
                Addr::Path("/tmp/a.sock".into()),
                Addr::Path("/run/b.sock".into())
            )
        );
        assert_eq!(
            parse_spec("5432:/run/postgresql/.s.PGSQL.5432").unwrap(),
            (
                t("localhost", 5432),
                Addr::Path("/run/postgresql/.s.PGSQL.5432".into())
            )
        );
        assert_eq!(
            parse_spec("/tmp/h.sock:db:5432").unwrap(),
            (Addr::Path("/tmp/h.sock".into()), t("db", 5432))
        );
        assert_eq!(
            parse_spec("127.0.0.1:9000:/run/x.sock").unwrap(),
            (t("127.0.0.1", 9000), Addr::Path("/run/x.sock".into()))
        );
        assert!(parse_spec("80").is_err());
        assert!(parse_spec("x:localhost:80").is_err());
        assert!(parse_spec("8080:localhost:http").is_err());
    }
}
