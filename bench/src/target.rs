//! The URLs the load generator may talk to: plain `http://` on loopback, IPv4 only (source
//! addresses are spread over 127.0.0.2, 127.0.0.3, ...).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A parsed `http://127.x.y.z:port/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Where to connect.
    pub(crate) addr: SocketAddrV4,
    /// The path and query, as sent in the request line.
    pub(crate) path: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetError(String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// Parses `url`, refusing anything but `http://` to an IPv4 loopback address (or
    /// `localhost`) with an explicit port.
    pub(crate) fn parse(url: &str) -> Result<Target, TargetError> {
        let fail = |why: &str| Err(TargetError(format!("{url:?}: {why}")));
        let Some(rest) = url.strip_prefix("http://") else {
            return fail("only http:// URLs are supported");
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, "/"),
        };
        let Some((host, port)) = authority.rsplit_once(':') else {
            return fail("the URL needs an explicit port");
        };
        let Ok(port) = port.parse::<u16>() else {
            return fail("bad port");
        };
        let ip = if host.eq_ignore_ascii_case("localhost") {
            Ipv4Addr::LOCALHOST
        } else {
            match host.parse::<Ipv4Addr>() {
                Ok(ip) => ip,
                Err(_) => return fail("the host must be an IPv4 address in 127.0.0.0/8"),
            }
        };
        // A load generator pointed elsewhere is a denial-of-service tool: loopback only.
        if !ip.is_loopback() {
            return fail("the load generator only targets loopback (127.0.0.0/8)");
        }
        Ok(Target {
            addr: SocketAddrV4::new(ip, port),
            path: path.to_owned(),
        })
    }

    /// The same host with another path (for the default publish URL).
    pub(crate) fn with_path(&self, path: &str) -> Target {
        Target {
            addr: self.addr,
            path: path.to_owned(),
        }
    }

    /// The path with `name=value` added to its query.
    pub(crate) fn with_query(&self, name: &str, value: &str) -> Target {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        Target {
            addr: self.addr,
            path: format!("{}{sep}{name}={value}", self.path),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.addr, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: Option<(&str, &str)>) {
        let got = Target::parse(url).ok();
        let got = got.as_ref().map(|t| (t.addr.to_string(), t.path.as_str()));
        let expected = expected.map(|(a, p)| (a.to_owned(), p));
        assert_eq!(got, expected, "{url}");
    }

    #[test]
    fn loopback_only() {
        check(
            "http://127.0.0.1:8080/events",
            Some(("127.0.0.1:8080", "/events")),
        );
        check(
            "http://127.9.8.7:1/sub?id=a",
            Some(("127.9.8.7:1", "/sub?id=a")),
        );
        check("http://localhost:80", Some(("127.0.0.1:80", "/")));
        check("http://10.0.0.1:8080/events", None);
        check("http://example.com:8080/events", None);
        check("http://[::1]:8080/events", None);
        check("https://127.0.0.1:8080/events", None);
        check("http://127.0.0.1/events", None);
        check("http://127.0.0.1:99999/events", None);
    }

    #[test]
    fn query() {
        let t = Target::parse("http://127.0.0.1:1/events").unwrap();
        assert_eq!(t.with_query("topic", "a").path, "/events?topic=a");
        assert_eq!(
            t.with_query("topic", "a").with_query("x", "1").path,
            "/events?topic=a&x=1"
        );
    }
}
