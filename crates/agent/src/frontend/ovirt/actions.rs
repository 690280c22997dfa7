//! The host commands that act on the guest: `lock-screen`, `log-off`, `shutdown`,
//! `hibernate`, `lifecycle-event` and `login`, each translated into a command of the
//! shared vocabulary and run through the same gate as every other channel.
//!
//! They may take a while (hooks run up to their time limit, a greeter has 5 s to
//! collect credentials), so each becomes a future the connection polls beside its
//! timers; what it answers (`completion`) is sent when it is done.

use guestlink_core::dispatch::Handler;
use std::future::Future;
use std::pin::Pin;

use guestlink_core::{Agent, Connection};
use guestlink_proto_ovirt::Message;
use guestlink_vocabulary::commands::{
    GuestSuspendDisk, GuestSuspendRam, GuestlinkCredentialsHandoff, GuestlinkLifecycleEvent,
    GuestlinkSessionLock, GuestlinkSessionLogoff, GuestlinkShutdown,
};
use guestlink_vocabulary::types::{
    CredentialsArgs, Empty, GuestlinkShutdownArgs, LifecycleEventArgs, SessionControlArgs,
};
use serde_json::Value;

/// A host action under way; what it ends with is sent to the host.
pub type Running<'a> = Pin<Box<dyn Future<Output = Option<Message>> + Send + 'a>>;

/// The message users see when vdsm gives none (the Linux agent's default).
pub const DEFAULT_SHUTDOWN_MESSAGE: &str = "System is going down";

/// Why a command was not turned into an action.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a command this module knows.
    Unknown,
    /// A known command with arguments that make no sense.
    Invalid(String),
}

/// The action for host command `m`.
pub fn start<'a>(
    agent: &'a Agent,
    conn: &'a Connection,
    m: &Message,
) -> Result<Running<'a>, Refusal> {
    match m.name.as_str() {
        "lock-screen" => Ok(run::<GuestlinkSessionLock>(
            agent,
            conn,
            SessionControlArgs::default(),
            None,
        )),
        "log-off" => Ok(run::<GuestlinkSessionLogoff>(
            agent,
            conn,
            SessionControlArgs::default(),
            None,
        )),
        "shutdown" => Ok(run::<GuestlinkShutdown>(
            agent,
            conn,
            shutdown_args(m)?,
            None,
        )),
        "hibernate" => match m
            .args
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("disk")
        {
            "disk" => Ok(run::<GuestSuspendDisk>(agent, conn, Empty {}, None)),
            "mem" | "ram" => Ok(run::<GuestSuspendRam>(agent, conn, Empty {}, None)),
            other => Err(Refusal::Invalid(format!(
                "unknown hibernation state '{other}'"
            ))),
        },
        "lifecycle-event" => {
            let event = match m.args.get("type").and_then(Value::as_str) {
                Some(t) => t.to_string(),
                None => return Err(Refusal::Invalid("no event type".into())),
            };
            let args = LifecycleEventArgs {
                event,
                failure: Some(truthy(m.args.get("failure"))),
            };
            Ok(run::<GuestlinkLifecycleEvent>(
                agent,
                conn,
                args,
                completion(m),
            ))
        }
        "login" => {
            let text = |k: &str| m.args.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(username), Some(password)) = (text("username"), text("password")) else {
                return Err(Refusal::Invalid(
                    "login needs a username and a password".into(),
                ));
            };
            Ok(run::<GuestlinkCredentialsHandoff>(
                agent,
                conn,
                CredentialsArgs { username, password },
                None,
            ))
        }
        _ => Err(Refusal::Unknown),
    }
}

/// The `completion` vdsm waits for (before_* events, up to 10 s) when a
/// `lifecycle-event` gave a `reply_id`. It is sent however the event went: run, refused
/// by the policy, refused as malformed or for too many actions at once.
pub fn completion(m: &Message) -> Option<Message> {
    if m.name != "lifecycle-event" {
        return None;
    }
    m.args.get("reply_id").cloned().map(|id| {
        Message::new("completion")
            .arg("reply_id", id)
            .arg("done", true)
    })
}

/// Runs `C`; logs how it went (never its arguments) and then gives `then`.
fn run<'a, C: Handler>(
    agent: &'a Agent,
    conn: &'a Connection,
    args: C::Args,
    then: Option<Message>,
) -> Running<'a>
where
    C::Args: Sync,
{
    Box::pin(async move {
        let outcome = agent.call::<C>(conn, args, None).await.map(|_| ());
        log_outcome(C::NAME, outcome.as_ref().err());
        then
    })
}

/// How an action went, in the log: once in the binary, not once per action.
fn log_outcome(command: &'static str, error: Option<&guestlink_core::DispatchError>) {
    match error {
        None => tracing::info!(command, "oVirt action done"),
        Some(e) => tracing::warn!(command, "oVirt action failed: {e}"),
    }
}

/// `shutdown`'s arguments as the Linux agent read them: `timeout` in seconds as a
/// number or a string (default 0), `message`, and `reboot` as the string "true".
fn shutdown_args(m: &Message) -> Result<GuestlinkShutdownArgs, Refusal> {
    let delay = match m.args.get("timeout") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.ceil() as i64))
            .unwrap_or(-1),
        Some(Value::String(s)) if s.trim().is_empty() => 0,
        Some(Value::String(s)) => s.trim().parse().unwrap_or(-1),
        Some(_) => -1,
    };
    if delay < 0 {
        return Err(Refusal::Invalid(
            "shutdown timeout is not a number of seconds".into(),
        ));
    }
    let message = match m.args.get("message").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => DEFAULT_SHUTDOWN_MESSAGE.to_string(),
    };
    Ok(GuestlinkShutdownArgs {
        mode: Some(
            if truthy(m.args.get("reboot")) {
                "reboot"
            } else {
                "powerdown"
            }
            .into(),
        ),
        delay: Some(delay),
        message: Some(message),
    })
}

/// vdsm's booleans: the string "true" (any case), or a JSON true.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: Value) -> Message {
        let Value::Object(mut map) = v else { panic!() };
        let name = map
            .remove("__name__")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        let mut m = Message::new(&name);
        m.args = map;
        m
    }

    #[test]
    fn shutdown_arguments_as_vdsm_sends_them() {
        let a = shutdown_args(&msg(
            json!({"__name__": "shutdown", "timeout": "90", "message": "bye", "reboot": "true"}),
        ))
        .unwrap();
        assert_eq!(
            (a.mode.as_deref(), a.delay, a.message.as_deref()),
            (Some("reboot"), Some(90), Some("bye"))
        );
        let a = shutdown_args(&msg(
            json!({"__name__": "shutdown", "timeout": 30, "reboot": "False"}),
        ))
        .unwrap();
        assert_eq!(
            (a.mode.as_deref(), a.delay, a.message.as_deref()),
            (Some("powerdown"), Some(30), Some(DEFAULT_SHUTDOWN_MESSAGE))
        );
        let a = shutdown_args(&msg(json!({"__name__": "shutdown"}))).unwrap();
        assert_eq!(a.delay, Some(0));
        for bad in [json!("soon"), json!(-5), json!([1])] {
            assert!(matches!(
                shutdown_args(&msg(json!({"__name__": "shutdown", "timeout": bad}))),
                Err(Refusal::Invalid(_))
            ));
        }
    }
}
