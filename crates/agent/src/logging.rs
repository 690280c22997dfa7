//! Logs in qemu-ga's line format: `<seconds>.<microseconds>: <level>: <message>`, to
//! standard error or appended to the `-l` file. Warnings and errors by default, and
//! always the audit records (target `audit`: each shell opened and closed, with its
//! user, channel and duration); `-v` logs everything, including each chunk read.
//! `GUESTLINK_LOG` (`LEVEL` and `TARGET=LEVEL`, comma-separated) overrides the level.
//!
//! As in qemu-ga, nothing is written to the log file while filesystems are frozen: a
//! write to a frozen filesystem would block the agent, and with it the thaw.

use std::fmt::{self, Write as _};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Which events are logged: `LEVEL` and `TARGET=LEVEL` directives, comma-separated
/// (the subset of tracing's filter syntax that a daemon needs). The directive with the
/// longest target that prefixes an event's target decides; `off` logs nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    default: Option<Level>,
    targets: Vec<(String, Option<Level>)>,
}

impl Filter {
    /// Parses `warn,audit=info`; an unknown level is an error.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let level = |s: &str| -> Result<Option<Level>, String> {
            match s.trim().to_ascii_lowercase().as_str() {
                "off" => Ok(None),
                other => other
                    .parse::<Level>()
                    .map(Some)
                    .map_err(|_| format!("unknown log level '{s}'")),
            }
        };
        let mut f = Filter {
            default: Some(Level::ERROR),
            targets: Vec::new(),
        };
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match d.split_once('=') {
                Some((target, l)) => f.targets.push((target.trim().to_string(), level(l)?)),
                None => f.default = level(d)?,
            }
        }
        // Longest target first: the most specific directive decides.
        f.targets.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        Ok(f)
    }

    fn max_for(&self, target: &str) -> Option<Level> {
        self.targets
            .iter()
            .find(|(t, _)| {
                target.starts_with(t.as_str())
                    && (target.len() == t.len() || target[t.len()..].starts_with("::"))
            })
            .map_or(self.default, |t| t.1)
    }

    /// Whether an event at `level` for `target` is logged.
    pub fn enabled(&self, target: &str, level: &Level) -> bool {
        self.max_for(target).is_some_and(|max| *level <= max)
    }

    fn most_verbose(&self) -> Option<Level> {
        self.targets
            .iter()
            .map(|t| t.1)
            .chain([self.default])
            .flatten()
            .max()
    }
}

/// One log line's text: the message, then the other fields as ` name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// Where finished lines go.
pub type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

/// The subscriber: events in qemu-ga's line format; spans are not recorded.
struct QgaLog {
    filter: Filter,
    out: Sink,
}

impl Subscriber for QgaLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata.target(), metadata.level())
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.filter.most_verbose().map_or(
            tracing::level_filters::LevelFilter::OFF,
            tracing::level_filters::LevelFilter::from_level,
        ))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG | Level::TRACE => "debug",
        };
        let mut line = Line::default();
        event.record(&mut line);
        let text = format!(
            "{}.{:06}: {level}: {}{}\n",
            now.as_secs(),
            now.subsec_micros(),
            line.message,
            line.fields
        );
        (self.out)(text.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
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

/// Installs the global logger: to `logfile`, else standard error.
pub fn init(logfile: Option<&Path>, verbose: bool) -> std::io::Result<()> {
    init_to(logfile, verbose, None)
}

/// Installs the global logger: to `logfile`, else to `fallback` (the Event Log of a
/// Windows service), else standard error.
pub fn init_to(
    logfile: Option<&Path>,
    verbose: bool,
    fallback: Option<Sink>,
) -> std::io::Result<()> {
    let default = if verbose { "trace" } else { "warn,audit=info" };
    let filter = std::env::var("GUESTLINK_LOG")
        .ok()
        .and_then(|spec| match Filter::parse(&spec) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("guestlinkd: GUESTLINK_LOG: {e}; using {default}");
                None
            }
        })
        .unwrap_or_else(|| {
            Filter::parse(default).unwrap_or(Filter {
                default: Some(Level::WARN),
                targets: Vec::new(),
            })
        });
    let out: Sink = match logfile {
        Some(path) => {
            let file = Mutex::new(OpenOptions::new().create(true).append(true).open(path)?);
            Box::new(move |line| {
                // Nothing goes to the file while filesystems are frozen.
                if !paused() {
                    let _ = file
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .write_all(line);
                }
            })
        }
        None => fallback.unwrap_or_else(|| {
            Box::new(|line| {
                let _ = io::stderr().lock().write_all(line);
            })
        }),
    };
    let _ = tracing::subscriber::set_global_default(QgaLog { filter, out });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_directive_decides() {
        let f = Filter::parse("warn,audit=info").unwrap();
        assert!(f.enabled("guestlinkd::serve", &Level::WARN));
        assert!(!f.enabled("guestlinkd::serve", &Level::INFO));
        assert!(f.enabled("audit", &Level::INFO));
        assert!(!f.enabled("audit", &Level::DEBUG));
        // A prefix counts only at a module boundary.
        assert!(!f.enabled("auditor", &Level::INFO));
        let f = Filter::parse("debug,guestlink_fdio=off, guestlink_core::policy=trace").unwrap();
        assert!(!f.enabled("guestlink_fdio::stream", &Level::ERROR));
        assert!(f.enabled("guestlink_core::policy", &Level::TRACE));
        assert!(!f.enabled("guestlink_core::dispatch", &Level::TRACE));
        assert_eq!(f.most_verbose(), Some(Level::TRACE));
        assert_eq!(Filter::parse("off").unwrap().most_verbose(), None);
        assert!(Filter::parse("loud").is_err());
        assert!(Filter::parse("x=loud").is_err());
    }

    #[test]
    fn fields_follow_the_message() {
        let text = std::sync::Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let log = QgaLog {
            filter: Filter::parse("info").unwrap(),
            out: Box::new(move |l| sink.lock().unwrap().push_str(&String::from_utf8_lossy(l))),
        };
        tracing::subscriber::with_default(log, || {
            tracing::info!(rule = "10-x.toml:3", "command refused by the policy");
            tracing::debug!("not logged");
        });
        let text = text.lock().unwrap().clone();
        assert!(
            text.ends_with(": info: command refused by the policy rule=\"10-x.toml:3\"\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
    }
}
