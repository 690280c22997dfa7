//! Argument validation that reads like qemu-ga's.
//!
//! QEMU's input visitor walks a command's members in schema order and stops at the first
//! problem; members that were not declared are only reported after all declared ones
//! were visited. Nested members are named `list[0].member`. The texts are QEMU's:
//! `Parameter 'x' is missing`, `Parameter 'x' is unexpected`,
//! `Invalid parameter type for 'x', expected: integer`, and for enums
//! `Parameter 'x' does not accept value 'v'` (enums use the bare member name).

use std::fmt;

use serde_json::{Map, Value};

use crate::schema::{Schema, TypeDesc};

/// Where a value sits in the arguments, for error messages.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The arguments object itself.
    Root,
    /// A member of the object at the parent path.
    Member(&'a Path<'a>, &'a str),
    /// An element of the list at the parent path.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The path of member `name` below this one.
    pub fn member(&'a self, name: &'a str) -> Path<'a> {
        Path::Member(self, name)
    }

    /// The path of element `i` below this one.
    pub fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    /// The innermost member name (QEMU names enum errors by it alone).
    pub fn leaf_name(&self) -> String {
        match self {
            Path::Root => "null".into(),
            Path::Member(_, name) => (*name).into(),
            Path::Index(..) => "null".into(),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("null"),
            Path::Member(Path::Root, name) => f.write_str(name),
            Path::Member(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// An argument that does not fit the command's declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// A required member is absent.
    #[error("Parameter '{0}' is missing")]
    Missing(String),
    /// A member that is not declared.
    #[error("Parameter '{0}' is unexpected")]
    Unexpected(String),
    /// A member of the wrong JSON type.
    #[error("Invalid parameter type for '{path}', expected: {expected}")]
    InvalidType {
        /// Full path of the member.
        path: String,
        /// QAPI's name of the expected type.
        expected: &'static str,
    },
    /// A string that is not one of an enum's values.
    #[error("Parameter '{name}' does not accept value '{value}'")]
    BadEnumValue {
        /// Member name.
        name: String,
        /// The value given.
        value: String,
    },
    /// A value of the right type that the declaration still refuses.
    #[error("{0}")]
    Invalid(String),
}

impl ArgError {
    /// A type mismatch at `path`.
    pub fn invalid_type(path: &Path<'_>, expected: &'static str) -> ArgError {
        ArgError::InvalidType {
            path: path.to_string(),
            expected,
        }
    }
}

/// Types that can be built from an argument value, checking it as QEMU would.
pub trait FromArg: Sized {
    /// Converts `value` found at `path`.
    fn from_arg(value: Value, path: &Path<'_>) -> Result<Self, ArgError>;
}

impl FromArg for i64 {
    fn from_arg(value: Value, path: &Path<'_>) -> Result<Self, ArgError> {
        value
            .as_i64()
            .filter(|_| !value.is_f64())
            .ok_or_else(|| ArgError::invalid_type(path, "integer"))
    }
}

impl FromArg for u64 {
    fn from_arg(value: Value, path: &Path<'_>) -> Result<Self, ArgError> {
        // QEMU accepts negative integers for uint64 members and casts them.
        match &value {
            Value::Number(n) if n.is_u64() => n.as_u64(),
            Value::Number(n) if n.is_i64() => n.as_i64().map(|i| i as u64),
            _ => None,
        }
        .ok_or_else(|| ArgError::invalid_type(path, "uint64"))
    }
}

impl FromArg for f64 {
    fn from_arg(value: Value, path: &Path<'_>) -> Result<Self, ArgError> {
        value
            .as_f64()
            .ok_or_else(|| ArgError::invalid_type(path, "number"))
    }
}

impl FromArg for bool {
    fn from_arg(value: Value, path: &Path<'_>) -> Result<Self, ArgError> {
        value
            .as_bool()
            .ok_or_else(|| ArgError::invalid_type(path, "boolean"))
    }
}

impl FromArg for Value {
    fn from_arg(value: Value, _path: &Path<'_>) -> Result<Self, ArgError> {
        Ok(value)
    }
}

impl FromArg for String {
    fn from_arg(value: Value, path: &Path<'_>) -> Result<Self, ArgError> {
        match value {
            Value::String(s) => Ok(s),
            _ => Err(ArgError::invalid_type(path, "string")),
        }
    }
}

impl<T: FromArg> FromArg for Vec<T> {
    fn from_arg(value: Value, path: &Path<'_>) -> Result<Self, ArgError> {
        let Value::Array(items) = value else {
            return Err(ArgError::invalid_type(path, "array"));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| T::from_arg(v, &path.index(i)))
            .collect()
    }
}

/// A struct member: required (`T`) or optional (`Option<T>`).
pub trait Field: Sized {
    /// Whether the member may be absent.
    const OPTIONAL: bool;
    /// Converts the member's value, or its absence.
    fn take(value: Option<Value>, path: &Path<'_>) -> Result<Self, ArgError>;
    /// The member's type.
    fn field_schema() -> TypeDesc;
    /// True for an absent optional member (it is then left out of replies).
    fn is_absent(&self) -> bool;
}

impl<T: FromArg + Schema> Field for T {
    const OPTIONAL: bool = false;
    fn take(value: Option<Value>, path: &Path<'_>) -> Result<Self, ArgError> {
        match value {
            Some(v) => T::from_arg(v, path),
            None => Err(ArgError::Missing(path.to_string())),
        }
    }
    fn field_schema() -> TypeDesc {
        T::schema()
    }
    fn is_absent(&self) -> bool {
        false
    }
}

impl<T: FromArg + Schema> Field for Option<T> {
    const OPTIONAL: bool = true;
    fn take(value: Option<Value>, path: &Path<'_>) -> Result<Self, ArgError> {
        value.map(|v| T::from_arg(v, path)).transpose()
    }
    fn field_schema() -> TypeDesc {
        T::schema()
    }
    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

/// The object at `path`, or a type error.
pub fn expect_object(value: Value, path: &Path<'_>) -> Result<Map<String, Value>, ArgError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ArgError::invalid_type(path, "object")),
    }
}

/// Reports the first member that no declaration consumed.
pub fn reject_leftovers(map: Map<String, Value>, path: &Path<'_>) -> Result<(), ArgError> {
    match map.keys().next() {
        Some(key) => Err(ArgError::Unexpected(path.member(key).to_string())),
        None => Ok(()),
    }
}
