//! The protocol reference (`docs/protocol.md`): every command, event and type of the
//! vocabulary in Markdown, rendered from the same declarations as the JSON schema, so
//! that it cannot drift from what the agent does (a test compares the checked-in file).

use serde_json::{Map, Value};

use crate::commands::schema_document;

fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return format!("[`{name}`](#{})", name.to_lowercase());
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let v: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", v.as_str().unwrap_or("?")))
            .collect();
        return v.join(" \\| ");
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let v: Vec<String> = any.iter().map(type_of).collect();
        return v.join(" or ");
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            format!("{}[]", schema.get("items").map_or("any".into(), type_of))
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            let v: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            v.join(" or ")
        }
        _ => "any".into(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A table of an object schema's fields.
fn fields(out: &mut String, schema: &Value) {
    let props = schema.get("properties").and_then(Value::as_object);
    let Some(props) = props.filter(|p| !p.is_empty()) else {
        out.push_str("None.\n\n");
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| name | type | | description |\n|---|---|---|---|\n");
    for (name, p) in props {
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} |\n",
            type_of(p),
            if required.contains(&name.as_str()) {
                "required"
            } else {
                "optional"
            },
            one_line(p.get("description").and_then(Value::as_str).unwrap_or(""))
        ));
    }
    out.push('\n');
}

fn arguments<'a>(defs: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| defs.get(r.trim_start_matches("#/$defs/")))
        .unwrap_or(schema)
}

/// The reference in Markdown.
pub fn markdown() -> String {
    let doc = schema_document("");
    let empty = Map::new();
    let defs = doc["$defs"].as_object().unwrap_or(&empty);
    let mut out = String::from(
        "# guestlink protocol reference\n\n\
         Generated from the command vocabulary (`crates/vocabulary`) by\n\
         `guestlink schema --markdown`; a test keeps this file current. QGA commands keep\n\
         qemu-ga's names and types; guestlink's own are prefixed `__org.guestlink_`.\n\
         Scope says who may call a command: `host` (the QGA, SPICE and oVirt channels),\n\
         `guest` (programs on the guest socket) or `both`.\n\n",
    );
    let commands = doc["commands"].as_object().unwrap_or(&empty);
    for (title, extension) in [("QGA commands", false), ("guestlink extensions", true)] {
        out.push_str(&format!("## {title}\n\n"));
        for (name, c) in commands {
            if name.starts_with("__") != extension {
                continue;
            }
            let platforms: Vec<&str> = c["platforms"]
                .as_array()
                .map(|p| p.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push_str(&format!(
                "### `{name}`\n\n{}\n\nSince {}; scope {}; {}{}.\n\nArguments:\n\n",
                one_line(c["description"].as_str().unwrap_or("")),
                c["since"].as_str().unwrap_or("?"),
                c["scope"].as_str().unwrap_or("?"),
                platforms.join(", "),
                if c["success-response"] == false {
                    "; no reply on success"
                } else {
                    ""
                },
            ));
            fields(&mut out, arguments(defs, &c["arguments"]));
            out.push_str(&format!("Returns: {}\n\n", type_of(&c["returns"])));
            if let Some(gates) = c["gated-as"].as_array() {
                let gates: Vec<String> = gates
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|g| format!("`{g}`"))
                    .collect();
                out.push_str(&format!(
                    "Gated as: {} too; a policy or `-b` that refuses it refuses this command.\n\n",
                    gates.join(", ")
                ));
            }
        }
    }
    out.push_str("## Events\n\n");
    for (name, e) in doc["events"].as_object().unwrap_or(&empty) {
        out.push_str(&format!(
            "### `{name}`\n\n{}\n\nData: {}\n\n",
            one_line(e["description"].as_str().unwrap_or("")),
            type_of(&e["data"])
        ));
    }
    out.push_str("## Types\n\n");
    for (name, t) in defs {
        if name.starts_with("q_obj_") {
            continue;
        }
        out.push_str(&format!(
            "### {name}\n\n{}\n\n",
            one_line(t.get("description").and_then(Value::as_str).unwrap_or(""))
        ));
        if t.get("properties").is_some() {
            fields(&mut out, t);
        } else {
            out.push_str(&format!("{}\n\n", type_of(t)));
        }
    }
    out
}
