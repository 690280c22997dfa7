//! The part of TOML policy files use, read into JSON values with line numbers: comments,
//! `[table]` and `[[array-of-tables]]` headers with bare names, `key = value` with bare
//! keys, basic (`"..."`, with escapes) and literal (`'...'`) strings, integers, booleans
//! and arrays of those (over several lines, with trailing commas and comments).
//! Anything else in a policy file is an error with its line. A parser of its own
//! instead of the `toml` crate: the policy needs only this, and guestlinkd's size
//! budget counts every crate it links (docs/architecture.md).

use serde_json::{Map, Value};

/// One table of a file: its header, and its keys with the line each is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The header's name; empty for the keys before any header.
    pub name: String,
    /// `[[name]]`, an element of an array of tables.
    pub array: bool,
    /// The header's line (1 for the top).
    pub line: usize,
    /// The keys in order, with their lines.
    pub keys: Vec<(String, usize, Value)>,
}

impl Table {
    /// The keys as a JSON object.
    pub fn object(&self) -> Value {
        Value::Object(
            self.keys
                .iter()
                .map(|(k, _, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>(),
        )
    }

    /// The line of key `key`, else the header's.
    pub fn line_of(&self, key: &str) -> usize {
        self.keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map_or(self.line, |(_, l, _)| *l)
    }
}

/// A syntax error: its line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
    line: usize,
}

type R<T> = Result<T, SyntaxError>;

impl Cursor<'_> {
    fn err<T>(&self, message: impl Into<String>) -> R<T> {
        Err(SyntaxError {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Spaces and tabs.
    fn blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// Blanks, a comment, and the end of the line (or of the file).
    fn end_of_line(&mut self) -> R<()> {
        self.blank();
        if self.peek() == Some(b'#') {
            while !matches!(self.peek(), None | Some(b'\n')) {
                self.at += 1;
            }
        }
        if self.peek() == Some(b'\r') {
            self.at += 1;
        }
        match self.bump() {
            None | Some(b'\n') => Ok(()),
            Some(c) => self.err(format!(
                "expected the end of the line, found '{}'",
                c as char
            )),
        }
    }

    /// Blanks, comments and newlines (inside arrays).
    fn space(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                }
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.at += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn bare(&mut self) -> R<String> {
        let start = self.at;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            self.at += 1;
        }
        if start == self.at {
            return self.err("expected a key (letters, digits, '-' and '_')");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn value(&mut self) -> R<Value> {
        match self.peek() {
            Some(b'"') => self.basic().map(Value::String),
            Some(b'\'') => self.literal().map(Value::String),
            Some(b'[') => self.array(),
            Some(b't' | b'f') => {
                let word = self.bare()?;
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => self.err(format!("invalid value '{word}'")),
                }
            }
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => {
                let start = self.at;
                self.at += 1;
                while matches!(self.peek(), Some(c) if c.is_ascii_digit() || c == b'_') {
                    self.at += 1;
                }
                let text: String =
                    String::from_utf8_lossy(&self.s[start..self.at]).replace('_', "");
                match text.parse::<i64>() {
                    Ok(n) => Ok(Value::from(n)),
                    Err(_) => self.err(format!("invalid integer '{text}'")),
                }
            }
            None | Some(b'\n' | b'\r' | b'#') => self.err("expected a value"),
            Some(c) => self.err(format!("invalid value starting with '{}'", c as char)),
        }
    }

    fn basic(&mut self) -> R<String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return self.err("unterminated string"),
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    self.at += 1;
                    let c = self.peek();
                    self.at += 1;
                    match c {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'n') => out.push(b'\n'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b'b') => out.push(8),
                        Some(b'f') => out.push(12),
                        Some(u @ (b'u' | b'U')) => {
                            let n = if u == b'u' { 4 } else { 8 };
                            let hex = self
                                .s
                                .get(self.at..self.at + n)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32);
                            let Some(ch) = hex else {
                                return self.err("invalid unicode escape");
                            };
                            self.at += n;
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        _ => return self.err("invalid escape in a string"),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
        String::from_utf8(out).or_else(|_| self.err("a string is not UTF-8"))
    }

    fn literal(&mut self) -> R<String> {
        self.at += 1;
        let start = self.at;
        loop {
            match self.peek() {
                None | Some(b'\n') => return self.err("unterminated string"),
                Some(b'\'') => break,
                Some(_) => self.at += 1,
            }
        }
        let text = String::from_utf8(self.s[start..self.at].to_vec());
        self.at += 1;
        text.or_else(|_| self.err("a string is not UTF-8"))
    }

    fn array(&mut self) -> R<Value> {
        let opened = self.line;
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.space();
            match self.peek() {
                None => {
                    return Err(SyntaxError {
                        line: opened,
                        message: "unterminated array".into(),
                    })
                }
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => {}
            }
            items.push(self.value()?);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {}
                None => {
                    return Err(SyntaxError {
                        line: opened,
                        message: "unterminated array".into(),
                    })
                }
                Some(c) => {
                    return self.err(format!(
                        "expected ',' or ']' in an array, found '{}'",
                        c as char
                    ))
                }
            }
        }
    }
}

/// Reads a policy file's tables, the keys before any header first (as table "").
pub fn parse(text: &str) -> Result<Vec<Table>, SyntaxError> {
    let mut c = Cursor {
        s: text.as_bytes(),
        at: 0,
        line: 1,
    };
    let mut tables = vec![Table {
        name: String::new(),
        array: false,
        line: 1,
        keys: Vec::new(),
    }];
    loop {
        c.space();
        let Some(first) = c.peek() else {
            return Ok(tables);
        };
        let line = c.line;
        if first == b'[' {
            c.at += 1;
            let array = c.peek() == Some(b'[');
            if array {
                c.at += 1;
            }
            c.blank();
            let name = c.bare()?;
            c.blank();
            let close: &[u8] = if array { b"]]" } else { b"]" };
            if !c.s[c.at..].starts_with(close) {
                return c.err(format!(
                    "expected '{}' after the table name",
                    String::from_utf8_lossy(close)
                ));
            }
            c.at += close.len();
            c.end_of_line()?;
            if !array && tables.iter().any(|t| t.name == name) {
                return Err(SyntaxError {
                    line,
                    message: format!("duplicate table [{name}]"),
                });
            }
            tables.push(Table {
                name,
                array,
                line,
                keys: Vec::new(),
            });
            continue;
        }
        let key = c.bare()?;
        c.blank();
        if c.bump() != Some(b'=') {
            return Err(SyntaxError {
                line,
                message: format!("expected '=' after the key '{key}'"),
            });
        }
        c.blank();
        let value = c.value()?;
        c.end_of_line()?;
        let table = tables.last_mut().expect("the top table is always there");
        if table.keys.iter().any(|(k, _, _)| *k == key) {
            return Err(SyntaxError {
                line,
                message: format!("duplicate key '{key}'"),
            });
        }
        table.keys.push((key, line, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_policy_files_use() {
        let text = "# comment\ntop = 'x'\n\n[[rule]]\ndeny = [\"guest-exec\", # c\n  \"guest-file-*\",\n]\nusers = [1000, \"alice\"]\nreason = \"a \\\"b\\\" \\u00e9\"  # trailing\n\n[files]\nread = []\n[[rule]]\nallow=['*']\nflag = true\n";
        let t = parse(text).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].object(), json!({"top": "x"}));
        assert_eq!(
            (t[1].name.as_str(), t[1].array, t[1].line),
            ("rule", true, 4)
        );
        assert_eq!(
            t[1].object(),
            json!({"deny": ["guest-exec", "guest-file-*"], "users": [1000, "alice"], "reason": "a \"b\" é"})
        );
        assert_eq!(t[1].line_of("users"), 8);
        assert_eq!(t[1].line_of("reason"), 9);
        assert_eq!(
            (t[2].name.as_str(), t[2].array, t[2].line),
            ("files", false, 11)
        );
        assert_eq!(t[3].object(), json!({"allow": ["*"], "flag": true}));
    }

    #[test]
    fn errors_have_lines() {
        for (text, line, what) in [
            ("[[rule]]\ndeny = \"guest-ping\n", 2, "unterminated string"),
            ("[[rule]]\ndeny = [\"a\",\n\"b\"\n", 2, "unterminated array"),
            ("a = 1\na = 2\n", 2, "duplicate key 'a'"),
            ("[files]\n[files]\n", 2, "duplicate table"),
            ("[rule\n", 1, "expected ']'"),
            ("x = 1 2\n", 1, "end of the line"),
            ("x =\n", 1, "expected a value"),
            ("x = nope\n", 1, "invalid value"),
            ("x = [1 2]\n", 1, "expected ',' or ']'"),
            ("\"q\" = 1\n", 1, "expected a key"),
            ("x = \"\\q\"\n", 1, "invalid escape"),
            ("x = 99999999999999999999\n", 1, "invalid integer"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(what), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn the_shipped_policies_parse() {
        for text in [
            include_str!("../../../../dist/policy.d/50-default.toml"),
            include_str!("../../../../dist/examples/policy.d/55-no-exec.toml"),
        ] {
            let t = parse(text).unwrap();
            assert!(t.iter().any(|t| t.name == "rule"));
        }
    }
}
