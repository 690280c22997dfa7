//! `__org.guestlink_path-watch` and `-unwatch`: a path watched with inotify, each
//! change published as `PATH_CHANGED` to the hosts subscribed to it. A host must
//! subscribe first; the watch ends when it is unwatched, when its path goes away
//! (a last change `ended`), or when no host listens any more.

use guestlink_vocabulary::commands::{GuestlinkPathUnwatch, GuestlinkPathWatch};
use guestlink_vocabulary::events::{Event, PathChangedEvent};
use guestlink_vocabulary::types::{Empty, GuestlinkPathWatchArgs, GuestlinkWatchId};

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::events::Listener;

impl Handler for GuestlinkPathWatch {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathWatchArgs,
    ) -> Result<GuestlinkWatchId, CommandError> {
        let bus = ctx.agent.events().clone();
        if !bus.has_listener(Listener::Host, PathChangedEvent::NAME) {
            return Err(CommandError::new(
                "subscribe to PATH_CHANGED (__org.guestlink_events-subscribe) before watching",
            ));
        }
        start(ctx, args, bus).await
    }
}

#[cfg(target_os = "linux")]
async fn start(
    ctx: Context<'_>,
    args: GuestlinkPathWatchArgs,
    bus: crate::events::EventBus,
) -> Result<GuestlinkWatchId, CommandError> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use crate::events::{Audience, EventRecord};
    use crate::limits::{PATH_WATCHES, PATH_WATCH_DIRS};
    use crate::os::watch::Watcher;
    use crate::policy::paths::Access;
    use guestlink_vocabulary::types::GuestlinkPathChanged;

    let path = std::path::PathBuf::from(&args.path);
    if !path.is_absolute() {
        return Err(CommandError::new(format!(
            "path '{}' is not absolute",
            args.path
        )));
    }
    if let Some(scope) = ctx.agent.file_scope() {
        let read = Access {
            read: true,
            write: false,
        };
        scope
            .check(&path, read)
            .map_err(|why| CommandError::new(format!("access to '{}' denied: {why}", args.path)))?;
    }
    let watches = ctx.agent.state().watches.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let watch = watches.insert(stop.clone(), PATH_WATCHES).ok_or_else(|| {
        CommandError::new(format!(
            "too many watches (limit path-watches: {PATH_WATCHES})"
        ))
    })?;
    let recursive = args.recursive.unwrap_or(false);
    let shown = args.path.clone();
    let watcher = super::off_thread(move || Watcher::new(&path, recursive, PATH_WATCH_DIRS))
        .await?
        .map_err(|e| {
            watches.stop(watch);
            super::file::with_errno(format!("failed to watch '{shown}'"), &e)
        })?;
    let table = watches.clone();
    let listening = bus.clone();
    std::thread::Builder::new()
        .name(format!("watch-{watch}"))
        .spawn(move || {
            watcher.run(
                &stop,
                || listening.has_listener(Listener::Host, PathChangedEvent::NAME),
                |c| {
                    let data = GuestlinkPathChanged {
                        watch,
                        path: c.path.to_string_lossy().into_owned(),
                        change: c.change,
                        directory: c.directory,
                        cookie: u64::from(c.cookie),
                    };
                    bus.publish(EventRecord::new::<PathChangedEvent>(&data), Audience::Host) > 0
                },
            );
            table.stop(watch);
            tracing::debug!(watch, "watch ended");
        })
        .map_err(|e| {
            watches.stop(watch);
            CommandError::new(format!("cannot start the watch: {e}"))
        })?;
    tracing::info!(path = %args.path, recursive, watch, "watching");
    Ok(GuestlinkWatchId { watch })
}

#[cfg(not(target_os = "linux"))]
async fn start(
    _ctx: Context<'_>,
    _args: GuestlinkPathWatchArgs,
    _bus: crate::events::EventBus,
) -> Result<GuestlinkWatchId, CommandError> {
    Err(CommandError::new(
        "watching paths is not supported on this platform",
    ))
}

impl Handler for GuestlinkPathUnwatch {
    async fn handle(ctx: Context<'_>, args: GuestlinkWatchId) -> Result<Empty, CommandError> {
        if ctx.agent.state().watches.stop(args.watch) {
            Ok(Empty {})
        } else {
            Err(CommandError::new(format!(
                "watch '{}' has not been found",
                args.watch
            )))
        }
    }
}
