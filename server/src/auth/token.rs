//! Static tokens (`--publish-token`, `--subscribe-token`): compared in constant time and
//! never logged.
use std::fmt;
use std::net::IpAddr;

use crate::config::Secret;

/// The cookie that carries `--subscribe-token` (a browser's EventSource sends no headers).
pub(crate) const TOKEN_COOKIE: &str = "ssecast_token";

/// Why a publisher was refused (the reason never repeats a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// A token is configured and the request does not carry it.
    NoToken,
    /// No token is configured and the peer is not on loopback.
    NotLoopback,
}

impl AuthError {
    /// The HTTP status to answer.
    pub(crate) fn status(self) -> u16 {
        match self {
            AuthError::NoToken => 401,
            AuthError::NotLoopback => 403,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthError::NoToken => "a valid Authorization: Bearer token is required",
            AuthError::NotLoopback => {
                "publishing without --publish-token is allowed from loopback only"
            }
        })
    }
}

impl std::error::Error for AuthError {}

/// Who may publish: with a token, whoever presents it; without one, loopback peers only.
pub(crate) fn authorize_publisher(
    token: Option<&Secret>,
    authorization: Option<&str>,
    peer: IpAddr,
) -> Result<(), AuthError> {
    match token {
        Some(token) => match authorization.and_then(bearer) {
            Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => Ok(()),
            _ => Err(AuthError::NoToken),
        },
        None if peer.to_canonical().is_loopback() => Ok(()),
        None => Err(AuthError::NotLoopback),
    }
}

/// Whether a request whose `Authorization` and `Cookie` header values these are carries
/// `token` as a Bearer token or in the [`TOKEN_COOKIE`] cookie.
pub(crate) fn subscriber_has<'a>(
    authorization: impl Iterator<Item = &'a str>,
    cookies: impl Iterator<Item = &'a str>,
    token: &Secret,
) -> bool {
    let token = token.expose().as_bytes();
    let bearers = authorization.filter_map(bearer);
    let cookies = cookies
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='));
    // Every candidate is compared (no early exit), in the same time whatever it holds.
    bearers.chain(cookies).fold(false, |ok, given| {
        constant_time_eq(given.as_bytes(), token) | ok
    })
}

/// The token of an `Authorization: Bearer <token>` value.
pub(crate) fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares SHA-256 digests without an early exit, so the time taken reveals neither how
/// much of the token a guess got right nor the token's length.
pub(crate) fn constant_time_eq(given: &[u8], token: &[u8]) -> bool {
    let digest = |b: &[u8]| ring::digest::digest(&ring::digest::SHA256, b);
    let (given, token) = (digest(given), digest(token));
    let diff = (given.as_ref().iter())
        .zip(token.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_needs_the_token_or_a_loopback_peer() {
        let check = |token: Option<&str>, auth: Option<&str>, peer: &str, expected: Option<u16>| {
            let peer: IpAddr = peer.parse().unwrap();
            let token = token.map(|t| t.parse::<Secret>().unwrap());
            let got = authorize_publisher(token.as_ref(), auth, peer)
                .err()
                .map(|e| e.status());
            assert_eq!(got, expected, "{token:?} {auth:?} {peer}");
        };
        check(None, None, "127.0.0.1", None);
        check(None, None, "127.8.9.10", None);
        check(None, None, "::1", None);
        check(None, None, "::ffff:127.0.0.1", None);
        check(None, None, "10.0.0.7", Some(403));
        check(None, None, "::ffff:192.168.1.2", Some(403));
        check(None, None, "2001:db8::1", Some(403));
        check(None, Some("Bearer x"), "10.0.0.7", Some(403));
        check(Some("t0k"), Some("Bearer t0k"), "10.0.0.7", None);
        check(Some("t0k"), Some("Bearer t0k"), "127.0.0.1", None);
        check(Some("t0k"), None, "127.0.0.1", Some(401));
        check(Some("t0k"), Some("Bearer t0K"), "10.0.0.7", Some(401));
        check(Some("t0k"), Some("Bearer t0k0"), "10.0.0.7", Some(401));
        check(Some("t0k"), Some("Basic t0k"), "10.0.0.7", Some(401));
        check(Some("t0k"), Some("t0k"), "10.0.0.7", Some(401));
    }
}
