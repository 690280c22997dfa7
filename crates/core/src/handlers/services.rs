//! System services: the service manager's units listed and read, and acted on for the
//! host when the policy's `[services]` table lists the unit
//! ([`crate::policy::services`]). The platform's [`Services`](crate::platform::Services)
//! speaks to systemd, or to Windows' service control manager, and says how it names
//! units.

use guestlink_vocabulary::commands::{
    GuestlinkServiceControl, GuestlinkServiceList, GuestlinkServiceStatus,
};
use guestlink_vocabulary::types::{
    Empty, GuestlinkService, GuestlinkServiceArgs, GuestlinkServiceControlArgs,
};

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;

impl Handler for GuestlinkServiceList {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<GuestlinkService>, CommandError> {
        let services = &ctx.agent.platform().services;
        services.list().await.map_err(CommandError::new)
    }
}

impl Handler for GuestlinkServiceStatus {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkServiceArgs,
    ) -> Result<GuestlinkService, CommandError> {
        let services = &ctx.agent.platform().services;
        let unit = services.unit_name(&args.unit).map_err(CommandError::new)?;
        services.status(unit).await.map_err(CommandError::new)
    }
}

impl Handler for GuestlinkServiceControl {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkServiceControlArgs,
    ) -> Result<GuestlinkService, CommandError> {
        let services = &ctx.agent.platform().services;
        let unit = services.unit_name(&args.unit).map_err(CommandError::new)?;
        ctx.agent
            .service_scope()
            .check(&unit)
            .map_err(CommandError::new)?;
        let action = args.action;
        tracing::warn!(unit = %unit, action = action.as_str(), "acting on a service for the host");
        services
            .control(unit.clone(), action)
            .await
            .map_err(CommandError::new)?;
        services.status(unit).await.map_err(CommandError::new)
    }
}
