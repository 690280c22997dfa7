//! A blocking wrapper for code without an async runtime: each call runs the async
//! client on a private single-threaded runtime.

use std::time::Duration;

use guestlink_vocabulary::Command;
use serde::Serialize;
use serde_json::Value;

use crate::{ClientError, Endpoint};

/// A blocking connection to an agent.
#[derive(Debug)]
pub struct Client {
    rt: tokio::runtime::Runtime,
    inner: crate::Client,
}

impl Client {
    /// Connects and resynchronises.
    pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Client, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let inner = rt.block_on(crate::Client::connect(endpoint, timeout))?;
        Ok(Client { rt, inner })
    }

    /// See [`crate::Client::call`].
    pub fn call<C: Command>(&mut self, args: &C::Args) -> Result<C::Returns, ClientError>
    where
        C::Args: Serialize,
    {
        self.rt.block_on(self.inner.call::<C>(args))
    }

    /// See [`crate::Client::execute`].
    pub fn execute(&mut self, name: &str, args: Option<Value>) -> Result<Value, ClientError> {
        self.rt.block_on(self.inner.execute(name, args))
    }

    /// See [`crate::Client::file_read_raw`].
    pub fn file_read_raw(
        &mut self,
        handle: i64,
        count: usize,
    ) -> Result<(Vec<u8>, bool), ClientError> {
        self.rt.block_on(self.inner.file_read_raw(handle, count))
    }

    /// See [`crate::Client::file_write_raw`].
    pub fn file_write_raw(
        &mut self,
        handle: i64,
        data: &[u8],
    ) -> Result<guestlink_vocabulary::types::GuestFileWrite, ClientError> {
        self.rt.block_on(self.inner.file_write_raw(handle, data))
    }

    /// See [`crate::Client::subscribe`].
    pub fn subscribe(
        &mut self,
        events: Option<&[&str]>,
        heartbeat: Option<u64>,
    ) -> Result<guestlink_vocabulary::types::Subscription, ClientError> {
        self.rt.block_on(self.inner.subscribe(events, heartbeat))
    }

    /// The next event, or `None` when none comes within `wait`.
    pub fn next_event(&mut self, wait: Duration) -> Result<Option<crate::Event>, ClientError> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(wait, self.inner.next_event()).await })
        {
            Ok(e) => e.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// See [`crate::Client::call_raw`].
    pub fn call_raw(&mut self, request: &Value) -> Result<Value, ClientError> {
        self.rt.block_on(self.inner.call_raw(request))
    }
}
