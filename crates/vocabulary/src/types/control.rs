//! Types of the extensions through which a host controls the guest's desktop and power
//! beyond what QGA has (what the oVirt agent did): locking and ending a user session,
//! a shutdown with a grace delay and a message to users, lifecycle hooks around
//! migration and hibernation, and handing credentials to the greeter for single
//! sign-on; and the actions an administrator installs for the host to run.

use super::Base64Data;

qapi_struct! {
    /// Arguments of `__org.guestlink_session-lock` and `__org.guestlink_session-logoff`.
    pub struct SessionControlArgs as "q_obj___org.guestlink_session-control-arg" {
        /// The logind session id; the active session when absent.
        session: Option<String> = "session",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_shutdown`.
    pub struct GuestlinkShutdownArgs as "q_obj___org.guestlink_shutdown-arg" {
        /// `powerdown` (default), `halt` or `reboot`.
        mode: Option<String> = "mode",
        /// Seconds before the machine goes down (default 0); rounded up to whole
        /// minutes, the unit `shutdown(8)` schedules in.
        delay: Option<i64> = "delay",
        /// Broadcast to logged-in users before it does.
        message: Option<String> = "message",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_lifecycle-event`.
    pub struct LifecycleEventArgs as "q_obj___org.guestlink_lifecycle-event-arg" {
        /// `before_migration`, `after_migration`, `before_hibernation` or
        /// `after_hibernation`.
        event: String = "event",
        /// Whether the operation the event is about failed (`after_*` only).
        failure: Option<bool> = "failure",
    }
}

qapi_struct! {
    /// How one hook ran.
    pub struct HookResult as "GuestlinkHookResult" {
        /// The hook's file name.
        name: String = "name",
        /// Its exit code, when it exited.
        exitcode: Option<i64> = "exitcode",
        /// The signal that ended it, when one did.
        signal: Option<i64> = "signal",
        /// Whether it was killed for running past its time.
        timed_out: bool = "timed-out",
        /// Set when the gate refused what its `# guestlink-needs:` line declares, so
        /// it did not run.
        denied: Option<bool> = "denied",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_credentials-handoff`.
    pub struct CredentialsArgs as "q_obj___org.guestlink_credentials-handoff-arg" {
        /// The user, possibly `user@domain`.
        username: String = "username",
        /// The password; never logged.
        password: String = "password",
    }
}

qapi_struct! {
    /// How a credentials hand-off ended.
    pub struct CredentialsHandoff as "GuestlinkCredentialsHandoff" {
        /// Whether a privileged greeter collected them before the wait ran out.
        collected: bool = "collected",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_action-run`.
    pub struct ActionRunArgs as "q_obj___org.guestlink_action-run-arg" {
        /// The action: a file name in the actions directories.
        name: String = "name",
        /// Its arguments (argv after the name; no shell).
        arg: Option<Vec<String>> = "arg",
        /// Fed to its standard input.
        input_data: Option<Base64Data> = "input-data",
    }
}

qapi_struct! {
    /// How an action ran.
    pub struct ActionResult as "GuestlinkActionResult" {
        /// Its exit code, when it exited.
        exitcode: Option<i64> = "exitcode",
        /// The signal that ended it.
        signal: Option<i64> = "signal",
        /// Whether it was killed for running past its time.
        timed_out: bool = "timed-out",
        /// Its standard output (at most 64 KiB).
        out_data: Base64Data = "out-data",
        /// Its standard error (at most 64 KiB).
        err_data: Base64Data = "err-data",
        /// Whether either output was cut at the cap.
        truncated: bool = "truncated",
    }
}

qapi_struct! {
    /// An action the actions directories offer.
    pub struct ActionInfo as "GuestlinkActionInfo" {
        /// Its name.
        name: String = "name",
        /// The commands it counts as for the policy (`guest-exec` unless its
        /// `# guestlink-needs:` line says otherwise).
        needs: Vec<String> = "needs",
        /// Whether the gate lets this caller run it now.
        enabled: bool = "enabled",
    }
}
