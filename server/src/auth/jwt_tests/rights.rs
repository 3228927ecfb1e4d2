//! The rights claims of both drafts (draft-07 `mercure`, draft-08 access tokens and
//! `authorization_details`) and the keys of each role.

// benches/jwt.rs compiles these files with `cfg(test)` but without the test harness,
// which drops every `#[test]` function and leaves this import unused.
#[allow(unused_imports)]
use super::*;

#[test]
fn draft07_mercure_claim() {
    let v = verifier(&["--jwt-key", SECRET]);
    let not_array = |which| Err(TokenError::BadClaim(which));
    let p = "mercure.publish is not an array of strings";
    let s = "mercure.subscribe is not an array of strings";
    let many: Vec<String> = (0..257).map(|i| format!("/t/{i}")).collect();
    let cases: Vec<(Value, Result<&str, TokenError>)> = vec![
        (json!({}), Ok("V07 pub=[] sub=[]")),
        (json!({ "publish": [] }), Ok("V07 pub=[] sub=[]")),
        (
            json!({ "publish": null, "subscribe": null }),
            Ok("V07 pub=[] sub=[]"),
        ),
        (
            json!({ "publish": ["*", "https://example.com/books/{id}"], "subscribe": ["/a", "*"] }),
            Ok("V07 pub=[*,t:https://example.com/books/{id}] sub=[t:/a,*]"),
        ),
        (json!({ "publish": "/a" }), not_array(p)),
        (json!({ "publish": [1] }), not_array(p)),
        (json!({ "publish": ["/a", null] }), not_array(p)),
        (json!({ "subscribe": {"a": 1} }), not_array(s)),
        (
            json!({ "publish": [""] }),
            Err(TokenError::BadClaim("a selector is empty")),
        ),
        (
            json!({ "publish": ["/a\n/b"] }),
            Err(TokenError::BadClaim("a selector holds a control character")),
        ),
        (
            json!({ "publish": ["x".repeat(2049)] }),
            Err(TokenError::BadClaim("a selector is longer than 2048 bytes")),
        ),
        (
            json!({ "subscribe": many }),
            Err(TokenError::BadClaim(
                "the token has more than 256 selectors",
            )),
        ),
        (
            json!("publish"),
            Err(TokenError::BadClaim("the mercure claim is not an object")),
        ),
        (
            json!([]),
            Err(TokenError::BadClaim("the mercure claim is not an object")),
        ),
    ];
    for (mercure, expected) in cases {
        check(&v, Role::Publisher, &hs(None, claims07(mercure)), expected);
    }
    let payload = json!({ "user": "alice", "groups": [1, 2] });
    let claims = v
        .verify(
            Role::Subscriber,
            &hs(None, claims07(json!({ "payload": payload }))),
            NOW,
        )
        .unwrap();
    assert_eq!(claims.payload, Payload::Draft07(payload.clone()));
    assert_eq!(claims.payload_for(|_| unreachable!()), Some(&payload));
    let claims = v.verify(
        Role::Subscriber,
        &hs(None, claims07(json!({ "payload": null }))),
        NOW,
    );
    assert_eq!(claims.unwrap().payload, Payload::None);
}

#[test]
fn draft08_access_tokens() {
    let v = v08();
    let ok = Ok("V08 pub=[] sub=[e:/books/1]");
    let sub = detail(json!(["subscribe"]), json!([{ "match": "/books/1" }]));
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims08(sub.clone());
        edit(&mut c);
        c
    };
    let cases: Vec<(Option<&str>, Value, Result<&str, TokenError>)> = vec![
        (Some("at+jwt"), with(&|_| {}), ok),
        (Some("AT+JWT"), with(&|_| {}), ok),
        (Some("application/at+jwt"), with(&|_| {}), ok),
        (Some("Application/At+Jwt"), with(&|_| {}), ok),
        (None, with(&|_| {}), Err(TokenError::WrongType)),
        (Some("JWT"), with(&|_| {}), Err(TokenError::WrongType)),
        (Some("at+jwt "), with(&|_| {}), Err(TokenError::WrongType)),
        (
            Some("application/jwt"),
            with(&|_| {}),
            Err(TokenError::WrongType),
        ),
        (
            Some("x-application/at+jwt"),
            with(&|_| {}),
            Err(TokenError::WrongType),
        ),
        (
            Some("application/"),
            with(&|_| {}),
            Err(TokenError::WrongType),
        ),
        (
            Some("at+jwt"),
            with(&|c| drop(c.as_object_mut().unwrap().remove("iss"))),
            Err(TokenError::MissingClaim("iss")),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["iss"] = json!("https://evil.example")),
            Err(TokenError::WrongIssuer),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["iss"] = json!(format!("{ISS}/"))),
            Err(TokenError::WrongIssuer),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["iss"] = json!([ISS])),
            Err(TokenError::WrongIssuer),
        ),
        (
            Some("at+jwt"),
            with(&|c| drop(c.as_object_mut().unwrap().remove("aud"))),
            Err(TokenError::MissingClaim("aud")),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["aud"] = json!(["https://other.example", AUD])),
            ok,
        ),
        (
            Some("at+jwt"),
            with(&|c| c["aud"] = json!(["https://other.example"])),
            Err(TokenError::WrongAudience),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["aud"] = json!("https://hub.example")),
            Err(TokenError::WrongAudience),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["aud"] = json!([])),
            Err(TokenError::WrongAudience),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["aud"] = json!(7)),
            Err(TokenError::BadClaim("aud is not a string or strings")),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["aud"] = json!([AUD, 7])),
            Err(TokenError::BadClaim("aud is not a string or strings")),
        ),
        (
            Some("at+jwt"),
            with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
            Err(TokenError::MissingClaim("exp")),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["exp"] = json!(NOW - 60)),
            Err(TokenError::Expired),
        ),
        (
            Some("at+jwt"),
            with(&|c| c["sub"] = json!(1)),
            Err(TokenError::BadClaim("sub is not a string")),
        ),
    ];
    for (typ, claims, expected) in cases {
        check(&v, Role::Subscriber, &hs(typ, claims), expected);
    }
    // Without --jwt-issuer/--jwt-audience no draft-08 token is accepted.
    let v07 = verifier(&["--jwt-key", SECRET]);
    check(
        &v07,
        Role::Subscriber,
        &hs(Some("at+jwt"), claims08(sub.clone())),
        Err(TokenError::Draft08Off),
    );
    // A typical ES256 access token.
    let k = keys();
    let es = verifier(&[
        "--jwt-key",
        &k.p256.public,
        "--jwt-issuer",
        ISS,
        "--jwt-audience",
        AUD,
    ]);
    let token = sign(Alg::Es256, &k.p256.sign, Some("at+jwt"), &claims08(sub));
    let claims = es.verify(Role::Subscriber, &token, NOW).unwrap();
    assert_eq!(brief(&claims), "V08 pub=[] sub=[e:/books/1]");
    assert_eq!(
        (claims.expires, claims.subject.as_deref()),
        (Some(NOW + 60), Some("urn:uuid:test"))
    );
}

#[test]
fn draft08_authorization_details() {
    let v = v08();
    let t = "https://mercure.rocks/authorization-detail";
    let bad = |reason| Err(TokenError::BadClaim(reason));
    let actions = "a Mercure authorization detail's actions is not a non-empty array of strings";
    let topics = "a Mercure authorization detail's topics is not a non-empty array of objects";
    let cases: Vec<(Value, Result<&str, TokenError>)> = vec![
        (json!([]), Ok("V08 pub=[] sub=[]")),
        (
            json!([{ "type": t, "actions": ["publish", "subscribe"], "topics": [
                { "match": "/a" },
                { "match": "/b", "match_type": "exact" },
                { "match": "/books/:id", "match_type": "urlpattern" },
                { "match": "*", "match_type": "urlpattern" },
            ]}]),
            Ok("V08 pub=[e:/a,e:/b,u:/books/:id,*] sub=[e:/a,e:/b,u:/books/:id,*]"),
        ),
        (
            json!([
                { "type": t, "actions": ["publish"], "topics": [{ "match": "/p" }] },
                { "type": "https://other.example/detail", "actions": [1], "topics": "anything" },
                { "type": t, "actions": ["subscribe", "presence"], "topics": [{ "match": "/s" }] },
                { "type": t, "actions": ["future-action"], "topics": [{ "match": "/f" }] },
            ]),
            Ok("V08 pub=[e:/p] sub=[e:/s]"),
        ),
        (
            json!({ "type": t }),
            bad("authorization_details is not an array"),
        ),
        (
            json!(["detail"]),
            bad("an authorization_details entry is not an object"),
        ),
        (
            json!([{ "actions": ["publish"], "topics": [{ "match": "/a" }] }]),
            bad("an authorization_details entry has no string type"),
        ),
        (
            json!([{ "type": 1 }]),
            bad("an authorization_details entry has no string type"),
        ),
        (
            json!([{ "type": t, "topics": [{ "match": "/a" }] }]),
            bad(actions),
        ),
        (
            json!([{ "type": t, "actions": [], "topics": [{ "match": "/a" }] }]),
            bad(actions),
        ),
        (
            json!([{ "type": t, "actions": ["publish", 2], "topics": [{ "match": "/a" }] }]),
            bad(actions),
        ),
        (
            json!([{ "type": t, "actions": "publish", "topics": [{ "match": "/a" }] }]),
            bad(actions),
        ),
        (json!([{ "type": t, "actions": ["publish"] }]), bad(topics)),
        (
            json!([{ "type": t, "actions": ["publish"], "topics": [] }]),
            bad(topics),
        ),
        (
            json!([{ "type": t, "actions": ["publish"], "topics": ["/a"] }]),
            bad(topics),
        ),
        (
            json!([{ "type": t, "actions": ["publish"], "topics": [{ "pattern": "/a" }] }]),
            bad("a topic matcher has no string match"),
        ),
        (
            json!([{ "type": t, "actions": ["publish"], "topics": [{ "match": "/a", "match_type": "regex" }] }]),
            bad("a topic matcher's match_type is not exact or urlpattern"),
        ),
        (
            json!([{ "type": t, "actions": ["publish"], "topics": [{ "match": "/a", "match_type": "Exact" }] }]),
            bad("a topic matcher's match_type is not exact or urlpattern"),
        ),
        (
            json!([{ "type": t, "actions": ["publish"], "topics": [{ "match": "/a", "match_type": null }] }]),
            bad("a topic matcher's match_type is not exact or urlpattern"),
        ),
        (
            json!([{ "type": t, "actions": ["publish"], "topics": [{ "match": "" }] }]),
            bad("a selector is empty"),
        ),
        (
            json!([{ "type": t, "actions": ["subscribe"], "topics": [{ "match": "/a" }], "payload": "x" }]),
            bad("a Mercure authorization detail's payload is not an object"),
        ),
        // One bad entry refuses the whole token, even after good ones.
        (
            json!([
                { "type": t, "actions": ["publish"], "topics": [{ "match": "/ok" }] },
                { "type": t, "actions": ["publish"], "topics": [{ "match": "/a", "match_type": "glob" }] },
            ]),
            bad("a topic matcher's match_type is not exact or urlpattern"),
        ),
        (
            json!(vec![json!({ "type": "other" }); 65]),
            bad("authorization_details has more than 64 entries"),
        ),
    ];
    for (details, expected) in cases {
        check(
            &v,
            Role::Publisher,
            &hs(Some("at+jwt"), claims08(details)),
            expected,
        );
    }
}

#[test]
fn draft08_payloads_follow_the_first_matching_detail() {
    let t = "https://mercure.rocks/authorization-detail";
    let details = json!([
        { "type": t, "actions": ["subscribe"], "topics": [{ "match": "/foo" }], "payload": { "n": 1 } },
        { "type": t, "actions": ["subscribe"], "topics": [{ "match": "/bar/:id", "match_type": "urlpattern" }], "payload": { "n": 2 } },
        { "type": t, "actions": ["publish"], "topics": [{ "match": "/pub" }], "payload": { "n": 9 } },
        { "type": t, "actions": ["subscribe"], "topics": [{ "match": "*" }], "payload": { "n": 3 } },
    ]);
    let claims = v08()
        .verify(
            Role::Subscriber,
            &hs(Some("at+jwt"), claims08(details)),
            NOW,
        )
        .unwrap();
    // The route's matcher, reduced to what this test needs.
    let payload = |matcher: &str| {
        claims
            .payload_for(|s| match s.kind() {
                SelectorKind::Any => true,
                SelectorKind::UrlPattern => matcher.starts_with("/bar/"),
                _ => s.text() == matcher,
            })
            .cloned()
    };
    assert_eq!(payload("/foo"), Some(json!({ "n": 1 })));
    assert_eq!(payload("/bar/7"), Some(json!({ "n": 2 })));
    assert_eq!(payload("/pub"), Some(json!({ "n": 3 })));
    assert_eq!(payload("/other"), Some(json!({ "n": 3 })));
}

#[test]
fn rights_claims_tell_the_drafts_apart() {
    let v = v08();
    let m = json!({ "publish": ["/a"] });
    let d = detail(json!(["publish"]), json!([{ "match": "/a" }]));
    let mut both = claims08(d.clone());
    both["mercure"] = m.clone();
    let mut neither = claims08(json!(null));
    neither
        .as_object_mut()
        .unwrap()
        .remove("authorization_details");
    let cases: Vec<(Role, Option<&str>, Value, Result<&str, TokenError>)> = vec![
        (
            Role::Publisher,
            None,
            claims07(m.clone()),
            Ok("V07 pub=[t:/a] sub=[]"),
        ),
        // A draft-07 token is not held to draft-08's typ, even when it says at+jwt.
        (
            Role::Publisher,
            Some("at+jwt"),
            claims07(m.clone()),
            Ok("V07 pub=[t:/a] sub=[]"),
        ),
        (
            Role::Publisher,
            Some("at+jwt"),
            claims08(d.clone()),
            Ok("V08 pub=[e:/a] sub=[]"),
        ),
        (
            Role::Publisher,
            Some("at+jwt"),
            both.clone(),
            Err(TokenError::BothClaims),
        ),
        (
            Role::Subscriber,
            Some("at+jwt"),
            both,
            Err(TokenError::BothClaims),
        ),
        (
            Role::Publisher,
            Some("at+jwt"),
            neither.clone(),
            Err(TokenError::NoRights),
        ),
        (
            Role::Publisher,
            None,
            json!({ "exp": NOW + 60 }),
            Err(TokenError::NoRights),
        ),
        (
            Role::Publisher,
            None,
            json!({ "mercure": null }),
            Err(TokenError::NoRights),
        ),
        // A subscriber needs no rights: it sees public updates, and the typ says which draft.
        (
            Role::Subscriber,
            Some("at+jwt"),
            neither,
            Ok("V08 pub=[] sub=[]"),
        ),
        (
            Role::Subscriber,
            Some("at+jwt"),
            json!({ "exp": NOW + 60 }),
            Err(TokenError::MissingClaim("iss")),
        ),
        (Role::Subscriber, None, json!({}), Ok("V07 pub=[] sub=[]")),
    ];
    for (role, typ, claims, expected) in cases {
        check(&v, role, &hs(typ, claims), expected);
    }
    // A draft-07 token's aud must name the hub when --jwt-audience says what it is called.
    let mut other = claims07(m.clone());
    other["aud"] = json!("https://other.example");
    let mut ours = claims07(m.clone());
    ours["aud"] = json!([AUD]);
    check(
        &v,
        Role::Publisher,
        &hs(None, other.clone()),
        Err(TokenError::WrongAudience),
    );
    check(
        &v,
        Role::Publisher,
        &hs(None, ours),
        Ok("V07 pub=[t:/a] sub=[]"),
    );
    let plain = verifier(&["--jwt-key", SECRET]);
    check(
        &plain,
        Role::Publisher,
        &hs(None, other),
        Ok("V07 pub=[t:/a] sub=[]"),
    );
}

#[test]
fn roles_have_their_own_keys() {
    let token = |secret: &str| {
        sign(
            Alg::Hs256,
            &EncodingKey::from_secret(secret.as_bytes()),
            None,
            &claims07(json!({ "publish": ["*"] })),
        )
    };
    let (a, b) = (
        "publisher-test-secret-0123456789abcdef",
        "subscriber-test-secret-0123456789abcdef",
    );
    let v = verifier(&["--jwt-key", a, "--subscriber-jwt-key", b]);
    check(&v, Role::Publisher, &token(a), Ok("V07 pub=[*] sub=[]"));
    check(
        &v,
        Role::Subscriber,
        &token(a),
        Err(TokenError::BadSignature),
    );
    check(&v, Role::Subscriber, &token(b), Ok("V07 pub=[*] sub=[]"));
    check(
        &v,
        Role::Publisher,
        &token(b),
        Err(TokenError::BadSignature),
    );
    let only = verifier(&["--publisher-jwt-key", a]);
    check(
        &only,
        Role::Subscriber,
        &token(a),
        Err(TokenError::NoKey(Role::Subscriber)),
    );
    assert!(only.verifies(Role::Publisher) && !only.verifies(Role::Subscriber));
    assert!(only.admits_anonymous(Role::Subscriber) && !only.admits_anonymous(Role::Publisher));
    assert!(!v.admits_anonymous(Role::Subscriber));
    assert!(verifier(&["--jwt-key", a, "--anonymous"]).admits_anonymous(Role::Subscriber));
}
