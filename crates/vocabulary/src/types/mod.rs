//! Argument and result types of the commands, with their QAPI wire names, grouped by
//! what the commands touch. Everything is re-exported here.

mod base64;
mod control;
mod desktop;
mod exec;
mod file;
mod fs;
mod live;
mod path;
mod resize;
mod service;
mod session;
mod system;
mod update;
mod user;

pub use self::base64::{
    decode as base64_decode, decoded_len as base64_decoded_len, encode as base64_encode,
    encode_into as base64_encode_into, validate as base64_validate, Base64Data, Base64Error,
    StreamDecoder,
};
pub use control::*;
pub use desktop::*;
pub use exec::*;
pub use file::*;
pub use fs::*;
pub use live::*;
pub use path::*;
pub use resize::*;
pub use service::*;
pub use session::*;
pub use system::*;
pub use update::*;
pub use user::*;

use crate::args::{ArgError, FromArg, Path};

qapi_struct! {
    /// No arguments, or an empty result (`{}` on the wire).
    pub struct Empty as "Empty" {}
}

qapi_struct! {
    /// Arguments of `guest-sync` and `guest-sync-delimited`.
    pub struct GuestSyncArgs as "q_obj_guest-sync-arg" {
        /// A value the agent echoes back; any 64-bit integer.
        id: i64 = "id",
    }
}

qapi_struct! {
    /// One command as listed by `guest-info`.
    pub struct GuestAgentCommandInfo as "GuestAgentCommandInfo" {
        /// Command name.
        name: String = "name",
        /// Whether policy and state allow it now.
        enabled: bool = "enabled",
        /// Whether it replies when it succeeds.
        success_response: bool = "success-response",
    }
}

qapi_struct! {
    /// The result of `guest-info`.
    pub struct GuestAgentInfo as "GuestAgentInfo" {
        /// Agent version.
        version: String = "version",
        /// Every command the agent has.
        supported_commands: Vec<GuestAgentCommandInfo> = "supported_commands",
    }
}

qapi_struct! {
    /// The result of `guest-get-osinfo`: uname and os-release fields.
    pub struct GuestOSInfo as "GuestOSInfo" {
        /// `uname -r`.
        kernel_release: Option<String> = "kernel-release",
        /// `uname -v`.
        kernel_version: Option<String> = "kernel-version",
        /// `uname -m`.
        machine: Option<String> = "machine",
        /// os-release `ID`.
        id: Option<String> = "id",
        /// os-release `NAME`.
        name: Option<String> = "name",
        /// os-release `PRETTY_NAME`.
        pretty_name: Option<String> = "pretty-name",
        /// os-release `VERSION`.
        version: Option<String> = "version",
        /// os-release `VERSION_ID`.
        version_id: Option<String> = "version-id",
        /// os-release `VARIANT`.
        variant: Option<String> = "variant",
        /// os-release `VARIANT_ID`.
        variant_id: Option<String> = "variant-id",
    }
}

qapi_struct! {
    /// The result of `guest-get-host-name`.
    pub struct GuestHostName as "GuestHostName" {
        /// The current host name.
        host_name: String = "host-name",
    }
}

qapi_struct! {
    /// The result of `guest-get-timezone`.
    pub struct GuestTimezone as "GuestTimezone" {
        /// Time zone abbreviation, e.g. `UTC` or `CET`.
        zone: Option<String> = "zone",
        /// Offset from UTC in seconds, east positive.
        offset: i64 = "offset",
    }
}

qapi_struct! {
    /// A logged-in user, as `guest-get-users` lists them.
    pub struct GuestUser as "GuestUser" {
        /// User name.
        user: String = "user",
        /// Earliest login of the user, seconds since the epoch.
        login_time: f64 = "login-time",
        /// Logon domain (Windows only).
        domain: Option<String> = "domain",
    }
}

/// Converts a whole arguments object for a command.
pub fn parse_args<T: FromArg>(
    args: serde_json::Map<String, serde_json::Value>,
) -> Result<T, ArgError> {
    T::from_arg(serde_json::Value::Object(args), &Path::Root)
}
