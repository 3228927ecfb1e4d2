//! What a subscriber selects, and what it may read: [`Selector`], [`SelectorKind`] and
//! [`Rights`].

use std::fmt;

use crate::event::{FieldError, Topic};
use crate::template::UriTemplate;
use crate::urlpattern::{BaseUrl, PatternError, UrlPattern};

/// How a selector string is read: one kind per way of subscribing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SelectorKind {
    /// Byte for byte, with no wildcard (`*` is a topic like any other): the native
    /// `GET /events?topic=`.
    Exact,
    /// A Mercure draft-07 topic selector (`topic=`, and `mercure.subscribe` /
    /// `mercure.publish` claims): `*` matches every topic; otherwise a topic matches when it
    /// is exactly the selector, or when the selector is a valid URI template (RFC 6570) the
    /// topic matches. A string that is not a valid template is not an error: it selects
    /// exactly itself.
    Topic,
    /// A Mercure draft-08 `match=` (or `match_exact=`) matcher: `*` matches every topic,
    /// anything else only itself, byte for byte. Never a template.
    Match,
    /// A Mercure draft-08 `match_urlpattern=` matcher: `*` matches every topic, anything else
    /// is a WHATWG URL Pattern ([`UrlPattern`]), and a string that is not one is refused.
    /// Relative patterns and topics are resolved against the hub's URL, so these are built
    /// with [`Selector::url_pattern`].
    MatchUrlPattern,
}

/// Why a selector string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectorError {
    /// The string breaks the rules of topic names (empty, too long, a control character):
    /// no topic could ever match it.
    Field(FieldError),
    /// The string is not a valid URL pattern ([`SelectorKind::MatchUrlPattern`]).
    UrlPattern(PatternError),
    /// [`Selector::new`] was asked for a [`SelectorKind::MatchUrlPattern`], which needs the
    /// hub's URL: use [`Selector::url_pattern`].
    NeedsBaseUrl,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectorError::Field(e) => write!(f, "selector {e}"),
            SelectorError::UrlPattern(e) => e.fmt(f),
            SelectorError::NeedsBaseUrl => f.write_str("a URL pattern needs the hub's URL"),
        }
    }
}

impl std::error::Error for SelectorError {}

impl From<FieldError> for SelectorError {
    fn from(e: FieldError) -> SelectorError {
        SelectorError::Field(e)
    }
}

/// A topic selector: which topics a subscriber receives, or (in [`Rights`]) which private
/// updates it may read. Validated and compiled once, when built; matching cannot fail.
///
/// The hub interns selectors: subscribers that use the same selector (same kind of matcher,
/// same string) share one compiled matcher, evaluated at most once per update.
///
/// ```
/// use ssecast::{Selector, SelectorKind, Topic};
///
/// let topic = |t: &str| Topic::new(t).unwrap();
/// let star = Selector::new("*", SelectorKind::Topic).unwrap();
/// assert!(star.matches(&topic("https://example.com/books/1")));
///
/// // Natively, `*` is just a topic name.
/// let native = Selector::new("*", SelectorKind::Exact).unwrap();
/// assert!(!native.matches(&topic("news")));
/// assert!(native.matches(&topic("*")));
///
/// let exact = Selector::new("https://example.com/books/1", SelectorKind::Match).unwrap();
/// assert!(exact.matches(&topic("https://example.com/books/1")));
/// assert!(!exact.matches(&topic("https://example.com/books/2")));
/// assert!(Selector::new("", SelectorKind::Match).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Selector {
    kind: SelectorKind,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
pub(super) enum Matcher {
    /// `*`.
    All,
    /// One topic, byte for byte.
    Exact(Topic),
    /// Anything else: compiled once, interned by the hub.
    Pattern(Pattern),
}

/// A compiled matcher that is neither `*` nor exact.
#[derive(Debug, Clone)]
pub(super) enum Pattern {
    /// A draft-07 selector that is a valid URI template: it matches its own text exactly,
    /// and every topic the template matches.
    Template { text: Topic, template: UriTemplate },
    /// A draft-08 URL pattern.
    UrlPattern(UrlPattern),
}

/// What identifies an interned pattern: how it matches and its text (and, for a URL
/// pattern, the base it resolves against).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum PatternKey {
    Template(Topic),
    UrlPattern(UrlPattern),
}

impl Pattern {
    pub(super) fn key(&self) -> PatternKey {
        match self {
            Pattern::Template { text, .. } => PatternKey::Template(text.clone()),
            // Equal and hashed by source text and base; a clone is a reference count.
            Pattern::UrlPattern(p) => PatternKey::UrlPattern(p.clone()),
        }
    }

    pub(super) fn as_str(&self) -> &str {
        match self {
            Pattern::Template { text, .. } => text.as_str(),
            Pattern::UrlPattern(p) => p.as_str(),
        }
    }

    pub(super) fn matches(&self, topic: &Topic) -> bool {
        match self {
            Pattern::Template { text, template } => {
                text == topic || template.matches(topic.as_str())
            }
            Pattern::UrlPattern(p) => p.matches(topic.as_str()),
        }
    }
}

impl Selector {
    /// Reads `text` as a selector of kind `kind` (see [`SelectorKind`] for each rule). A
    /// draft-07 selector that is a URI template is compiled here, once.
    ///
    /// Refused when `text` could never match a topic under the rules of [`Topic::new`]
    /// (empty, longer than [`Topic::MAX_LEN`], a control character). URL patterns need the
    /// hub's URL: [`Selector::url_pattern`] ([`SelectorError::NeedsBaseUrl`] here).
    ///
    /// ```
    /// use ssecast::{Selector, SelectorKind, Topic};
    ///
    /// let topic = |t: &str| Topic::new(t).unwrap();
    /// let books = Selector::new("https://example.com/books/{id}", SelectorKind::Topic).unwrap();
    /// assert!(books.matches(&topic("https://example.com/books/1")));
    /// // A template also matches its own text, byte for byte (Mercure's step 2).
    /// assert!(books.matches(&topic("https://example.com/books/{id}")));
    /// // Not a valid template (an unclosed brace): exact, not an error.
    /// let broken = Selector::new("https://example.com/{id", SelectorKind::Topic).unwrap();
    /// assert!(broken.matches(&topic("https://example.com/{id")));
    /// // draft-08 `match=` is never a template.
    /// let exact = Selector::new("https://example.com/books/{id}", SelectorKind::Match).unwrap();
    /// assert!(!exact.matches(&topic("https://example.com/books/1")));
    /// ```
    pub fn new(text: &str, kind: SelectorKind) -> Result<Selector, SelectorError> {
        let topic = Topic::new(text)?;
        let matcher = match kind {
            SelectorKind::Exact => Matcher::Exact(topic),
            SelectorKind::MatchUrlPattern => return Err(SelectorError::NeedsBaseUrl),
            _ if text == "*" => Matcher::All,
            SelectorKind::Topic if UriTemplate::is_template(text) => {
                match UriTemplate::parse(text) {
                    Ok(template) => Matcher::Pattern(Pattern::Template {
                        text: topic,
                        template,
                    }),
                    Err(_) => Matcher::Exact(topic),
                }
            }
            SelectorKind::Topic | SelectorKind::Match => Matcher::Exact(topic),
        };
        Ok(Selector { kind, matcher })
    }

    /// Reads `text` as a draft-08 `match_urlpattern=` matcher ([`SelectorKind::MatchUrlPattern`]):
    /// `*`, or a URL pattern compiled against `base`, the hub's URL. Refused like
    /// [`Selector::new`], and when `text` is not a URL pattern this hub can run.
    ///
    /// ```
    /// use ssecast::{BaseUrl, Selector, Topic};
    ///
    /// let hub = BaseUrl::parse("https://example.com/.well-known/mercure").unwrap();
    /// let books = Selector::url_pattern("/books/:id", &hub).unwrap();
    /// assert!(books.matches(&Topic::new("https://example.com/books/1").unwrap()));
    /// assert!(!books.matches(&Topic::new("https://example.com/books/1/reviews").unwrap()));
    /// assert!(Selector::url_pattern("/books/{:id", &hub).is_err());
    /// ```
    pub fn url_pattern(text: &str, base: &BaseUrl) -> Result<Selector, SelectorError> {
        Topic::new(text)?;
        let matcher = if text == "*" {
            Matcher::All
        } else {
            let pattern = UrlPattern::parse(text, base).map_err(SelectorError::UrlPattern)?;
            Matcher::Pattern(Pattern::UrlPattern(pattern))
        };
        Ok(Selector {
            kind: SelectorKind::MatchUrlPattern,
            matcher,
        })
    }

    /// The selector that matches exactly `topic` ([`SelectorKind::Exact`]).
    pub fn exact(topic: Topic) -> Selector {
        Selector {
            kind: SelectorKind::Exact,
            matcher: Matcher::Exact(topic),
        }
    }

    /// The selector that matches every topic (`*` of the Mercure kinds).
    pub fn all() -> Selector {
        Selector {
            kind: SelectorKind::Topic,
            matcher: Matcher::All,
        }
    }

    /// The kind it was built with.
    pub fn kind(&self) -> SelectorKind {
        self.kind
    }

    /// The selector's text, as given.
    pub fn as_str(&self) -> &str {
        match &self.matcher {
            Matcher::All => "*",
            Matcher::Exact(topic) => topic.as_str(),
            Matcher::Pattern(p) => p.as_str(),
        }
    }

    /// Whether `topic` matches.
    pub fn matches(&self, topic: &Topic) -> bool {
        match &self.matcher {
            Matcher::All => true,
            Matcher::Exact(t) => t == topic,
            Matcher::Pattern(p) => p.matches(topic),
        }
    }

    /// The one topic this selector matches, when it matches exactly one (an exact selector,
    /// or a draft-07 selector that is not a template); `None` for `*` and patterns.
    ///
    /// ```
    /// use ssecast::{Selector, SelectorKind};
    /// let exact = Selector::new("/books/1", SelectorKind::Topic).unwrap();
    /// assert_eq!(exact.exact_topic().map(|t| t.as_str()), Some("/books/1"));
    /// let template = Selector::new("/books/{id}", SelectorKind::Topic).unwrap();
    /// assert_eq!(template.exact_topic(), None);
    /// ```
    pub fn exact_topic(&self) -> Option<&Topic> {
        match &self.matcher {
            Matcher::Exact(topic) => Some(topic),
            Matcher::All | Matcher::Pattern(_) => None,
        }
    }

    pub(super) fn matcher(&self) -> &Matcher {
        &self.matcher
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which private updates a subscriber may read. Public updates reach every subscriber that
/// selects them; a private one reaches a subscriber only when, besides selecting it, one of
/// its rights selectors matches one of the update's topics (canonical or alternate).
///
/// ```
/// use ssecast::{Rights, Selector, SelectorKind};
///
/// // A draft-07 token with `"mercure": {"subscribe": ["https://example.com/users/foo/{?topic}"]}`.
/// let rights = Rights::Selectors(vec![Selector::new(
///     "https://example.com/users/foo/{?topic}",
///     SelectorKind::Topic,
/// )
/// .unwrap()]);
/// # let _ = rights;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Rights {
    /// Public updates only (an anonymous subscriber, or one whose token grants nothing).
    #[default]
    None,
    /// Private updates one of whose topics one of these selectors matches. An empty list is
    /// [`Rights::None`]; a list holding `*` is [`Rights::All`].
    Selectors(Vec<Selector>),
    /// Every private update.
    All,
}
