//! Waiting for a Wayland compositor's answer with a time limit: a compositor that
//! stops answering must not hold a display-set forever (`blocking_dispatch` would).

use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use wayland_client::{Connection, EventQueue};

/// How long the compositor may take to describe its outputs or to apply a layout.
pub const ANSWER_WAIT: Duration = Duration::from_secs(15);

/// Dispatches `queue`'s events into `state` until `done(state)`, for at most `limit`.
pub fn until<S>(
    conn: &Connection,
    queue: &mut EventQueue<S>,
    state: &mut S,
    limit: Duration,
    done: impl Fn(&S) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        queue.dispatch_pending(state).map_err(|e| e.to_string())?;
        if done(state) {
            return Ok(());
        }
        conn.flush().map_err(|e| e.to_string())?;
        // None: events came in meanwhile; dispatch them first.
        let Some(guard) = queue.prepare_read() else {
            continue;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the compositor did not answer in {} s",
                limit.as_secs()
            ));
        }
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let ready = {
            let fd = guard.connection_fd();
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => 0,
                Err(e) => return Err(e.to_string()),
            }
        };
        if ready > 0 {
            guard.read().map_err(|e| e.to_string())?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[test]
    fn a_compositor_that_never_answers_is_given_up_on() {
        // The compositor's end of the socket is held and never written to.
        let (ours, _compositor) = std::os::unix::net::UnixStream::pair().unwrap();
        let conn = Connection::from_socket(ours).unwrap();
        let mut queue = conn.new_event_queue::<Nothing>();
        let started = Instant::now();
        let r = until(
            &conn,
            &mut queue,
            &mut Nothing,
            Duration::from_millis(300),
            |_| false,
        );
        let e = r.unwrap_err();
        assert!(e.starts_with("the compositor did not answer in"), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        // What is already there is not waited for.
        assert_eq!(
            until(&conn, &mut queue, &mut Nothing, ANSWER_WAIT, |_| true),
            Ok(())
        );
    }
}
