//! The request envelope: `{"execute": NAME, "arguments": {...}, "id": ANY}`, checked
//! as qemu-ga's `qmp_dispatch` does, with its error texts.

use serde_json::{Map, Value};

/// A well-formed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command name, exactly as sent.
    pub execute: String,
    /// The arguments; absent arguments are an empty object.
    pub arguments: Map<String, Value>,
    /// The `id` member, echoed in the reply.
    pub id: Option<Value>,
}

/// Why a JSON value is not a request (all are `GenericError` in QGA).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The value is not an object.
    #[error("QMP input must be a JSON object")]
    NotAnObject,
    /// `execute` is not a string.
    #[error("QMP input member '{0}' must be a string")]
    NotAString(String),
    /// `arguments` is not an object.
    #[error("QMP input member 'arguments' must be an object")]
    ArgumentsNotAnObject,
    /// A member other than `execute`, `arguments` and `id` (`exec-oob` included).
    #[error("QMP input member '{0}' is unexpected")]
    Unexpected(String),
    /// No `execute` member.
    #[error("QMP input lacks member 'execute'")]
    LacksExecute,
}

impl Request {
    /// Checks the envelope. On error, the `id` (when the value was an object that had
    /// one) comes back with the error so that the reply can echo it.
    pub fn from_value(value: Value) -> Result<Request, (EnvelopeError, Option<Value>)> {
        let Value::Object(mut map) = value else {
            return Err((EnvelopeError::NotAnObject, None));
        };
        let id = map.remove("id");
        let mut execute = None;
        let mut arguments = None;
        for (key, value) in map {
            match (key.as_str(), value) {
                ("execute", Value::String(s)) => execute = Some(s),
                ("execute", _) => return Err((EnvelopeError::NotAString(key), id)),
                ("arguments", Value::Object(args)) => arguments = Some(args),
                ("arguments", _) => return Err((EnvelopeError::ArgumentsNotAnObject, id)),
                _ => return Err((EnvelopeError::Unexpected(key), id)),
            }
        }
        match execute {
            Some(execute) => Ok(Request {
                execute,
                arguments: arguments.unwrap_or_default(),
                id,
            }),
            None => Err((EnvelopeError::LacksExecute, id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> (String, Option<Value>) {
        let (e, id) = Request::from_value(v).unwrap_err();
        (e.to_string(), id)
    }

    #[test]
    fn envelope_errors() {
        assert_eq!(err(json!([1, 2])).0, "QMP input must be a JSON object");
        assert_eq!(err(json!({})).0, "QMP input lacks member 'execute'");
        assert_eq!(
            err(json!({"execute": 1})).0,
            "QMP input member 'execute' must be a string"
        );
        assert_eq!(
            err(json!({"execute":"guest-ping","extra":1})).0,
            "QMP input member 'extra' is unexpected"
        );
        assert_eq!(
            err(json!({"exec-oob":"guest-ping","id":9})),
            (
                "QMP input member 'exec-oob' is unexpected".into(),
                Some(json!(9))
            )
        );
        assert_eq!(
            err(json!({"execute":"guest-ping","arguments":null})).0,
            "QMP input member 'arguments' must be an object"
        );
    }

    #[test]
    fn accepts_any_id() {
        let r = Request::from_value(json!({"execute":"x","id":{"a":[1]}})).unwrap();
        assert_eq!(r.id, Some(json!({"a":[1]})));
        assert!(r.arguments.is_empty());
    }
}
