//! The optional live scope: which users streamed programs and shells may run as, and
//! where forwards may connect to and listen on, from a policy file's `[live]` table.
//!
//! ```toml
//! [live]
//! users = ["root", "admin"]                 # exec, stream-exec and shell run as these
//! forward-to = ["localhost:80", "127.0.0.1:*", "/run/app.sock"]
//! forward-listen = ["127.0.0.1:*"]
//! ```
//!
//! A list that is absent allows everything, as the rest of the gate does when nothing
//! refuses; an empty list allows nothing. A destination is `HOST:PORT` (`*` for any
//! port, `*:*` for anything) or an absolute socket path, compared as written: a name
//! is not resolved, so `localhost:80` does not allow `127.0.0.1:80`.

/// Where the live channel may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveScope {
    /// Users programs may run as; every user when `None`.
    pub users: Option<Vec<String>>,
    /// Where a forward may connect; anywhere when `None`.
    pub forward_to: Option<Vec<String>>,
    /// Where a reverse forward may listen; anywhere when `None`.
    pub forward_listen: Option<Vec<String>>,
}

/// A destination as the scope compares it: `host:port` or a path.
pub fn destination(host: Option<&str>, port: Option<i64>, path: Option<&str>) -> String {
    match path {
        Some(p) => p.to_string(),
        None => format!("{}:{}", host.unwrap_or("localhost"), port.unwrap_or(0)),
    }
}

fn matches(pattern: &str, dest: &str) -> bool {
    if pattern == dest || pattern == "*:*" {
        return true;
    }
    match (pattern.rsplit_once(':'), dest.rsplit_once(':')) {
        (Some((ph, pp)), Some((dh, dp))) if !pattern.starts_with('/') => {
            (ph == "*" || ph.eq_ignore_ascii_case(dh)) && (pp == "*" || pp == dp)
        }
        _ => false,
    }
}

fn check(list: &Option<Vec<String>>, what: &str, item: &str, key: &str) -> Result<(), String> {
    match list {
        None => Ok(()),
        Some(l) if l.iter().any(|p| matches(p, item)) => Ok(()),
        Some(l) => Err(format!(
            "{what} '{item}' is not allowed by the policy ([live] {key} = {l:?})"
        )),
    }
}

impl LiveScope {
    /// Whether a program may run as `user`.
    pub fn check_user(&self, user: &str) -> Result<(), String> {
        match &self.users {
            Some(l) if !l.iter().any(|u| u == user) => Err(format!(
                "running as '{user}' is not allowed by the policy ([live] users = {l:?})"
            )),
            _ => Ok(()),
        }
    }

    /// Whether a forward may connect to `dest`.
    pub fn check_connect(&self, dest: &str) -> Result<(), String> {
        check(&self.forward_to, "forwarding to", dest, "forward-to")
    }

    /// Whether a reverse forward may listen on `dest`.
    pub fn check_listen(&self, dest: &str) -> Result<(), String> {
        check(&self.forward_listen, "listening on", dest, "forward-listen")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_lists_allow_everything_and_empty_ones_nothing() {
        let open = LiveScope::default();
        assert!(open.check_user("alice").is_ok());
        assert!(open.check_connect("example.org:22").is_ok());
        let closed = LiveScope {
            users: Some(vec![]),
            forward_to: Some(vec![]),
            forward_listen: Some(vec![]),
        };
        assert!(closed.check_user("root").is_err());
        assert!(closed.check_connect("localhost:80").is_err());
        assert!(closed.check_listen("localhost:80").is_err());
    }

    #[test]
    fn destinations_match_by_host_and_port_with_wildcards() {
        let s = LiveScope {
            forward_to: Some(vec![
                "localhost:80".into(),
                "127.0.0.1:*".into(),
                "/run/a.sock".into(),
            ]),
            ..LiveScope::default()
        };
        assert!(s.check_connect(&destination(None, Some(80), None)).is_ok());
        assert!(s.check_connect("LOCALHOST:80").is_ok());
        assert!(s.check_connect("127.0.0.1:9999").is_ok());
        assert!(s.check_connect("/run/a.sock").is_ok());
        let e = s.check_connect("10.0.0.1:80").unwrap_err();
        assert!(e.contains("'10.0.0.1:80' is not allowed"), "{e}");
        assert!(s.check_connect("/run/b.sock").is_err());
        assert!(s.check_connect("localhost:81").is_err());
    }
}
