//! Logs in qemu-ga's line format: `<seconds>.<microseconds>: <level>: <message>`, to
//! standard error or appended to the `-l` file. Warnings and errors by default, and
//! always the audit records (target `audit`: each shell opened and closed, with its
//! user, channel and duration); `-v` logs everything, including each chunk read. `GUESTLINK_LOG` (tracing's filter syntax)
//! overrides the level.
//!
//! As in qemu-ga, nothing is written to the log file while filesystems are frozen: a
//! write to a frozen filesystem would block the agent, and with it the thaw.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

struct QgaFormat;

impl<S, N> FormatEvent<S, N> for QgaFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG | Level::TRACE => "debug",
        };
        write!(w, "{}.{:06}: {level}: ", now.as_secs(), now.subsec_micros())?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

type Probe = Box<dyn Fn() -> bool + Send + Sync>;

/// Says whether file logging is paused (filesystems frozen).
static PAUSED: OnceLock<Probe> = OnceLock::new();

/// Pauses writing to the log file whenever `probe` returns true.
pub fn pause_while(probe: impl Fn() -> bool + Send + Sync + 'static) {
    let _ = PAUSED.set(Box::new(probe));
}

fn paused() -> bool {
    PAUSED.get().is_some_and(|p| p())
}

/// The log file, skipped while paused.
struct LogFile(Mutex<std::fs::File>);

impl Write for &LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if paused() {
            return Ok(buf.len());
        }
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs the global logger.
pub fn init(logfile: Option<&Path>, verbose: bool) -> std::io::Result<()> {
    let default = if verbose { "trace" } else { "warn,audit=info" };
    let filter =
        EnvFilter::try_from_env("GUESTLINK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: not in the log file, nor in the journal (systemd
    // takes standard error).
    let ansi = logfile.is_none() && io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .event_format(QgaFormat)
        .with_env_filter(filter);
    match logfile {
        Some(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let file: &'static LogFile = Box::leak(Box::new(LogFile(Mutex::new(file))));
            builder.with_writer(move || file).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
