//! The host acting on user sessions through the session manager: locking a session's
//! screen, ending a session, and single sign-on (credentials handed to a greeter).

use std::time::Duration;

use guestlink_vocabulary::commands::{
    GuestlinkCredentialsHandoff, GuestlinkSessionLock, GuestlinkSessionLogoff,
};
use guestlink_vocabulary::types::{CredentialsArgs, CredentialsHandoff, Empty, SessionControlArgs};

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;

/// How long a greeter has to collect credentials (the oVirt agent's wait).
pub const HANDOFF_WAIT: Duration = Duration::from_secs(5);

/// The session named, or the active one.
fn session_of(ctx: &Context<'_>, args: SessionControlArgs) -> Result<String, CommandError> {
    if let Some(s) = args.session {
        return Ok(s);
    }
    match ctx.agent.state().sessions.host_user()? {
        Some((session, _, _)) => Ok(session),
        None => Err(CommandError::new("no user session is known")),
    }
}

impl Handler for GuestlinkSessionLock {
    async fn handle(ctx: Context<'_>, args: SessionControlArgs) -> Result<Empty, CommandError> {
        let session = session_of(&ctx, args)?;
        tracing::info!(session = %session, "locking a session for the host");
        let manager = &ctx.agent.platform().session_manager;
        manager.lock(session).await.map_err(CommandError::new)?;
        Ok(Empty {})
    }
}

impl Handler for GuestlinkSessionLogoff {
    async fn handle(ctx: Context<'_>, args: SessionControlArgs) -> Result<Empty, CommandError> {
        let session = session_of(&ctx, args)?;
        tracing::warn!(session = %session, "ending a session for the host");
        let manager = &ctx.agent.platform().session_manager;
        manager
            .terminate(session)
            .await
            .map_err(CommandError::new)?;
        Ok(Empty {})
    }
}

/// The credentials as greeter plugins read them: the user's length (4 bytes, big
/// endian), the user, the password and a NUL.
pub fn pack_credentials(user: &str, password: &str) -> Vec<u8> {
    let mut blob = Vec::with_capacity(4 + user.len() + password.len() + 1);
    blob.extend_from_slice(&(user.len() as u32).to_be_bytes());
    blob.extend_from_slice(user.as_bytes());
    blob.extend_from_slice(password.as_bytes());
    blob.push(0);
    blob
}

impl Handler for GuestlinkCredentialsHandoff {
    async fn handle(
        ctx: Context<'_>,
        args: CredentialsArgs,
    ) -> Result<CredentialsHandoff, CommandError> {
        if args.username.is_empty() || args.username.contains('\0') || args.password.contains('\0')
        {
            return Err(CommandError::new(
                "Parameter 'username' expects a non-empty name without NUL characters",
            ));
        }
        let Ok(_one) = ctx.agent.state().credentials.try_lock() else {
            return Err(CommandError::new(
                "another credentials hand-off is in progress",
            ));
        };
        // The name is logged; the password never is.
        tracing::info!(user = %args.username, "offering credentials to the greeter");
        let blob = pack_credentials(&args.username, &args.password);
        // The password's own copy is wiped; the blob is, by the hand-off.
        let mut password = args.password.into_bytes();
        password.fill(0);
        std::hint::black_box(&password);
        drop(password);
        let manager = &ctx.agent.platform().session_manager;
        let collected = manager
            .hand_off_credentials(blob, HANDOFF_WAIT)
            .await
            .map_err(CommandError::new)?;
        tracing::info!(collected, "credentials hand-off over");
        Ok(CredentialsHandoff { collected })
    }
}
