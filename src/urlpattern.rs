//! WHATWG URL Patterns as Mercure 1.0 (draft-08) topic matchers (`match_urlpattern=`).
//!
//! The rules, and the choices made, are documented on [`UrlPattern`], where users of the crate
//! see them.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use regex::RegexBuilder;
use url::Url;
use urlpattern::component::Component;
use urlpattern::matcher::InnerMatcher;
use urlpattern::regexp::RegExp;
use urlpattern::{RegexSyntax, UrlPatternInit, UrlPatternOptions};

/// A compiled WHATWG URL Pattern, matched against topics the way Mercure 1.0 says.
///
/// Draft-08 ("URL Pattern") evaluates patterns "per the URL Pattern Living Standard", with the
/// hub's URL as the base URL for relative patterns and relative topics, `ignoreCase` off, and
/// a topic that cannot be parsed as a URL reference against the hub's URL matching no
/// pattern. So a pattern is compiled like `new URLPattern(pattern, hubUrl)` and a topic
/// tested like `pattern.test(topic, hubUrl)`: the topic is parsed as a whole URL (WHATWG URL
/// parser, with its canonicalization: lower-case host, percent-encoding, dot segments, default
/// port), and each of its eight components (protocol, username, password, hostname, port,
/// pathname, search, hash) must match the pattern's. Relative patterns inherit the base's
/// protocol, host and port; components a pattern leaves out match anything, as the standard
/// says (`/books/:id` matches `https://hub.example/books/1?x#y` when the hub is on
/// `https://hub.example`). The matcher `*` is the wildcard of draft-08's "Matcher Types": it
/// matches every topic, URL or not.
///
/// # Why the `urlpattern` crate
///
/// The standard is large (a constructor-string parser, per-component canonicalization through
/// the URL parser, base-URL inheritance, regexp groups), and Mercure patterns are full URLs,
/// not just paths, so a home-made subset would not be "per the standard". The `urlpattern`
/// crate (Deno's, MIT) implements it and passes the web-platform-tests; its regexp engine is
/// pluggable, and here it runs on the `regex` crate, which matches in time linear in the
/// input with no backtracking, as draft-08 requires of hubs ("a regular expression engine
/// that guarantees linear-time matching"). It builds for `wasm32-unknown-unknown` and brings
/// the `url` crate (the WHATWG URL parser) with it.
///
/// # Regexp groups
///
/// A pattern may hold ECMAScript regexp groups, `/books/:id(\\d+)`. This engine is not
/// ECMAScript's, but every component it is given has been canonicalized by the URL parser,
/// so it is ASCII with no CR or LF; on such input the two agree on literals, classes, `.`,
/// `\d \w \s \b` and their negations, quantifiers (greedy and lazy), alternation and
/// non-capturing groups. What they would read differently is refused with
/// [`PatternError::Regexp`] rather than run: syntax only this engine has (inline flags
/// `(?i)`, `(?P<`, `\A \z \a \e`, `\x{..}`, `{,n}`, nested classes and `&&` `--` `~~` in
/// classes, `[]`, `[^]`), syntax only ECMAScript has (look-around, back-references; the
/// crate cannot run them in linear time), and escapes ECMAScript's Unicode mode forbids.
/// A refused pattern is a `400` for the hub, never a silent mismatch.
///
/// # Cost
///
/// A pattern is at most [`UrlPattern::MAX_LEN`] bytes, and each of its compiled regular
/// expressions (one or two per component) at most [`UrlPattern::MAX_COMPILED`] bytes. Most
/// components never reach the regex: the crate matches a literal, `*` or one `:name` segment
/// directly. Matching a topic parses it once ([`TopicUrl::parse`], then
/// [`UrlPattern::matches_url`] for every pattern) and runs at most eight linear-time matches,
/// allocating nothing. A compiled pattern takes about 2 KB of heap
/// (`https://example.com/books/:id`) to 15 KB (`/books/:id{/reviews}?`).
///
/// ```
/// use ssecast::{BaseUrl, TopicUrl, UrlPattern};
///
/// let hub = BaseUrl::parse("https://example.com/.well-known/mercure").unwrap();
/// let books = UrlPattern::parse("https://example.com/books/:id", &hub).unwrap();
/// assert!(books.matches("https://example.com/books/1"));
/// assert!(!books.matches("https://example.com/books/1/reviews"));
/// assert!(books.matches("/books/1")); // a relative topic, resolved against the hub's URL
///
/// let reviews = UrlPattern::parse("/books/:id{/reviews}?", &hub).unwrap();
/// let topic = TopicUrl::parse("https://example.com/books/1/reviews", &hub).unwrap();
/// assert!(reviews.matches_url(&topic) && !books.matches_url(&topic));
/// ```
#[derive(Clone)]
pub struct UrlPattern {
    inner: Arc<Compiled>,
}

struct Compiled {
    source: Box<str>,
    base: BaseUrl,
    /// `None` for the wildcard `*`.
    pattern: Option<urlpattern::UrlPattern<LinearRegex>>,
}

impl UrlPattern {
    /// The longest pattern accepted, in bytes.
    pub const MAX_LEN: usize = 4096;
    /// The most bytes one compiled regular expression (`regex`'s NFA) may take.
    pub const MAX_COMPILED: usize = 1 << 20;
    /// The memory `regex`'s lazy DFA may use per expression (it grows with use, up to this).
    const DFA_CACHE: usize = 64 << 10;

    /// Compiles `pattern`, resolving it against `base` (the hub's URL) if it is relative.
    ///
    /// ```
    /// use ssecast::{BaseUrl, PatternError, UrlPattern};
    ///
    /// let hub = BaseUrl::parse("https://example.com/.well-known/mercure").unwrap();
    /// assert!(UrlPattern::parse("/books/:id", &hub).is_ok());
    /// assert!(UrlPattern::parse("/books/:id(\\d+)", &hub).is_ok());
    /// assert_eq!(
    ///     UrlPattern::parse("/books/:id(a(?=x))", &hub).unwrap_err(),
    ///     PatternError::Regexp
    /// );
    /// assert_eq!(
    ///     UrlPattern::parse("/books/{:id", &hub).unwrap_err().to_string(),
    ///     "not a URL pattern: a '{', '}', '(' or ')' out of place"
    /// );
    /// ```
    pub fn parse(pattern: &str, base: &BaseUrl) -> Result<UrlPattern, PatternError> {
        if pattern.len() > Self::MAX_LEN {
            return Err(PatternError::TooLong { max: Self::MAX_LEN });
        }
        let compiled = if pattern == "*" {
            None
        } else {
            // Draft-08 resolves *relative* patterns against the hub's URL. An absolute one is
            // compiled alone: given a base, the standard would also prefix a pathname that
            // does not start with `/` (`urn\:uuid\:*`) with the base's directory.
            let init = match UrlPatternInit::parse_constructor_string::<LinearRegex>(pattern, None)
            {
                Err(urlpattern::Error::BaseUrlRequired) => {
                    UrlPatternInit::parse_constructor_string::<LinearRegex>(
                        pattern,
                        Some(base.url.as_ref().clone()),
                    )
                }
                absolute => absolute,
            }
            .map_err(PatternError::from_crate)?;
            let options = UrlPatternOptions {
                regex_syntax: RegexSyntax::Rust,
                // Draft-08: hubs MUST NOT enable `ignoreCase`.
                ignore_case: false,
            };
            let mut compiled = urlpattern::UrlPattern::<LinearRegex>::parse(init, options)
                .map_err(PatternError::from_crate)?;
            // A component's fast-path matcher may hold a regex of its own that failed to
            // build; the crate would then quietly never match. Refuse the pattern instead.
            if components(&compiled)
                .iter()
                .any(|c| matches!(&c.matcher.inner, InnerMatcher::RegExp { regexp: Err(_) }))
            {
                return Err(PatternError::Regexp);
            }
            // Each component also keeps a regex of the whole component, which only the
            // crate's `exec` reads; matching here goes through the matchers alone. It compiled,
            // so the pattern is valid: drop it, and most of a pattern's memory with it.
            for component in components_mut(&mut compiled) {
                component.regexp = Err(urlpattern::Error::RegExp(()));
            }
            Some(compiled)
        };
        Ok(UrlPattern {
            inner: Arc::new(Compiled {
                source: pattern.into(),
                base: base.clone(),
                pattern: compiled,
            }),
        })
    }

    /// Whether `topic` matches: it is parsed as a URL against the base given to
    /// [`UrlPattern::parse`] (a topic that is not a URL matches nothing but `*`). To match
    /// one topic against many patterns, parse it once with [`TopicUrl::parse`] and call
    /// [`UrlPattern::matches_url`].
    pub fn matches(&self, topic: &str) -> bool {
        let Some(pattern) = &self.inner.pattern else {
            return true;
        };
        TopicUrl::parse(topic, &self.inner.base).is_some_and(|url| test(pattern, &url))
    }

    /// Whether the parsed `topic` matches.
    pub fn matches_url(&self, topic: &TopicUrl) -> bool {
        self.inner
            .pattern
            .as_ref()
            .is_none_or(|pattern| test(pattern, topic))
    }

    /// The pattern's source text.
    pub fn as_str(&self) -> &str {
        &self.inner.source
    }

    /// The base URL the pattern was compiled against.
    pub fn base(&self) -> &BaseUrl {
        &self.inner.base
    }
}

/// The URL Pattern standard's "match" for a URL input: every component's matcher on the
/// URL's own components, borrowed.
fn test(pattern: &urlpattern::UrlPattern<LinearRegex>, topic: &TopicUrl) -> bool {
    let url = &topic.0;
    let inputs = [
        url.scheme(),
        url.username(),
        url.password().unwrap_or_default(),
        url.host_str().unwrap_or_default(),
        url::quirks::port(url),
        url::quirks::pathname(url),
        url.query().unwrap_or_default(),
        url.fragment().unwrap_or_default(),
    ];
    components(pattern)
        .iter()
        .zip(inputs)
        .all(|(component, input)| component_matches(component, input))
}

/// One component's matcher, as the crate's `Matcher::matches` runs it but without building
/// the list of captures (an allocation per component per test there): a literal prefix and
/// suffix around a literal, a single wildcard (`*`, or `:name` with its delimiter), or the
/// regex. `ignoreCase` is never on.
fn component_matches(component: &Component<LinearRegex>, input: &str) -> bool {
    let matcher = &component.matcher;
    let Some(inner) = strip(input, &matcher.prefix, &matcher.suffix) else {
        return false;
    };
    match &matcher.inner {
        InnerMatcher::Literal { literal } => same(inner, literal),
        InnerMatcher::SingleCapture {
            filter,
            allow_empty,
        } => (*allow_empty || !inner.is_empty()) && filter.is_none_or(|c| !inner.contains(c)),
        InnerMatcher::RegExp { regexp } => regexp.as_ref().is_ok_and(|re| re.0.is_match(inner)),
    }
}

/// `input` less a literal prefix and suffix that must not overlap, or `None`.
fn strip<'a>(input: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let input = if prefix.is_empty() {
        input
    } else {
        input.strip_prefix(prefix)?
    };
    if suffix.is_empty() {
        Some(input)
    } else {
        input.strip_suffix(suffix)
    }
}

/// String equality that never calls `memcmp` on empty strings: most components here are
/// empty, and on this project's machines (AMD EPYC, glibc's AVX-512 `memcmp`) a zero-length
/// compare of the dangling pointer an empty `&str` has costs about 200 ns, where a short
/// compare costs 1 ns.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

fn components(pattern: &urlpattern::UrlPattern<LinearRegex>) -> [&Component<LinearRegex>; 8] {
    [
        &pattern.protocol,
        &pattern.username,
        &pattern.password,
        &pattern.hostname,
        &pattern.port,
        &pattern.pathname,
        &pattern.search,
        &pattern.hash,
    ]
}

fn components_mut(
    pattern: &mut urlpattern::UrlPattern<LinearRegex>,
) -> [&mut Component<LinearRegex>; 8] {
    [
        &mut pattern.protocol,
        &mut pattern.username,
        &mut pattern.password,
        &mut pattern.hostname,
        &mut pattern.port,
        &mut pattern.pathname,
        &mut pattern.search,
        &mut pattern.hash,
    ]
}

impl fmt::Debug for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UrlPattern").field(&self.as_str()).finish()
    }
}

impl fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Equal when the source texts and the bases are.
impl PartialEq for UrlPattern {
    fn eq(&self, other: &UrlPattern) -> bool {
        self.as_str() == other.as_str() && self.inner.base == other.inner.base
    }
}

impl Eq for UrlPattern {}

impl Hash for UrlPattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
        self.inner.base.as_str().hash(state);
    }
}

/// The URL relative patterns and topics are resolved against: the hub's own URL (by default
/// `https://<host>/.well-known/mercure`). An absolute URL that can be a base.
///
/// ```
/// use ssecast::BaseUrl;
/// assert!(BaseUrl::parse("https://example.com/.well-known/mercure").is_ok());
/// assert!(BaseUrl::parse("/.well-known/mercure").is_err());
/// assert!(BaseUrl::parse("mailto:hub@example.com").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: Arc<Url>,
}

impl BaseUrl {
    /// Parses an absolute URL.
    pub fn parse(url: &str) -> Result<BaseUrl, PatternError> {
        let url = Url::parse(url).map_err(|_| PatternError::BaseUrl)?;
        if url.cannot_be_a_base() {
            return Err(PatternError::BaseUrl);
        }
        Ok(BaseUrl { url: Arc::new(url) })
    }

    /// The URL, serialized (canonical: `https://Example.com` reads `https://example.com/`).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BaseUrl").field(&self.as_str()).finish()
    }
}

/// A topic parsed as a URL against a [`BaseUrl`]: parse it once per update, then match it
/// against every pattern with [`UrlPattern::matches_url`].
///
/// ```
/// use ssecast::{BaseUrl, TopicUrl};
/// let hub = BaseUrl::parse("https://example.com/.well-known/mercure").unwrap();
/// let topic = TopicUrl::parse("/books/1", &hub).unwrap();
/// assert_eq!(topic.as_str(), "https://example.com/books/1");
/// assert!(TopicUrl::parse("https://exa mple.com/", &hub).is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TopicUrl(Url);

impl TopicUrl {
    /// Parses `topic` as a URL reference against `base` (WHATWG URL parser); `None` if it is
    /// not one.
    pub fn parse(topic: &str, base: &BaseUrl) -> Option<TopicUrl> {
        Url::options()
            .base_url(Some(&base.url))
            .parse(topic)
            .ok()
            .map(TopicUrl)
    }

    /// The resolved URL, serialized.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for TopicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicUrl").field(&self.as_str()).finish()
    }
}

/// Why a string is not a URL pattern this hub can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternError {
    /// Longer than [`UrlPattern::MAX_LEN`].
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// Not well-formed by the URL Pattern standard's grammar.
    Syntax {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// A part of the pattern is not valid where it stands in a URL (a bad hostname, port,
    /// or scheme).
    Url,
    /// A regexp group that this hub cannot run exactly in linear time (see [`UrlPattern`]),
    /// or a compiled expression larger than [`UrlPattern::MAX_COMPILED`].
    Regexp,
    /// The base URL is not an absolute URL that can be a base.
    BaseUrl,
}

impl PatternError {
    fn from_crate(error: urlpattern::Error) -> PatternError {
        use urlpattern::Error;
        // The crate's tokenizer and parser error kinds are not exported: tell them apart by
        // their messages, falling back on a general reason.
        let reason = |message: String, known: &[(&str, &'static str)], otherwise| {
            known
                .iter()
                .find(|(start, _)| message.starts_with(start))
                .map_or(otherwise, |&(_, reason)| reason)
        };
        match error {
            Error::Tokenizer(kind, _) => PatternError::Syntax {
                reason: reason(
                    kind.to_string(),
                    &[
                        ("incomplete escape", "a '\\' at the end"),
                        ("invalid name", "a ':' with no name after it"),
                        ("invalid regex", "a malformed regexp group"),
                    ],
                    "a malformed name, escape or group",
                ),
            },
            Error::Parser(kind) => PatternError::Syntax {
                reason: reason(
                    kind.to_string(),
                    &[("pattern contains duplicate name", "a group name used twice")],
                    "a '{', '}', '(' or ')' out of place",
                ),
            },
            Error::Url(_) => PatternError::Url,
            Error::RegExp(()) => PatternError::Regexp,
            // A base URL is always given, and never with an init dictionary.
            Error::BaseUrlRequired | Error::BaseUrlWithInit => PatternError::BaseUrl,
        }
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::TooLong { max } => write!(f, "URL pattern longer than {max} bytes"),
            PatternError::Syntax { reason } => write!(f, "not a URL pattern: {reason}"),
            PatternError::Url => f.write_str("URL pattern with a part that is not valid in a URL"),
            PatternError::Regexp => f.write_str(
                "URL pattern with a regexp group this hub cannot run exactly in linear time",
            ),
            PatternError::BaseUrl => f.write_str("base URL is not an absolute URL"),
        }
    }
}

impl std::error::Error for PatternError {}

/// The `regex` crate as the URL Pattern engine: linear time, size-limited, and only for
/// expressions that mean the same as in ECMAScript on canonical URL components.
#[derive(Debug)]
struct LinearRegex(regex::Regex);

impl RegExp for LinearRegex {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, flags: &str, _force_eval: bool) -> Result<LinearRegex, ()> {
        // `u` always; `i` would be `ignoreCase`, which is never set.
        if flags != "u" || !reads_the_same_in_ecmascript(pattern) {
            return Err(());
        }
        RegexBuilder::new(pattern)
            .size_limit(UrlPattern::MAX_COMPILED)
            .dfa_size_limit(UrlPattern::DFA_CACHE)
            .build()
            .map(LinearRegex)
            .map_err(|_| ())
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        // Only whether it matches is ever asked (by the crate while it compiles, and never
        // through `exec`): no captures.
        self.0.is_match(text).then(Vec::new)
    }

    fn pattern_string(&self) -> &str {
        self.0.as_str()
    }
}

/// Whether `pattern` (the crate's generated expression, with any regexp group inside it)
/// uses only syntax that `regex` and ECMAScript (Unicode mode) read alike on ASCII input
/// without CR or LF. Look-around and back-references pass here and are refused by `regex`.
fn reads_the_same_in_ecmascript(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    let mut in_braces = false;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\\' => {
                let Some(escaped) = next else {
                    return false;
                };
                let after = chars.get(i + 2).copied();
                let ok = match escaped {
                    '^' | '$' | '\\' | '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{'
                    | '}' | '|' | '/' => true,
                    '-' => in_class,
                    'd' | 'D' | 's' | 'S' | 'w' | 'W' | 'f' | 'n' | 'r' | 't' | 'v' => true,
                    // A word boundary outside classes (a backspace inside, in ECMAScript);
                    // `\b{start}` and the like are this engine's only.
                    'b' | 'B' => !in_class && after != Some('{'),
                    // `\xHH` in both; `\x{..}` only here.
                    'x' => after.is_some_and(|h| h.is_ascii_hexdigit()),
                    'u' | 'p' | 'P' => true,
                    _ => false,
                };
                if !ok {
                    return false;
                }
                i += 2;
                continue;
            }
            '[' if in_class => return false, // a nested class here, a literal there
            '[' => {
                in_class = true;
                let mut j = i + 1;
                if chars.get(j) == Some(&'^') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    return false; // `[]` and `[^]`: empty and any in ECMAScript
                }
                i = j;
                continue;
            }
            ']' if in_class => in_class = false,
            '&' | '-' | '~' if in_class && next == Some(c) => return false, // set operations
            '(' if !in_class && next == Some('?') => {
                let ok = match chars.get(i + 2) {
                    Some(':' | '=' | '!') => true,
                    // `(?<=`, `(?<!`, `(?<name>`; not `(?P<name>` nor flags.
                    Some('<') => true,
                    _ => false,
                };
                if !ok {
                    return false;
                }
            }
            '{' if !in_class && next == Some(',') => return false, // `{,n}`
            '{' if !in_class => in_braces = true,
            '}' if !in_class && in_braces => in_braces = false,
            // A lone `]` or `}`: a literal here, an error in ECMAScript's Unicode mode.
            ']' | '}' if !in_class => return false,
            _ => {}
        }
        i += 1;
    }
    !in_class
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::{test, BaseUrl, TopicUrl, UrlPattern};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The allocation-free component matching says what the crate's own `test` says.
        #[test]
        fn same_as_the_crates_test(
            pattern in concat!(
                r"(https://ab\.c|https://\*\.c|http\{s\}\?://ab\.c|)",
                r"(/([ab]{1,2}|:[a-z]{1,2}[?+*]?|\*|\{/[ab]{1,2}\}\?|\(\\d\+\))){0,4}",
                r"(\\\?[ab=*]{0,3})?",
            ),
            topic in r"(https://ab\.c|http://ab\.c|https://x\.ab\.c|)(/[ab1]{0,2}){0,4}(\?[ab=]{0,3})?(#[ab]{0,2})?",
        ) {
            let hub = BaseUrl::parse("https://ab.c/.well-known/mercure").unwrap();
            if let (Ok(compiled), Some(url)) =
                (UrlPattern::parse(&pattern, &hub), TopicUrl::parse(&topic, &hub))
            {
                if let Some(inner) = &compiled.inner.pattern {
                    let theirs = inner
                        .test(urlpattern::UrlPatternMatchInput::Url(url.0.clone()))
                        .unwrap();
                    prop_assert_eq!(test(inner, &url), theirs, "{} {}", pattern, topic);
                }
            }
        }
    }
}
