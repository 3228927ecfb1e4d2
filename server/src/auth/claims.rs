//! What a verified token grants: the Mercure rights of draft-07 (`mercure.publish`,
//! `mercure.subscribe`, `mercure.payload`) and of draft-08 (`authorization_details` entries of
//! type [`DETAIL_TYPE`]), read into one shape, [`Claims`].
//!
//! Both drafts refuse a token whose rights do not parse as a whole (no partial acceptance:
//! draft-08 requires it, and granting less than the token says would surprise just as much in
//! draft-07), and both are bounded: at most [`MAX_SELECTORS`] selectors of at most
//! [`MAX_SELECTOR_BYTES`] bytes, at most [`MAX_DETAILS`] authorization details.

// Built for the Mercure routes, which the lead wires; until then not everything is called.
#![allow(dead_code)]

use serde_json::{Map, Value};

use super::error::TokenError;
use super::jwt::Draft;

/// The `type` of a Mercure authorization detail (draft-08), compared byte for byte.
pub(crate) const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// Selectors one token may carry, publish and subscribe together.
pub(crate) const MAX_SELECTORS: usize = 256;
/// Bytes in one selector.
pub(crate) const MAX_SELECTOR_BYTES: usize = 2048;
/// Entries in `authorization_details`.
pub(crate) const MAX_DETAILS: usize = 64;

/// The rights and facts of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claims {
    /// Which draft the token is: a `mercure` claim is draft-07, `authorization_details`
    /// draft-08; a token with neither is draft-08 when its `typ` is `at+jwt`.
    pub(crate) draft: Draft,
    /// Selectors the token may publish to: every topic of an update must match one. Empty:
    /// nothing may be published (the claim was missing or empty).
    pub(crate) publish: Vec<SelectorSpec>,
    /// Selectors whose private updates the token may receive: one topic of the update must
    /// match one. Empty: public updates only.
    pub(crate) subscribe: Vec<SelectorSpec>,
    /// User data for the subscriptions API.
    pub(crate) payload: Payload,
    /// `exp`, in Unix seconds: a subscriber's stream closes then (the token is refused from
    /// that second on). Always set for draft-08.
    pub(crate) expires: Option<u64>,
    /// `nbf`, in Unix seconds.
    pub(crate) not_before: Option<u64>,
    /// `sub`, if the token has one.
    pub(crate) subject: Option<String>,
}

/// A topic selector from a token: what it says and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SelectorSpec {
    kind: SelectorKind,
    text: String,
}

/// How a token's selector matches topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SelectorKind {
    /// `*`: every topic, in both drafts (draft-08 recognizes it before any `match_type`).
    Any,
    /// A draft-07 topic selector: a topic equal to it, or one its RFC 6570 URI template could
    /// expand to.
    Template,
    /// draft-08 `match_type: exact` (the default): byte-for-byte equality.
    Exact,
    /// draft-08 `match_type: urlpattern`: a WHATWG URL Pattern (relative ones against the
    /// hub's URL).
    UrlPattern,
}

impl SelectorSpec {
    /// A selector of `kind` (`*` is always [`SelectorKind::Any`]), or the reason it is
    /// refused: empty, too long, or holding a control character.
    pub(crate) fn new(kind: SelectorKind, text: &str) -> Result<SelectorSpec, TokenError> {
        if text.is_empty() {
            return Err(TokenError::BadClaim("a selector is empty"));
        }
        if text.len() > MAX_SELECTOR_BYTES {
            return Err(TokenError::BadClaim("a selector is longer than 2048 bytes"));
        }
        if text.chars().any(char::is_control) {
            return Err(TokenError::BadClaim("a selector holds a control character"));
        }
        let kind = if text == "*" { SelectorKind::Any } else { kind };
        Ok(SelectorSpec {
            kind,
            text: text.to_owned(),
        })
    }

    /// How it matches.
    pub(crate) fn kind(&self) -> SelectorKind {
        self.kind
    }

    /// What it says, as the token spelled it.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// User data a token attaches to its subscriptions (the subscriptions API's `payload`).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Payload {
    /// None given.
    #[default]
    None,
    /// draft-07 `mercure.payload`: any JSON, for every subscription of the token.
    Draft07(Value),
    /// draft-08: the `payload` objects of `subscribe` details, in token order, each with its
    /// detail's topics; a subscription gets the first whose topics match its own matcher.
    Draft08(Vec<DetailPayload>),
}

/// One draft-08 `subscribe` detail's payload and the topics it applies to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DetailPayload {
    pub(crate) topics: Vec<SelectorSpec>,
    pub(crate) payload: Value,
}

impl Claims {
    /// The payload for a subscription. `matches` tells whether a token selector matches the
    /// subscription's own matcher string treated as a topic (draft-08, section "Payloads");
    /// it is not called for draft-07, whose payload goes with every subscription.
    pub(crate) fn payload_for(
        &self,
        mut matches: impl FnMut(&SelectorSpec) -> bool,
    ) -> Option<&Value> {
        match &self.payload {
            Payload::None => None,
            Payload::Draft07(v) => Some(v),
            Payload::Draft08(details) => details
                .iter()
                .find(|d| d.topics.iter().any(&mut matches))
                .map(|d| &d.payload),
        }
    }

    /// Whether the token may publish an update with these topics: every one must match a
    /// publish selector (`matches` is the route's matcher). `Err` is the 403 to answer.
    pub(crate) fn check_publish<'t>(
        &self,
        topics: impl IntoIterator<Item = &'t str>,
        mut matches: impl FnMut(&SelectorSpec, &str) -> bool,
    ) -> Result<(), TokenError> {
        if self.publish.is_empty() {
            return Err(TokenError::NoPublishRights);
        }
        for topic in topics {
            if !self.publish.iter().any(|s| matches(s, topic)) {
                return Err(TokenError::TopicNotAllowed);
            }
        }
        Ok(())
    }
}

/// The rights of a token: `mercure` (draft-07) or `authorization_details` (draft-08),
/// whichever `draft` says it has.
pub(crate) struct Rights {
    pub(crate) publish: Vec<SelectorSpec>,
    pub(crate) subscribe: Vec<SelectorSpec>,
    pub(crate) payload: Payload,
}

impl Rights {
    pub(crate) fn none() -> Rights {
        Rights {
            publish: Vec::new(),
            subscribe: Vec::new(),
            payload: Payload::None,
        }
    }

    fn count(&self) -> usize {
        self.publish.len() + self.subscribe.len()
    }

    fn push(&mut self, to_publish: bool, s: SelectorSpec) -> Result<(), TokenError> {
        if self.count() >= MAX_SELECTORS {
            return Err(TokenError::BadClaim(
                "the token has more than 256 selectors",
            ));
        }
        if to_publish {
            self.publish.push(s);
        } else {
            self.subscribe.push(s);
        }
        Ok(())
    }
}

/// Reads draft-07's `mercure` claim: `{publish?: [string], subscribe?: [string], payload?}`.
pub(crate) fn parse_mercure(claim: &Value) -> Result<Rights, TokenError> {
    let Value::Object(claim) = claim else {
        return Err(TokenError::BadClaim("the mercure claim is not an object"));
    };
    let mut rights = Rights::none();
    for (key, to_publish, reason) in [
        (
            "publish",
            true,
            "mercure.publish is not an array of strings",
        ),
        (
            "subscribe",
            false,
            "mercure.subscribe is not an array of strings",
        ),
    ] {
        match claim.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(selectors)) => {
                for s in selectors {
                    let Value::String(s) = s else {
                        return Err(TokenError::BadClaim(reason));
                    };
                    rights.push(to_publish, SelectorSpec::new(SelectorKind::Template, s)?)?;
                }
            }
            Some(_) => return Err(TokenError::BadClaim(reason)),
        }
    }
    if let Some(payload) = claim.get("payload").filter(|p| !p.is_null()) {
        rights.payload = Payload::Draft07(payload.clone());
    }
    Ok(rights)
}

/// Reads draft-08's `authorization_details` (RFC 9396): the Mercure details among them, each
/// `{type, actions: [string], topics: [{match, match_type?}], payload?: object}`. Details of
/// other types are someone else's and ignored; unknown actions grant nothing; anything else
/// malformed refuses the whole token.
pub(crate) fn parse_details(claim: &Value) -> Result<Rights, TokenError> {
    let Value::Array(details) = claim else {
        return Err(TokenError::BadClaim(
            "authorization_details is not an array",
        ));
    };
    if details.len() > MAX_DETAILS {
        return Err(TokenError::BadClaim(
            "authorization_details has more than 64 entries",
        ));
    }
    let mut rights = Rights::none();
    let mut payloads = Vec::new();
    for detail in details {
        let Value::Object(detail) = detail else {
            return Err(TokenError::BadClaim(
                "an authorization_details entry is not an object",
            ));
        };
        match detail.get("type") {
            Some(Value::String(t)) if t == DETAIL_TYPE => {}
            Some(Value::String(_)) => continue,
            _ => {
                return Err(TokenError::BadClaim(
                    "an authorization_details entry has no string type",
                ))
            }
        }
        let (publish, subscribe) = actions(detail)?;
        let topics = topics(detail)?;
        let payload = match detail.get("payload") {
            None | Some(Value::Null) => None,
            Some(p @ Value::Object(_)) => Some(p.clone()),
            Some(_) => {
                return Err(TokenError::BadClaim(
                    "a Mercure authorization detail's payload is not an object",
                ))
            }
        };
        if publish {
            for t in &topics {
                rights.push(true, t.clone())?;
            }
        }
        if subscribe {
            if let Some(payload) = payload {
                payloads.push(DetailPayload {
                    topics: topics.clone(),
                    payload,
                });
            }
            for t in topics {
                rights.push(false, t)?;
            }
        }
    }
    if !payloads.is_empty() {
        rights.payload = Payload::Draft08(payloads);
    }
    Ok(rights)
}

/// Whether a detail's `actions` grant publish and subscribe.
fn actions(detail: &Map<String, Value>) -> Result<(bool, bool), TokenError> {
    let reason = "a Mercure authorization detail's actions is not a non-empty array of strings";
    let Some(Value::Array(actions)) = detail.get("actions") else {
        return Err(TokenError::BadClaim(reason));
    };
    if actions.is_empty() {
        return Err(TokenError::BadClaim(reason));
    }
    let (mut publish, mut subscribe) = (false, false);
    for action in actions {
        match action {
            Value::String(a) if a == "publish" => publish = true,
            Value::String(a) if a == "subscribe" => subscribe = true,
            // Actions of later specifications grant nothing here, and refuse nothing.
            Value::String(_) => {}
            _ => return Err(TokenError::BadClaim(reason)),
        }
    }
    Ok((publish, subscribe))
}

/// A detail's `topics`: `[{match: string, match_type?: "exact" | "urlpattern"}]`, non-empty.
fn topics(detail: &Map<String, Value>) -> Result<Vec<SelectorSpec>, TokenError> {
    let reason = "a Mercure authorization detail's topics is not a non-empty array of objects";
    let Some(Value::Array(topics)) = detail.get("topics") else {
        return Err(TokenError::BadClaim(reason));
    };
    if topics.is_empty() {
        return Err(TokenError::BadClaim(reason));
    }
    topics
        .iter()
        .map(|topic| {
            let Value::Object(topic) = topic else {
                return Err(TokenError::BadClaim(reason));
            };
            let Some(Value::String(text)) = topic.get("match") else {
                return Err(TokenError::BadClaim("a topic matcher has no string match"));
            };
            let kind = match topic.get("match_type") {
                None => SelectorKind::Exact,
                Some(Value::String(t)) if t == "exact" => SelectorKind::Exact,
                Some(Value::String(t)) if t == "urlpattern" => SelectorKind::UrlPattern,
                Some(_) => {
                    return Err(TokenError::BadClaim(
                        "a topic matcher's match_type is not exact or urlpattern",
                    ))
                }
            };
            SelectorSpec::new(kind, text)
        })
        .collect()
}
