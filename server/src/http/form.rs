//! `application/x-www-form-urlencoded`: the format of query strings and of form bodies
//! (WHATWG URL, "application/x-www-form-urlencoded parsing"): `&`-separated `name=value`
//! pairs, `+` for a space, percent-encoded bytes. Unlike the WHATWG parser, which replaces
//! invalid UTF-8 with U+FFFD (so `%ff` and `%fe` would become the same topic), a pair whose
//! decoded bytes are not UTF-8 is an error.

use std::borrow::Cow;
use std::fmt;

/// A pair that does not decode to UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormError {
    /// The parameter's name as far as it decodes (lossily, for the message only).
    name: String,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parameter {:?} is not valid UTF-8 once percent-decoded",
            self.name
        )
    }
}

impl std::error::Error for FormError {}

/// The pairs of `input` in order, decoded; empty pieces (`a&&b`) are skipped, a piece
/// without `=` has an empty value.
pub(crate) fn pairs(
    input: &[u8],
) -> impl Iterator<Item = Result<(Cow<'_, str>, Cow<'_, str>), FormError>> {
    input
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match memchr::memchr(b'=', piece) {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &piece[piece.len()..]),
            };
            let error = || FormError {
                name: String::from_utf8_lossy(&decode_bytes(name)).into_owned(),
            };
            let name = decode(name).ok_or_else(error)?;
            let value = decode(value).ok_or_else(error)?;
            Ok((name, value))
        })
}

/// `bytes` decoded, borrowed when nothing needed decoding; `None` if not UTF-8.
fn decode(bytes: &[u8]) -> Option<Cow<'_, str>> {
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return std::str::from_utf8(bytes).ok().map(Cow::Borrowed);
    }
    String::from_utf8(decode_bytes(bytes)).ok().map(Cow::Owned)
}

fn decode_bytes(bytes: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<Vec<(&str, &str)>, ()>) {
        let got: Result<Vec<(String, String)>, FormError> = pairs(input.as_bytes())
            .map(|p| p.map(|(n, v)| (n.into_owned(), v.into_owned())))
            .collect();
        let got = got.map_err(|_| ());
        let expected = expected.map(|v| {
            v.into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        });
        assert_eq!(got, expected, "{input:?}");
    }

    #[test]
    fn pairs_decode_or_are_refused() {
        check("", Ok(vec![]));
        check("topic=a&topic=b", Ok(vec![("topic", "a"), ("topic", "b")]));
        check("a=1&&b", Ok(vec![("a", "1"), ("b", "")]));
        check("a=x+y%20z", Ok(vec![("a", "x y z")]));
        check("a=%2B%26%3D", Ok(vec![("a", "+&=")]));
        check("t=caf%C3%A9", Ok(vec![("t", "caf\u{e9}")]));
        check("a=b=c", Ok(vec![("a", "b=c")]));
        check("a=%zz", Ok(vec![("a", "%zz")]));
        check("t=%ff", Err(()));
        check("t=%fe", Err(()));
        check("%ff=1", Err(()));
        check("t=%C3", Err(()));
    }

    #[test]
    fn the_error_names_the_parameter() {
        let e = pairs(b"topic=%ff").next().unwrap().unwrap_err();
        assert_eq!(
            e.to_string(),
            "parameter \"topic\" is not valid UTF-8 once percent-decoded"
        );
    }
}
