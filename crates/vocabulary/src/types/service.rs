//! Types of the `__org.guestlink_service-*` commands: system services (systemd units)
//! listed, read and acted on, as Matahari's services agent did.

qapi_enum! {
    /// What to do to a unit.
    pub enum GuestlinkServiceAction as "__org.guestlink_ServiceAction" {
        /// Start it (systemd's job mode `replace`).
        Start = "start",
        /// Stop it.
        Stop = "stop",
        /// Restart it (start it when it is not running).
        Restart = "restart",
        /// Enable it: its install links are made and the manager reloaded.
        Enable = "enable",
        /// Disable it: its install links are removed and the manager reloaded.
        Disable = "disable",
    }
}

qapi_struct! {
    /// Arguments naming one unit.
    pub struct GuestlinkServiceArgs as "q_obj___org.guestlink_service-status-arg" {
        /// The unit's name; `.service` is added when it has no unit type suffix.
        unit: String = "unit",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_service-control`.
    pub struct GuestlinkServiceControlArgs as "q_obj___org.guestlink_service-control-arg" {
        /// The unit's name; `.service` is added when it has no unit type suffix.
        unit: String = "unit",
        /// What to do.
        action: GuestlinkServiceAction = "action",
    }
}

qapi_struct! {
    /// A unit as the service manager reports it.
    pub struct GuestlinkService as "__org.guestlink_Service" {
        /// Its name (`ssh.service`).
        unit: String = "unit",
        /// Its description.
        description: String = "description",
        /// Whether its file was loaded (`loaded`, `not-found`, `masked`, ...).
        load_state: String = "load-state",
        /// `active`, `inactive`, `failed`, `activating`, ...
        active_state: String = "active-state",
        /// The type-specific state (`running`, `exited`, `dead`, ...).
        sub_state: String = "sub-state",
        /// `enabled`, `disabled`, `static`, ... (status only).
        unit_file_state: Option<String> = "unit-file-state",
        /// The main process of a running service (status only).
        main_pid: Option<i64> = "main-pid",
    }
}
