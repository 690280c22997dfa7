//! Type descriptions of arguments and results, and their rendering as JSON Schema.

use serde_json::{json, Map, Value};

/// The shape of a value, in QAPI's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeDesc {
    /// A signed 64-bit integer (`int`).
    Int,
    /// An unsigned 64-bit integer (`uint64`).
    UInt64,
    /// A double (`number`).
    Number,
    /// A string (`str`).
    Str,
    /// A boolean (`bool`).
    Bool,
    /// A string from a fixed set.
    Enum {
        /// QAPI type name.
        name: &'static str,
        /// Accepted values.
        values: &'static [&'static str],
    },
    /// A list of one element type.
    List(Box<TypeDesc>),
    /// An object with declared members.
    Struct {
        /// QAPI type name.
        name: &'static str,
        /// Description.
        doc: &'static str,
        /// Members in declaration (and validation) order.
        members: Vec<MemberDesc>,
    },
    /// Any JSON value (a forwarded request's arguments or answer).
    Any,
    /// A value that may take one of several shapes.
    Alternate {
        /// QAPI type name.
        name: &'static str,
        /// The possible shapes.
        branches: Vec<TypeDesc>,
    },
}

/// One member of a struct.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDesc {
    /// Wire name.
    pub name: &'static str,
    /// Whether the member may be absent.
    pub optional: bool,
    /// Its type.
    pub ty: TypeDesc,
    /// Description.
    pub doc: &'static str,
}

/// Types that can describe themselves.
pub trait Schema {
    /// The description of this type.
    fn schema() -> TypeDesc;
}

macro_rules! leaf_schema {
    ($($t:ty => $d:expr),*) => {$(
        impl Schema for $t {
            fn schema() -> TypeDesc { $d }
        }
    )*};
}
leaf_schema!(i64 => TypeDesc::Int, u64 => TypeDesc::UInt64, f64 => TypeDesc::Number,
    String => TypeDesc::Str, bool => TypeDesc::Bool);

impl Schema for Value {
    fn schema() -> TypeDesc {
        TypeDesc::Any
    }
}

impl<T: Schema> Schema for Vec<T> {
    fn schema() -> TypeDesc {
        TypeDesc::List(Box::new(T::schema()))
    }
}

impl TypeDesc {
    /// The JSON Schema of this type; named types are added to `defs` and referenced.
    pub fn to_json_schema(&self, defs: &mut Map<String, Value>) -> Value {
        match self {
            TypeDesc::Int => json!({"type": "integer", "format": "int64"}),
            TypeDesc::UInt64 => json!({"type": "integer", "format": "uint64"}),
            TypeDesc::Number => json!({"type": "number"}),
            TypeDesc::Str => json!({"type": "string"}),
            TypeDesc::Bool => json!({"type": "boolean"}),
            TypeDesc::Any => json!({}),
            TypeDesc::List(item) => json!({"type": "array", "items": item.to_json_schema(defs)}),
            TypeDesc::Enum { name, values } => {
                defs.insert(name.to_string(), json!({"type": "string", "enum": values}));
                json!({"$ref": format!("#/$defs/{name}")})
            }
            TypeDesc::Alternate { name, branches } => {
                let one_of: Vec<Value> = branches.iter().map(|b| b.to_json_schema(defs)).collect();
                defs.insert(name.to_string(), json!({"oneOf": one_of}));
                json!({"$ref": format!("#/$defs/{name}")})
            }
            TypeDesc::Struct { name, doc, members } => {
                if !defs.contains_key(*name) {
                    // Insert first so that recursive types terminate.
                    defs.insert(name.to_string(), Value::Null);
                    let mut props = Map::new();
                    let mut required = Vec::new();
                    for m in members {
                        let mut s = m.ty.to_json_schema(defs);
                        if !m.doc.is_empty() {
                            s["description"] = json!(m.doc.trim());
                        }
                        props.insert(m.name.to_string(), s);
                        if !m.optional {
                            required.push(m.name);
                        }
                    }
                    let mut def = json!({
                        "type": "object",
                        "properties": props,
                        "required": required,
                        "additionalProperties": false,
                    });
                    if !doc.is_empty() {
                        def["description"] = json!(doc.trim());
                    }
                    defs.insert(name.to_string(), def);
                }
                json!({"$ref": format!("#/$defs/{name}")})
            }
        }
    }
}
