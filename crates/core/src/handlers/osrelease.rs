//! os-release parsing with qemu-ga's value rules: a value that starts with `"` is
//! unquoted up to the closing quote, with `\$ \' \" \\ \`` unescaped and any other
//! backslash kept; any other value (even a single-quoted one) is cut at the first space
//! or `;`. Keys and values are trimmed as a GLib key file trims them.

/// `KEY=value` pairs in file order; comments and malformed lines are skipped.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (key, raw) = line.split_once('=')?;
            Some((key.trim().to_string(), value(raw.trim())))
        })
        .collect()
}

fn value(raw: &str) -> String {
    let Some(quoted) = raw.strip_prefix('"') else {
        return raw.split([' ', ';']).next().unwrap_or("").to_string();
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some(e @ ('$' | '\'' | '"' | '\\' | '`')) => out.push(e),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_test_file() {
        let text = "ID=qemu-ga-test\nNAME=QEMU-GA\nPRETTY_NAME=\"QEMU Guest Agent test\"\nVERSION=\"Test 1\"\nVERSION_ID=1\nVARIANT=\"Unit test \\\"\\'\\$\\`\\\\ and \\\\\\\\ etc.\"\nVARIANT_ID=unit-test\n";
        let map: std::collections::HashMap<_, _> = parse_os_release(text).into_iter().collect();
        assert_eq!(map["ID"], "qemu-ga-test");
        assert_eq!(map["PRETTY_NAME"], "QEMU Guest Agent test");
        assert_eq!(map["VERSION"], "Test 1");
        assert_eq!(map["VARIANT"], "Unit test \"'$`\\ and \\\\ etc.");
        assert_eq!(map["VARIANT"].chars().count(), 27);
    }

    #[test]
    fn unquoted_values_are_cut() {
        let map = parse_os_release("# c\nNAME='Debian GNU'\nX=a;b\n");
        assert_eq!(
            map,
            vec![("NAME".into(), "'Debian".into()), ("X".into(), "a".into())]
        );
    }
}
