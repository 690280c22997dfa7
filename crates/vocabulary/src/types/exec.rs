//! Types of `guest-exec` and `guest-exec-status`.

use serde::{Deserialize, Serialize};

use super::Base64Data;
use crate::args::{ArgError, FromArg, Path};
use crate::schema::{Schema, TypeDesc};

qapi_enum! {
    /// Which output streams of a child to capture.
    pub enum GuestExecCaptureOutputMode as "GuestExecCaptureOutputMode" {
        /// Neither; both go to /dev/null.
        None = "none",
        /// Standard output only.
        Stdout = "stdout",
        /// Standard error only.
        Stderr = "stderr",
        /// Both, reported separately.
        Separated = "separated",
        /// Both through one pipe, reported as `out-data`.
        Merged = "merged",
    }
}

/// `capture-output`: a boolean (true means separated) or a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GuestExecCaptureOutput {
    /// `true` captures both streams separately, `false` neither.
    Flag(bool),
    /// An explicit mode.
    Mode(GuestExecCaptureOutputMode),
}

impl GuestExecCaptureOutput {
    /// The mode this value stands for.
    pub fn mode(self) -> GuestExecCaptureOutputMode {
        match self {
            Self::Flag(true) => GuestExecCaptureOutputMode::Separated,
            Self::Flag(false) => GuestExecCaptureOutputMode::None,
            Self::Mode(m) => m,
        }
    }
}

impl Default for GuestExecCaptureOutput {
    fn default() -> Self {
        Self::Flag(false)
    }
}

impl Schema for GuestExecCaptureOutput {
    fn schema() -> TypeDesc {
        TypeDesc::Alternate {
            name: "GuestExecCaptureOutput",
            branches: vec![TypeDesc::Bool, GuestExecCaptureOutputMode::schema()],
        }
    }
}

impl FromArg for GuestExecCaptureOutput {
    fn from_arg(value: serde_json::Value, path: &Path<'_>) -> Result<Self, ArgError> {
        match value {
            serde_json::Value::Bool(b) => Ok(Self::Flag(b)),
            serde_json::Value::String(_) => {
                GuestExecCaptureOutputMode::from_arg(value, path).map(Self::Mode)
            }
            _ => Err(ArgError::invalid_type(path, "GuestExecCaptureOutput")),
        }
    }
}

qapi_struct! {
    /// Arguments of `guest-exec`.
    pub struct GuestExecArgs as "q_obj_guest-exec-arg" {
        /// Program to run; looked up in PATH when it has no slash.
        path: String = "path",
        /// Arguments (argv[1..]).
        arg: Option<Vec<String>> = "arg",
        /// Environment as NAME=VALUE; replaces the agent's when given.
        env: Option<Vec<String>> = "env",
        /// Standard input, base64-encoded; stdin is closed after it.
        input_data: Option<String> = "input-data",
        /// Which streams to capture; default none.
        capture_output: Option<GuestExecCaptureOutput> = "capture-output",
    }
}

qapi_struct! {
    /// The result of `guest-exec`.
    pub struct GuestExec as "GuestExec" {
        /// The child's process id, for `guest-exec-status`.
        pid: i64 = "pid",
    }
}

qapi_struct! {
    /// Arguments of `guest-exec-status`.
    pub struct GuestExecStatusArgs as "q_obj_guest-exec-status-arg" {
        /// A pid returned by `guest-exec`.
        pid: i64 = "pid",
    }
}

qapi_struct! {
    /// The result of `guest-exec-status`. Exit data appears once `exited` is true;
    /// the record is then forgotten.
    pub struct GuestExecStatus as "GuestExecStatus" {
        /// Whether the child has exited and its captured pipes are closed.
        exited: bool = "exited",
        /// Exit status, when it exited normally.
        exitcode: Option<i64> = "exitcode",
        /// Signal number, when a signal killed it.
        signal: Option<i64> = "signal",
        /// Captured standard output (at most 16 MiB).
        out_data: Option<Base64Data> = "out-data",
        /// Captured standard error (at most 16 MiB).
        err_data: Option<Base64Data> = "err-data",
        /// Whether standard output was cut at the cap.
        out_truncated: Option<bool> = "out-truncated",
        /// Whether standard error was cut at the cap.
        err_truncated: Option<bool> = "err-truncated",
    }
}
