//! MIME types and X11 selection targets: which targets stand for which type.

/// The MIME type guestlink uses for text.
pub const TEXT: &str = "text/plain;charset=utf-8";

/// X11 targets that hold text, best first.
pub const TEXT_TARGETS: &[&str] = &[
    "UTF8_STRING",
    "text/plain;charset=utf-8",
    "text/plain",
    "STRING",
    "TEXT",
];

/// Targets that say something about the selection rather than hold it.
const META_TARGETS: &[&str] = &["TARGETS", "TIMESTAMP", "MULTIPLE", "SAVE_TARGETS", "DELETE"];

/// Whether a MIME type is text.
pub fn is_text(mime: &str) -> bool {
    mime == "text/plain" || mime.starts_with("text/plain;")
}

/// The MIME types a list of X11 targets offers: text once, as [`TEXT`], and every
/// target that is itself a MIME type.
pub fn types_of_targets<'a>(targets: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in targets {
        let mime = if TEXT_TARGETS.contains(&t) || is_text(t) {
            TEXT
        } else if META_TARGETS.contains(&t) || !t.contains('/') {
            continue;
        } else {
            t
        };
        if !out.iter().any(|m| m == mime) {
            out.push(mime.to_string());
        }
    }
    out
}

/// The targets to offer for contents of type `mime`.
pub fn targets_of_type(mime: &str) -> Vec<&str> {
    if is_text(mime) {
        TEXT_TARGETS.to_vec()
    } else {
        vec![mime]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_types() {
        assert_eq!(
            types_of_targets(["TARGETS", "UTF8_STRING", "STRING", "image/png", "TIMESTAMP"]),
            [TEXT, "image/png"]
        );
        assert!(types_of_targets(["TARGETS", "MULTIPLE"]).is_empty());
        assert_eq!(targets_of_type("text/plain"), TEXT_TARGETS);
        assert_eq!(targets_of_type("image/png"), ["image/png"]);
    }
}
