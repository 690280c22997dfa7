//! Calling the core from a front end that speaks no JSON of its own (vdagent, oVirt):
//! typed arguments in, typed results out,
//! through the same dispatch path and policy gate as every other channel.

use guestlink_core::{Agent, Bulk, Connection, DispatchError};
use guestlink_vocabulary::Command;
use serde_json::{Map, Value};

/// Runs command `C` for the host on `conn`, with `payload` as its raw bytes.
pub async fn call<C: Command>(
    agent: &Agent,
    conn: &Connection,
    args: &C::Args,
    payload: Option<Vec<u8>>,
) -> Result<C::Returns, DispatchError> {
    let map = match serde_json::to_value(args) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let bulk = payload.map(|p| Bulk::new(Some(p)));
    let reply = agent.execute_in(conn, C::NAME, map, bulk.as_ref()).await?;
    let value = serde_json::to_value(reply.value()).map_err(|e| {
        guestlink_core::CommandError::new(format!("cannot read the result of {}: {e}", C::NAME))
    })?;
    serde_json::from_value(value).map_err(|e| {
        guestlink_core::CommandError::new(format!("cannot read the result of {}: {e}", C::NAME))
            .into()
    })
}
