//! The D-Bus system bus that logind and single sign-on talk to: the real one, or the
//! one `GUESTLINK_SYSTEM_BUS` names (a test's private bus).

use zbus::Connection;

/// The system bus, or the bus in `GUESTLINK_SYSTEM_BUS`.
pub async fn system_bus() -> zbus::Result<Connection> {
    match std::env::var("GUESTLINK_SYSTEM_BUS") {
        Ok(addr) => {
            zbus::connection::Builder::address(addr.as_str())
                .build()
                .await
        }
        Err(_) => Connection::system().await,
    }
}
