//! Commands the agent answers only when they fail: guest-shutdown and guest-suspend-*
//! reply nothing on success (the guest is going down), so silence means "under way".

use std::time::Duration;

use serde_json::Value;

use crate::{Client, ClientError};

/// How long a command that replies only on failure is given to fail (less if the
/// client's own timeout is shorter).
pub const SILENT_WAIT: Duration = Duration::from_secs(3);

impl Client {
    /// Sends a raw request for a command that replies only when it fails. `Ok(None)`:
    /// no reply came within [`SILENT_WAIT`], or the connection closed as the guest went
    /// down, so the command is under way; `Ok(Some(reply))`: the whole reply object
    /// (an `error`, or an unexpected `return`).
    pub async fn call_raw_silent(&mut self, request: &Value) -> Result<Option<Value>, ClientError> {
        let timeout = self.timeout();
        self.set_timeout(SILENT_WAIT.min(timeout));
        let reply = self.call_raw(request).await;
        self.set_timeout(timeout);
        match reply {
            Ok(reply) => Ok(Some(reply)),
            Err(ClientError::Timeout(_) | ClientError::Closed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Client::call_raw_silent`] by name: the agent's error comes back as
    /// [`ClientError::Agent`], an unexpected success as `Ok(Some(return value))`.
    pub async fn execute_silent(
        &mut self,
        name: &str,
        arguments: Option<Value>,
    ) -> Result<Option<Value>, ClientError> {
        match self
            .call_raw_silent(&Client::request(name, arguments))
            .await?
        {
            None => Ok(None),
            Some(reply) => Client::result_of(reply).map(Some),
        }
    }
}
