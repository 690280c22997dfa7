//! Messages out: one line each, strings made safe for vdsm's XML-RPC.

use serde_json::{Map, Value};

use crate::decoder::Message;
use crate::NAME_KEY;

/// Whether vdsm keeps `c` (what XML 1.0 allows, C1 controls but NEL excluded).
fn xml_allowed(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{a}' | '\u{d}'
        | '\u{20}'..='\u{7e}'
        | '\u{85}'
        | '\u{a0}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fffd}'
        | '\u{10000}'..='\u{10ffff}')
}

/// `s` with every character vdsm's XML filter rejects replaced by U+FFFD.
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| if xml_allowed(c) { c } else { '\u{fffd}' })
        .collect()
}

/// A JSON value with [`xml_safe`] applied to every string, keys included.
pub fn xml_safe_value(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(xml_safe(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(xml_safe_value).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (xml_safe(&k), xml_safe_value(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Appends `msg` to `out` as one line: `{"__name__": ..., args...}\n`.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    let mut obj = Map::new();
    obj.insert(NAME_KEY.to_string(), Value::String(xml_safe(&msg.name)));
    for (k, v) in &msg.args {
        if k != NAME_KEY {
            obj.insert(xml_safe(k), xml_safe_value(v.clone()));
        }
    }
    // Serialising a Value to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &Value::Object(obj));
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decoder;

    #[test]
    fn one_line_named_and_filtered() {
        let m = Message::new("host-name").arg("name", "vm\u{1}\u{7f}\u{85}\u{9f}é\n");
        let mut out = Vec::new();
        encode(&m, &mut out);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        assert!(out.ends_with(b"\n"));
        let mut d = Decoder::default();
        d.feed(&out);
        let back = d.next_message().unwrap().unwrap();
        assert_eq!(back.name, "host-name");
        assert_eq!(back.args["name"], "vm\u{fffd}\u{fffd}\u{85}\u{fffd}é\n");
    }

    #[test]
    fn nested_strings_and_keys_are_filtered() {
        let v =
            xml_safe_value(serde_json::json!({"a\u{0}": ["x\u{b}", {"k": "\u{fffe}"}], "n": 1}));
        assert_eq!(
            v,
            serde_json::json!({"a\u{fffd}": ["x\u{fffd}", {"k": "\u{fffd}"}], "n": 1})
        );
    }
}
