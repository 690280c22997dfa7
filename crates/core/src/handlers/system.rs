//! Read-only system information: time, host name, time zone, users, OS.

use guestlink_vocabulary::commands::{
    GuestGetHostName, GuestGetOsinfo, GuestGetTime, GuestGetTimezone, GuestGetUsers,
};
use guestlink_vocabulary::types::{Empty, GuestHostName, GuestOSInfo, GuestTimezone, GuestUser};

use super::osrelease::parse_os_release;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;

impl Handler for GuestGetTime {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<i64, CommandError> {
        // qemu-ga reports microsecond resolution in nanoseconds.
        Ok(ctx.agent.platform().clock.now_micros().saturating_mul(1000))
    }
}

impl Handler for GuestGetHostName {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<GuestHostName, CommandError> {
        let host_name = ctx
            .agent
            .platform()
            .system
            .hostname()
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        Ok(GuestHostName { host_name })
    }
}

impl Handler for GuestGetTimezone {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<GuestTimezone, CommandError> {
        let tz = ctx.agent.platform().system.timezone();
        Ok(GuestTimezone {
            zone: tz.abbreviation,
            offset: tz.offset,
        })
    }
}

impl Handler for GuestGetUsers {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<GuestUser>, CommandError> {
        let records = ctx
            .agent
            .platform()
            .system
            .logins()
            .map_err(|e| CommandError::new(format!("failed to read login records: {e}")))?;
        // One entry per user, in order of first appearance, with the earliest login.
        let mut users: Vec<GuestUser> = Vec::new();
        for r in records {
            match users.iter_mut().find(|u| u.user == r.user) {
                Some(u) => u.login_time = u.login_time.min(r.time),
                None => users.push(GuestUser {
                    user: r.user,
                    login_time: r.time,
                    domain: r.domain,
                }),
            }
        }
        Ok(users)
    }
}

impl Handler for GuestGetOsinfo {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<GuestOSInfo, CommandError> {
        let system = &ctx.agent.platform().system;
        let uname = system.uname();
        let mut info = GuestOSInfo {
            kernel_release: Some(uname.release),
            kernel_version: Some(uname.version),
            machine: Some(uname.machine),
            ..GuestOSInfo::default()
        };
        if let Some(text) = system.os_release() {
            for (key, value) in parse_os_release(&text) {
                let slot = match key.as_str() {
                    "ID" => &mut info.id,
                    "NAME" => &mut info.name,
                    "PRETTY_NAME" => &mut info.pretty_name,
                    "VERSION" => &mut info.version,
                    "VERSION_ID" => &mut info.version_id,
                    "VARIANT" => &mut info.variant,
                    "VARIANT_ID" => &mut info.variant_id,
                    _ => continue,
                };
                *slot = Some(value);
            }
        }
        Ok(info)
    }
}
