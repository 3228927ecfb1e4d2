//! Where a request's token is: the `Authorization: Bearer` header, the `authorization`
//! query parameter (draft-07 only) or a cookie, in the order each draft requires.

// Built for the Mercure routes, which the lead wires; until then not everything is called.
#![allow(dead_code)]

use super::error::TokenError;
use super::jwt::Draft;

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `Authorization: Bearer`.
    Header,
    /// The `authorization` query parameter (draft-07 only).
    Query,
    /// A cookie: a publish authenticated this way must pass the CSRF check (`Origin` or
    /// `Referer` against `--cors-origin`).
    Cookie,
}

/// A token and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found<'a> {
    pub(crate) token: &'a str,
    pub(crate) source: Source,
}

/// What a request presents, as the HTTP layer hands it over.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Presented<'a> {
    /// The draft the request's parameters speak (`topic=` or `match*=`), `None` when they do
    /// not tell (a publish, whose form is the same in both): the token decides then.
    pub(crate) draft: Option<Draft>,
    /// The `Authorization` header. A request with several is the HTTP layer's to refuse.
    pub(crate) authorization: Option<&'a str>,
    /// The `authorization` query parameter (pass `access_token` here too when present: both
    /// are a token in the URL, refused for draft-08).
    pub(crate) query: Option<&'a str>,
    /// Every `Cookie` header (HTTP/2 may split cookies over several).
    pub(crate) cookies: &'a [&'a str],
    /// The `Origin` header: with no cookie it means a cross-site browser request whose
    /// cookie was withheld, and the 401 says so.
    pub(crate) origin: Option<&'a str>,
}

/// [`JwtVerifier::find_token`](super::jwt::JwtVerifier::find_token), with the cookie names
/// spelled out.
pub(crate) fn find_token<'a>(
    draft: Option<Draft>,
    authorization: Option<&'a str>,
    query: Option<&'a str>,
    cookies: &[&'a str],
    cookie_names: &[&str],
) -> Result<Option<Found<'a>>, TokenError> {
    let query = query.filter(|q| !q.is_empty());
    if draft == Some(Draft::V08) && query.is_some() {
        return Err(TokenError::InUrl);
    }
    if let Some(value) = authorization {
        if let Some(token) = bearer(value)? {
            return Ok(Some(Found {
                token,
                source: Source::Header,
            }));
        }
    }
    if let Some(token) = query {
        return Ok(Some(Found {
            token,
            source: Source::Query,
        }));
    }
    Ok(cookie_names
        .iter()
        .find_map(|name| cookie(cookies, name))
        .map(|token| Found {
            token,
            source: Source::Cookie,
        }))
}

/// The token of an `Authorization` value with the `Bearer` scheme (RFC 6750, the scheme
/// case-insensitive); `None` for another scheme, which is not ours to read.
fn bearer(value: &str) -> Result<Option<&str>, TokenError> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim_matches([' ', '\t']);
    if token.is_empty() || token.contains([' ', '\t']) {
        return Err(TokenError::BadPresentation);
    }
    Ok(Some(token))
}

/// The first non-empty value of cookie `name` in `Cookie` header values (RFC 6265:
/// `name=value` pairs split by `;`, spaces around them and a pair of double quotes around
/// the value are not part of it). Names are case-sensitive.
pub(crate) fn cookie<'a>(headers: &[&'a str], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            if n.trim_matches([' ', '\t']) != name {
                return None;
            }
            let v = v.trim_matches([' ', '\t']);
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (!v.is_empty()).then_some(v)
        })
        .next()
}
