//! Types of `__org.guestlink_update-*`: a new guestlinkd sent through the agent's own
//! channel, checked, swapped in, restarted, and rolled back if it does not come up.

qapi_struct! {
    /// Arguments of `__org.guestlink_update-start`.
    pub struct UpdateStartArgs as "q_obj___org.guestlink_update-start-arg" {
        /// The new executable's size in bytes.
        size: i64 = "size",
        /// Its SHA-256, in hex.
        sha256: String = "sha256",
        /// An ed25519 signature of its bytes, in base64: required when the guest has an
        /// update key (`/etc/guestlink/update.pub`).
        signature: Option<String> = "signature",
    }
}

qapi_struct! {
    /// The result of `__org.guestlink_update-commit`: the new executable is in place and
    /// the agent restarts once this reply is sent.
    pub struct UpdateCommitted as "GuestlinkUpdateCommitted" {
        /// The running agent's version (`guestlinkd -V` of the old executable).
        old_version: String = "old-version",
        /// The new executable's version (its `-V`).
        new_version: String = "new-version",
        /// How the agent restarts: `systemd` (the unit restarts it) or `exec`.
        restart: String = "restart",
        /// Seconds the new agent has to come up before the old one is put back.
        trial_seconds: i64 = "trial-seconds",
    }
}

qapi_struct! {
    /// The result of `__org.guestlink_update-status`: the last update on this guest.
    pub struct UpdateStatus as "GuestlinkUpdateStatus" {
        /// `none`, `pending` (the new agent is on trial), `confirmed` or `rolled-back`.
        state: String = "state",
        /// The version that was running before the update.
        old_version: Option<String> = "old-version",
        /// The version the update brought.
        new_version: Option<String> = "new-version",
        /// Why the update was rolled back.
        reason: Option<String> = "reason",
        /// The version running now.
        running_version: String = "running-version",
    }
}
