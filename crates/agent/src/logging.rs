//! Logs in qemu-ga's line format: `<seconds>.<microseconds>: <level>: <message>`, to
//! standard error or appended to the `-l` file. Warnings and errors by default; `-v`
//! logs everything, including each chunk read. `GUESTLINK_LOG` (tracing's filter syntax)
//! overrides the level.

use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;
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

/// Installs the global logger.
pub fn init(logfile: Option<&Path>, verbose: bool) -> std::io::Result<()> {
    let default = if verbose { "trace" } else { "warn" };
    let filter =
        EnvFilter::try_from_env("GUESTLINK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .event_format(QgaFormat)
        .with_env_filter(filter);
    match logfile {
        Some(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            builder.with_writer(Mutex::new(file)).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
