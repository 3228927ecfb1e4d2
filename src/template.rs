//! RFC 6570 URI Templates, read backwards: does a string match a template?
//!
//! The rules, and where they are lenient or strict, are documented on [`UriTemplate`], where
//! users of the crate see them.

use std::fmt;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use regex::{Regex, RegexBuilder};

/// A compiled RFC 6570 URI Template, matched against candidate strings: is a string a
/// possible expansion of the template?
///
/// Mercure 0.x (draft-07, "Topic Selectors") says a string matches a selector that is a URI
/// Template when the string is a possible expansion of the template for some values of its
/// variables. [`UriTemplate::parse`] compiles a template once into an anchored regular
/// expression of the `regex` crate, which runs without backtracking, in time linear in the
/// candidate; [`UriTemplate::matches`] runs it. The selector rules around it (`*`, exact
/// equality first, a selector that is not a template) are the caller's.
///
/// # What each expression may expand to
///
/// Every level of RFC 6570 (levels 1 to 4) is read: the eight operators, variable lists,
/// prefix (`:n`) and explode (`*`) modifiers. Following the table of appendix A, an
/// expression `{op v1,v2,...}` expands to nothing when every variable is undefined, and
/// otherwise to the operator's `first` string followed by the expansions of the defined
/// variables (any non-empty subsequence of them, in order) joined by its separator. Each
/// variable may be a string, a list or an associative array, so its expansion is the union
/// of what the three can give:
///
/// | operator | first | sep | named | if empty | raw characters allowed        |
/// |----------|-------|-----|-------|----------|-------------------------------|
/// | none     |       | `,` | no    |          | unreserved                    |
/// | `+`      |       | `,` | no    |          | unreserved, reserved, `%XX`   |
/// | `#`      | `#`   | `,` | no    |          | unreserved, reserved, `%XX`   |
/// | `.`      | `.`   | `.` | no    |          | unreserved                    |
/// | `/`      | `/`   | `/` | no    |          | unreserved                    |
/// | `;`      | `;`   | `;` | yes   |          | unreserved                    |
/// | `?`      | `?`   | `&` | yes   | `=`      | unreserved                    |
/// | `&`      | `&`   | `&` | yes   | `=`      | unreserved                    |
///
/// Any other character of a value is percent-encoded, so it shows as `%XX` triplets; a list
/// joins its items with `,` (with the separator when exploded); an associative array gives
/// `key,value,...` (`key=value` joined by the separator when exploded, the key then standing
/// for the variable's name in named operators). A prefix applies to strings only (section
/// 2.4.1), so a prefixed variable is matched as a string of at most `n` characters.
/// Literals outside expressions match themselves.
///
/// # Where this is lenient, and where strict
///
/// Exactness here means: every real expansion matches (tested by a property test that expands
/// random templates with random values and matches the results). A few strings that no
/// expansion can produce match too, each for a stated reason:
///
/// - **IRIs.** Expansion percent-encodes every non-ASCII character, so strictly
///   `/books/{id}` could never match `/books/café`. Mercure topics are IRIs, and an IRI
///   stands for the URI that percent-encodes its non-ASCII characters (RFC 3987 §3.1), so a
///   raw non-ASCII character matches wherever its percent-encoded form would, and a
///   non-ASCII literal of the template matches itself or its UTF-8 percent-encoding (in
///   either case). Raw, a candidate may hold any character from U+00A0 up: that is RFC
///   3987's `ucschar` and `iprivate` plus the non-characters and tags they leave out
///   (U+FDD0 to U+FDEF, U+FFF0 to U+FFFF, the last two of each plane, U+E0000 to U+E0FFF),
///   whose exclusion would make every compiled character class four times larger. A
///   template's own literals are held to the exact ranges.
/// - **Percent-encoding.** `{id}` matches `a%2Fb` (the expansion of `a/b`). Any `%XX`
///   triplet is taken as an encoded character where one is allowed, in either case of hex
///   digit (equivalent by RFC 3986 §2.1); whether the octets form UTF-8, or whether `%41`
///   would ever come out of an encoder (it would not: `A` is unreserved) is not checked.
///   A `%` that does not start a triplet never matches, and a reserved character never
///   matches raw in an operator that encodes it (`{id}` does not match `a/b`).
/// - **Prefix lengths** count characters of the value before encoding (section 2.4.1):
///   `{var:1}` matches `%C3%A9` (`é`). A triplet and the continuation triplets (`%80` to
///   `%BF`) after it may count as one character. A prefix `:n` above
///   [`UriTemplate::MAX_COUNTED_PREFIX`] is compiled as no limit, because counting costs the
///   compiled matcher one copy of a character per unit of `n`: every character expands to at
///   least one byte, so this is still exact for candidates of at most `n` bytes.
/// - **A variable used twice** (`{x}/{x}`) is matched as two independent variables: that
///   both take the same value is not a regular language (it needs a back-reference), so no
///   linear-time matcher can check it.
/// - **Associative arrays** may have empty keys.
///
/// The template itself is parsed strictly: a `{` without its `}`, a `}` outside an
/// expression, an empty or malformed variable name, an operator reserved for future use
/// (`=`, `,`, `!`, `@`, `|`), a prefix outside 1..=9999 or with a leading zero, a literal
/// character RFC 6570 does not allow (space, `"`, `<`, `>`, `\`, `^`, `` ` ``, `|`, a `%` not
/// followed by two hex digits, controls, non-characters) are [`TemplateError`]s. `'` is
/// allowed in literals, per the verified erratum 6937 to section 2.1.
///
/// # Cost
///
/// Matching is one pass of `regex`'s lazy DFA over the candidate: linear time, whatever the
/// template and the candidate (the crate guarantees it; no test times it). A template is at
/// most [`UriTemplate::MAX_LEN`] bytes with at most [`UriTemplate::MAX_EXPRESSIONS`]
/// expressions and [`UriTemplate::MAX_VARIABLES`] variables, and its compiled form at most
/// [`UriTemplate::MAX_COMPILED`] bytes: past these, parsing fails rather than build something
/// huge. The compiled size is linear in the template (an expression's "any subsequence of
/// its variables" is written in linear form): as `regex` counts it against that limit,
/// `https://example.com/books/{id}` takes 2.5 KB, `/search{?q,lang,page,sort}` 13 KB, each
/// counted prefix character 1.8 KB (`{a:64}` 114 KB), a query of 64 variables 220 KB. On the
/// heap, a compiled `https://example.com/books/{id}` takes about 9 KB, and 16 KB once its
/// lazy DFA cache has served a match (the cache grows with use, up to 256 KiB).
///
/// Cloning is cheap (a reference count). Two templates are equal when their source texts
/// are.
///
/// # Example
///
/// ```
/// use ssecast::UriTemplate;
///
/// let books = UriTemplate::parse("https://example.com/books/{id}").unwrap();
/// assert!(books.matches("https://example.com/books/1"));
/// assert!(books.matches("https://example.com/books/a%2Fb")); // the expansion of `a/b`
/// assert!(!books.matches("https://example.com/books/1/reviews"));
///
/// let rest = UriTemplate::parse("/users/{user}/{+rest}").unwrap();
/// assert!(rest.matches("/users/a/b/c"));
/// ```
#[derive(Clone)]
pub struct UriTemplate {
    inner: Arc<Compiled>,
}

struct Compiled {
    source: Box<str>,
    regex: Regex,
}

impl UriTemplate {
    /// The longest template accepted, in bytes.
    pub const MAX_LEN: usize = 4096;
    /// The most expressions (`{...}`) a template may have.
    pub const MAX_EXPRESSIONS: usize = 64;
    /// The most variables a template may have, in all its expressions.
    pub const MAX_VARIABLES: usize = 64;
    /// The most bytes the compiled matcher (`regex`'s NFA) may take.
    pub const MAX_COMPILED: usize = 1 << 20;
    /// The longest prefix (`{var:n}`) counted exactly; longer ones are not counted (see the
    /// type's docs).
    pub const MAX_COUNTED_PREFIX: u16 = 64;
    /// The memory `regex`'s lazy DFA may use per matcher (it grows with use, up to this).
    const DFA_CACHE: usize = 256 << 10;

    /// Parses and compiles `template`.
    ///
    /// A string without any expression is a valid template (it matches itself); use
    /// [`UriTemplate::is_template`] to skip compiling those.
    ///
    /// ```
    /// use ssecast::{TemplateError, UriTemplate};
    ///
    /// assert!(UriTemplate::parse("/books/{id}{?page,sort}").is_ok());
    /// assert_eq!(
    ///     UriTemplate::parse("/books/{id").unwrap_err(),
    ///     TemplateError::Unclosed { at: 7 }
    /// );
    /// assert_eq!(
    ///     UriTemplate::parse("/books/{id:0}").unwrap_err().to_string(),
    ///     "bad prefix modifier at byte 11 (a length from 1 to 9999)"
    /// );
    /// ```
    pub fn parse(template: &str) -> Result<UriTemplate, TemplateError> {
        if template.len() > Self::MAX_LEN {
            return Err(TemplateError::TooLong { max: Self::MAX_LEN });
        }
        let pattern = compile(template)?;
        let regex = RegexBuilder::new(&pattern)
            .size_limit(Self::MAX_COMPILED)
            .dfa_size_limit(Self::DFA_CACHE)
            .build()
            .map_err(|error| match error {
                regex::Error::CompiledTooBig(_) => TemplateError::TooBig {
                    max: Self::MAX_COMPILED,
                },
                // `compile` writes only syntax the crate accepts; should that ever be wrong,
                // the template is refused, never matched wrongly.
                _ => TemplateError::Internal,
            })?;
        Ok(UriTemplate {
            inner: Arc::new(Compiled {
                source: template.into(),
                regex,
            }),
        })
    }

    /// Whether `text` has an expression at all (a `{`): a string without one is not worth
    /// compiling, and a caller that already compared it for equality can stop there.
    ///
    /// (Strictly, such a template also matches the percent-encoded form of its non-ASCII
    /// characters, e.g. `/café` matches `/caf%C3%A9`; a caller that skips it on this answer
    /// gives that up.)
    ///
    /// ```
    /// use ssecast::UriTemplate;
    /// assert!(UriTemplate::is_template("https://example.com/books/{id}"));
    /// assert!(!UriTemplate::is_template("https://example.com/books/1"));
    /// ```
    pub fn is_template(text: &str) -> bool {
        text.contains('{')
    }

    /// Whether `candidate` is a possible expansion of the template (see the type's docs for
    /// exactly what that takes). Linear in `candidate`'s length.
    ///
    /// ```
    /// use ssecast::UriTemplate;
    /// let template = UriTemplate::parse("https://example.com/users/foo/{?topic}").unwrap();
    /// assert!(template.matches("https://example.com/users/foo/"));
    /// assert!(template.matches(
    ///     "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"
    /// ));
    /// assert!(!template.matches("https://example.com/users/foo/?topic=https://x"));
    /// ```
    pub fn matches(&self, candidate: &str) -> bool {
        self.inner.regex.is_match(candidate)
    }

    /// The template's source text.
    pub fn as_str(&self) -> &str {
        &self.inner.source
    }
}

impl fmt::Debug for UriTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UriTemplate").field(&self.as_str()).finish()
    }
}

impl fmt::Display for UriTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for UriTemplate {
    fn eq(&self, other: &UriTemplate) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for UriTemplate {}

impl Hash for UriTemplate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Why a string is not a URI template (or one too large to compile). Offsets are in bytes
/// from the start of the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateError {
    /// Longer than [`UriTemplate::MAX_LEN`].
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// More than [`UriTemplate::MAX_EXPRESSIONS`] expressions.
    TooManyExpressions {
        /// The limit.
        max: usize,
    },
    /// More than [`UriTemplate::MAX_VARIABLES`] variables.
    TooManyVariables {
        /// The limit.
        max: usize,
    },
    /// The compiled matcher would be larger than [`UriTemplate::MAX_COMPILED`].
    TooBig {
        /// The limit, in bytes.
        max: usize,
    },
    /// A `{` with no `}` after it.
    Unclosed {
        /// Where the `{` is.
        at: usize,
    },
    /// A `}` outside an expression.
    StrayBrace {
        /// Where the `}` is.
        at: usize,
    },
    /// An operator RFC 6570 reserves for future extensions: `=`, `,`, `!`, `@` or `|`.
    ReservedOperator {
        /// Where the operator is.
        at: usize,
    },
    /// A variable name that is empty or has a character outside `ALPHA / DIGIT / "_" /
    /// pct-encoded` (with single dots between them).
    BadVariable {
        /// Where the offending character (or the empty name) is.
        at: usize,
    },
    /// A prefix modifier that is not a length from 1 to 9999.
    BadPrefix {
        /// Where the length starts.
        at: usize,
    },
    /// A character that may not appear outside an expression.
    BadLiteral {
        /// Where the character is.
        at: usize,
    },
    /// The matcher could not be built (a bug here, never the template's fault).
    Internal,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::TooLong { max } => write!(f, "template longer than {max} bytes"),
            TemplateError::TooManyExpressions { max } => {
                write!(f, "template with more than {max} expressions")
            }
            TemplateError::TooManyVariables { max } => {
                write!(f, "template with more than {max} variables")
            }
            TemplateError::TooBig { max } => {
                write!(f, "template compiles to more than {max} bytes")
            }
            TemplateError::Unclosed { at } => write!(f, "unclosed expression at byte {at}"),
            TemplateError::StrayBrace { at } => {
                write!(f, "'}}' outside an expression at byte {at}")
            }
            TemplateError::ReservedOperator { at } => {
                write!(f, "reserved operator at byte {at}")
            }
            TemplateError::BadVariable { at } => write!(f, "bad variable name at byte {at}"),
            TemplateError::BadPrefix { at } => {
                write!(
                    f,
                    "bad prefix modifier at byte {at} (a length from 1 to 9999)"
                )
            }
            TemplateError::BadLiteral { at } => {
                write!(f, "character not allowed in a template at byte {at}")
            }
            TemplateError::Internal => f.write_str("template could not be compiled"),
        }
    }
}

impl std::error::Error for TemplateError {}

/// The unreserved characters as a regex class body.
const UNRESERVED: &str = r"A-Za-z0-9\-._~";
/// The reserved characters (gen-delims and sub-delims) as a regex class body.
const RESERVED: &str = r":/?#\[\]@!$&'()*+,;=";
/// The non-ASCII characters a candidate may hold raw (an IRI's): RFC 3987's `ucschar` and
/// `iprivate` are these less a few non-characters, kept here because leaving them out costs
/// every compiled class about four times its size (see [`UriTemplate`]).
const IRI_CHARS: &str = r"\x{A0}-\x{10FFFF}";
/// One percent-encoded octet.
const PCT: &str = "%[0-9A-Fa-f]{2}";

/// Whether `c` is an RFC 3987 `ucschar` or `iprivate`, which a template literal may be.
fn is_iri_char(c: char) -> bool {
    let c = u32::from(c);
    matches!(c, 0xA0..=0xD7FF | 0xE000..=0xFDCF | 0xFDF0..=0xFFEF)
        || ((0x1_0000..=0x10_FFFF).contains(&c)
            && (c & 0xFFFF) <= 0xFFFD
            && !(0xE_0000..0xE_1000).contains(&c))
}

/// Whether the ASCII byte `b` may appear as itself in a template literal (RFC 6570 §2.1 with
/// erratum 6937, which allows `'`).
fn is_literal_ascii(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x24 | 0x26..=0x3B | 0x3D | 0x3F..=0x5B | 0x5D | 0x5F | 0x61..=0x7A | 0x7E)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    Param,
    Query,
    Continuation,
}

impl Op {
    fn first(self) -> &'static str {
        match self {
            Op::Simple | Op::Reserved => "",
            Op::Fragment => "#",
            Op::Label => r"\.",
            Op::Path => "/",
            Op::Param => ";",
            Op::Query => r"\?",
            Op::Continuation => "&",
        }
    }

    /// The separator, as regex text.
    fn sep(self) -> &'static str {
        match self {
            Op::Simple | Op::Reserved | Op::Fragment => ",",
            Op::Label => r"\.",
            Op::Path => "/",
            Op::Param => ";",
            Op::Query | Op::Continuation => "&",
        }
    }

    fn named(self) -> bool {
        matches!(self, Op::Param | Op::Query | Op::Continuation)
    }

    /// Whether an empty value still gets its `=` (the table's `ifemp`).
    fn equals_if_empty(self) -> bool {
        matches!(self, Op::Query | Op::Continuation)
    }

    /// Whether reserved characters and triplets pass through unencoded.
    fn allows_reserved(self) -> bool {
        matches!(self, Op::Reserved | Op::Fragment)
    }
}

enum Modifier {
    None,
    Prefix(u16),
    Explode,
}

/// Compiles a whole template to regex text.
fn compile(template: &str) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() * 4 + 8);
    out.push_str(r"\A(?:");
    let bytes = template.as_bytes();
    let mut expressions = 0;
    let mut variables = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                let close = template[i + 1..]
                    .find(['{', '}'])
                    .map(|n| i + 1 + n)
                    .filter(|&n| bytes[n] == b'}')
                    .ok_or(TemplateError::Unclosed { at: i })?;
                expressions += 1;
                if expressions > UriTemplate::MAX_EXPRESSIONS {
                    return Err(TemplateError::TooManyExpressions {
                        max: UriTemplate::MAX_EXPRESSIONS,
                    });
                }
                compile_expression(&template[i + 1..close], i + 1, &mut variables, &mut out)?;
                i = close + 1;
            }
            b'}' => return Err(TemplateError::StrayBrace { at: i }),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let Some(hex) = hex else {
                    return Err(TemplateError::BadLiteral { at: i });
                };
                push_triplet_any_case(&mut out, hex[0], hex[1]);
                i += 3;
            }
            b if b.is_ascii() => {
                if !is_literal_ascii(b) {
                    return Err(TemplateError::BadLiteral { at: i });
                }
                push_escaped(&mut out, b as char);
                i += 1;
            }
            _ => {
                // A non-ASCII character: `i` is at a char boundary, since everything before
                // it was consumed whole.
                let Some(c) = template[i..].chars().next() else {
                    return Err(TemplateError::Internal);
                };
                if !is_iri_char(c) {
                    return Err(TemplateError::BadLiteral { at: i });
                }
                // Expansion would percent-encode it; an IRI holds it raw. Either matches.
                out.push_str("(?:");
                push_escaped(&mut out, c);
                out.push('|');
                let mut utf8 = [0; 4];
                for &octet in c.encode_utf8(&mut utf8).as_bytes() {
                    let hex = format!("{octet:02X}");
                    let hex = hex.as_bytes();
                    push_triplet_any_case(&mut out, hex[0], hex[1]);
                }
                out.push(')');
                i += c.len_utf8();
            }
        }
    }
    out.push_str(r")\z");
    Ok(out)
}

fn push_escaped(out: &mut String, c: char) {
    let mut buf = [0; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// `%` and two hex digits, letters in either case.
fn push_triplet_any_case(out: &mut String, hi: u8, lo: u8) {
    out.push('%');
    for digit in [hi, lo] {
        if digit.is_ascii_alphabetic() {
            out.push('[');
            out.push(digit.to_ascii_uppercase() as char);
            out.push(digit.to_ascii_lowercase() as char);
            out.push(']');
        } else {
            out.push(digit as char);
        }
    }
}

/// Compiles the inside of one `{...}`; `at` is the offset of `body` in the template.
fn compile_expression(
    body: &str,
    at: usize,
    variables: &mut usize,
    out: &mut String,
) -> Result<(), TemplateError> {
    let (op, list, list_at) = match body.as_bytes().first() {
        Some(b'+') => (Op::Reserved, &body[1..], at + 1),
        Some(b'#') => (Op::Fragment, &body[1..], at + 1),
        Some(b'.') => (Op::Label, &body[1..], at + 1),
        Some(b'/') => (Op::Path, &body[1..], at + 1),
        Some(b';') => (Op::Param, &body[1..], at + 1),
        Some(b'?') => (Op::Query, &body[1..], at + 1),
        Some(b'&') => (Op::Continuation, &body[1..], at + 1),
        Some(b'=' | b',' | b'!' | b'@' | b'|') => {
            return Err(TemplateError::ReservedOperator { at })
        }
        _ => (Op::Simple, body, at),
    };
    let mut pieces = Vec::new();
    let mut offset = list_at;
    for varspec in list.split(',') {
        *variables += 1;
        if *variables > UriTemplate::MAX_VARIABLES {
            return Err(TemplateError::TooManyVariables {
                max: UriTemplate::MAX_VARIABLES,
            });
        }
        let (name, modifier) = parse_varspec(varspec, offset)?;
        pieces.push(piece(op, name, &modifier));
        offset += varspec.len() + 1;
    }
    let (first, sep) = (op.first(), op.sep());
    if first == sep {
        // Each defined variable brings its separator: `(?:;P1)?(?:;P2)?...`.
        for p in &pieces {
            let _ = write!(out, "(?:{sep}{p})?");
        }
        return Ok(());
    }
    // `first`, then any non-empty subsequence of the pieces joined by `sep`; or nothing.
    out.push_str("(?:");
    out.push_str(first);
    if pieces.iter().all(|p| *p == pieces[0]) {
        // A subsequence of alike pieces is 1 to k of them.
        let _ = write!(
            out,
            "{p}(?:{sep}{p}){{0,{}}}",
            pieces.len() - 1,
            p = pieces[0]
        );
    } else {
        // The subsequences of P1..Pj are A(j) = A(j-1) (sep Pj)? | Pj, with A(1) = P1:
        // linear in k, where listing each first piece with its optional followers would be
        // quadratic.
        for _ in 1..pieces.len() {
            out.push_str("(?:");
        }
        out.push_str(&pieces[0]);
        for p in &pieces[1..] {
            let _ = write!(out, "(?:{sep}{p})?|{p})");
        }
    }
    out.push_str(")?");
    Ok(())
}

/// Splits and checks `varname [ ":" max-length / "*" ]`.
fn parse_varspec(varspec: &str, at: usize) -> Result<(&str, Modifier), TemplateError> {
    let (name, modifier) = if let Some((name, length)) = varspec.split_once(':') {
        let length_at = at + name.len() + 1;
        let bad = TemplateError::BadPrefix { at: length_at };
        if length.is_empty()
            || length.len() > 4
            || length.starts_with('0')
            || !length.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad);
        }
        (name, Modifier::Prefix(length.parse().map_err(|_| bad)?))
    } else if let Some(name) = varspec.strip_suffix('*') {
        (name, Modifier::Explode)
    } else {
        (varspec, Modifier::None)
    };
    // varname = varchar *( ["."] varchar ); varchar = ALPHA / DIGIT / "_" / pct-encoded
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err(TemplateError::BadVariable { at });
    }
    let mut i = 0;
    let mut after_dot = true; // a name may not start with a dot
    while i < bytes.len() {
        match bytes[i] {
            b'.' if !after_dot => after_dot = true,
            b'%' if bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                after_dot = false;
                i += 2;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => after_dot = false,
            _ => return Err(TemplateError::BadVariable { at: at + i }),
        }
        i += 1;
    }
    if after_dot {
        return Err(TemplateError::BadVariable {
            at: at + bytes.len() - 1,
        });
    }
    Ok((name, modifier))
}

/// The regex for what one defined variable may expand to, `first` and separators aside.
fn piece(op: Op, name: &str, modifier: &Modifier) -> String {
    let class = if op.allows_reserved() {
        format!("{UNRESERVED}{RESERVED}{IRI_CHARS}")
    } else {
        format!("{UNRESERVED}{IRI_CHARS}")
    };
    // Zero or more encoded characters of a string.
    let v = format!("(?:[{class}]|{PCT})*");
    // The same, at least one.
    let v1 = format!("(?:[{class}]|{PCT})+");
    // A list or associative array, not exploded: strings joined by commas.
    let joined = format!("(?:[{class},]|{PCT})*");
    // One character of a value, counted for a prefix: a raw character, or a triplet and the
    // UTF-8 continuation triplets after it (one encoded code point, leniently).
    let unit = format!("(?:[{class}]|{PCT}(?:%[89ABab][0-9A-Fa-f])*)");
    let sep = op.sep();
    let mut name_re = String::new();
    let mut i = 0;
    let bytes = name.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'%' {
            push_triplet_any_case(&mut name_re, bytes[i + 1], bytes[i + 2]);
            i += 3;
        } else {
            push_escaped(&mut name_re, bytes[i] as char);
            i += 1;
        }
    }
    let n = name_re;
    let counted = |min: u16, max: u16| {
        if max > UriTemplate::MAX_COUNTED_PREFIX {
            if min == 0 {
                v.clone()
            } else {
                v1.clone()
            }
        } else {
            format!("{unit}{{{min},{max}}}")
        }
    };
    let body = match (op.named(), modifier) {
        // A prefixed string: `name=` and at most `max` characters; `name` (`;`) when empty.
        (true, Modifier::Prefix(max)) if op.equals_if_empty() => {
            format!("{n}={}", counted(0, *max))
        }
        (true, Modifier::Prefix(max)) => format!("{n}(?:={})?", counted(1, *max)),
        (false, Modifier::Prefix(max)) => counted(0, *max),
        // A string, list or associative array: `name=` then values joined by commas.
        (true, Modifier::None) if op.equals_if_empty() => format!("{n}={joined}"),
        (true, Modifier::None) => format!("{n}(?:={joined})?"),
        (false, Modifier::None) => joined,
        // Exploded, named: `key=value` (or `name=item`) joined by the separator; the key of
        // an associative array takes the name's place, so any key covers the name.
        (true, Modifier::Explode) if op.equals_if_empty() => format!("{v}={v}(?:{sep}{v}={v})*"),
        (true, Modifier::Explode) => format!("{v}(?:={v1})?(?:{sep}{v}(?:={v1})?)*"),
        // Exploded, unnamed: items joined by the separator, or `key=value` pairs.
        (false, Modifier::Explode) if op.allows_reserved() => v,
        (false, Modifier::Explode) => {
            format!("{v}(?:{sep}{v})*|{v}={v}(?:{sep}{v}={v})*")
        }
    };
    format!("(?:{body})")
}
