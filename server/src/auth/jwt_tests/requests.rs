//! Whole requests: where the token comes from, cookies, authorizing subscribes and publishes,
//! statuses and challenges.

use super::*;

type Expected = Result<Option<(Source, &'static str)>, TokenError>;

#[test]
fn token_sources_in_each_drafts_order() {
    use Source::*;
    const C07: &str = "mercureAuthorization";
    const C08: &str = "__Secure-mercure_access_token";
    let none = None::<Draft>;
    let (v7, v8) = (Some(Draft::V07), Some(Draft::V08));
    let cases: Vec<(Option<Draft>, Option<&str>, Option<&str>, &[&str], Expected)> = vec![
        (
            v7,
            Some("Bearer h"),
            Some("q"),
            &["mercureAuthorization=c"],
            Ok(Some((Header, "h"))),
        ),
        (
            v7,
            None,
            Some("q"),
            &["mercureAuthorization=c"],
            Ok(Some((Query, "q"))),
        ),
        (
            v7,
            None,
            None,
            &["mercureAuthorization=c"],
            Ok(Some((Cookie, "c"))),
        ),
        (v7, None, None, &[], Ok(None)),
        (
            v7,
            None,
            Some(""),
            &["mercureAuthorization=c"],
            Ok(Some((Cookie, "c"))),
        ),
        (
            v7,
            None,
            None,
            &["__Secure-mercure_access_token=c8"],
            Ok(None),
        ),
        (v7, Some("bearer   h "), None, &[], Ok(Some((Header, "h")))),
        (v7, Some("BEARER\th"), None, &[], Ok(Some((Header, "h")))),
        // A header with another scheme is not a token; Bearer without one token is refused,
        // and then the cookie is not looked at.
        (
            v7,
            Some("Basic dXNlcjpwdw=="),
            None,
            &["mercureAuthorization=c"],
            Ok(Some((Cookie, "c"))),
        ),
        (
            v7,
            Some("Bearer"),
            None,
            &["mercureAuthorization=c"],
            Err(TokenError::BadPresentation),
        ),
        (
            v7,
            Some("Bearer "),
            Some("q"),
            &[],
            Err(TokenError::BadPresentation),
        ),
        (
            v7,
            Some("Bearer a b"),
            None,
            &[],
            Err(TokenError::BadPresentation),
        ),
        (
            v8,
            Some("Bearer h"),
            None,
            &["__Secure-mercure_access_token=c8"],
            Ok(Some((Header, "h"))),
        ),
        (
            v8,
            None,
            None,
            &["__Secure-mercure_access_token=c8"],
            Ok(Some((Cookie, "c8"))),
        ),
        (v8, None, None, &["mercureAuthorization=c"], Ok(None)),
        (v8, None, Some("q"), &[], Err(TokenError::InUrl)),
        (v8, Some("Bearer h"), Some("q"), &[], Err(TokenError::InUrl)),
        (none, None, Some("q"), &[], Ok(Some((Query, "q")))),
        (
            none,
            None,
            None,
            &["__Secure-mercure_access_token=c8"],
            Ok(Some((Cookie, "c8"))),
        ),
        (
            none,
            None,
            None,
            &["__Secure-mercure_access_token=c8; mercureAuthorization=c"],
            Ok(Some((Cookie, "c"))),
        ),
    ];
    for (draft, auth, query, cookies, expected) in cases {
        let names: &[&str] = match draft {
            Some(Draft::V07) => &[C07],
            Some(Draft::V08) => &[C08],
            None => &[C07, C08],
        };
        let got =
            find_token(draft, auth, query, cookies, names).map(|f| f.map(|f| (f.source, f.token)));
        assert_eq!(got, expected, "{draft:?} {auth:?} {query:?} {cookies:?}");
        let via = verifier(&["--jwt-key", SECRET]).find_token(draft, auth, query, cookies);
        assert_eq!(via.map(|f| f.map(|f| (f.source, f.token))), expected);
    }
}

#[test]
fn cookie_parsing() {
    let n = "mercureAuthorization";
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["mercureAuthorization=tok"], Some("tok")),
        (&["a=1; mercureAuthorization=tok; b=2"], Some("tok")),
        (&["a=1;mercureAuthorization=tok;b=2"], Some("tok")),
        (&["  mercureAuthorization = tok ;"], Some("tok")),
        (&["mercureAuthorization=\"tok\""], Some("tok")),
        (&["mercureAuthorization=\"\""], None),
        (&["mercureAuthorization=\"tok"], Some("\"tok")),
        (&["mercureAuthorization=a=b"], Some("a=b")),
        (&["mercureAuthorization="], None),
        (
            &["mercureAuthorization=; mercureAuthorization=second"],
            Some("second"),
        ),
        (
            &["mercureAuthorization=first; mercureAuthorization=second"],
            Some("first"),
        ),
        (&["a=1", "mercureAuthorization=tok"], Some("tok")),
        (&["xmercureAuthorization=tok"], None),
        (&["mercureAuthorizationx=tok"], None),
        (&["mercureauthorization=tok"], None),
        (&["mercureAuthorization"], None),
        (&["a=mercureAuthorization=tok"], None),
        (&[""], None),
        (&[], None),
    ];
    for &(headers, expected) in cases {
        assert_eq!(cookie(headers, n), expected, "{headers:?}");
    }
}

#[test]
fn authorize_whole_requests() {
    let v = v08();
    let t07 = hs(None, claims07(json!({ "subscribe": ["/a"] })));
    let t08 = hs(
        Some("at+jwt"),
        claims08(detail(json!(["subscribe"]), json!([{ "match": "/a" }]))),
    );
    let cookie07 = format!("mercureAuthorization={t07}");
    let cookie08 = format!("__Secure-mercure_access_token={t08}");
    let bearer08 = format!("Bearer {t08}");
    let run = |role,
               draft,
               authorization: Option<&str>,
               query: Option<&str>,
               cookies: &[&str],
               origin| {
        let p = Presented {
            draft,
            authorization,
            query,
            cookies,
            origin,
        };
        let got = v.authorize(role, &p, NOW);
        if let Err(e) = &got {
            for token in [&t07, &t08] {
                assert_secret_free(&e.to_string(), token);
            }
        }
        got.map(|a| a.map(|a| (a.source, brief(&a.claims))))
    };
    let sub = Role::Subscriber;
    let (v7, v8) = (Some(Draft::V07), Some(Draft::V08));
    let ok07 = |s| Ok(Some((s, "V07 pub=[] sub=[t:/a]".to_owned())));
    let ok08 = |s| Ok(Some((s, "V08 pub=[] sub=[e:/a]".to_owned())));
    assert_eq!(
        run(sub, v7, None, None, &[&cookie07], None),
        ok07(Source::Cookie)
    );
    assert_eq!(
        run(sub, v7, None, Some(&t07), &[], None),
        ok07(Source::Query)
    );
    assert_eq!(
        run(sub, v8, None, None, &[&cookie08], None),
        ok08(Source::Cookie)
    );
    assert_eq!(
        run(sub, None, Some(&bearer08), None, &[], None),
        ok08(Source::Header)
    );
    // A bad header wins over a good cookie.
    assert_eq!(
        run(sub, v7, Some("Bearer not-a-jwt"), None, &[&cookie07], None),
        Err(TokenError::Malformed)
    );
    // A draft-08 token in the URL, when the parameters did not say draft-08.
    assert_eq!(
        run(sub, None, None, Some(&t08), &[], None),
        Err(TokenError::InUrl)
    );
    assert_eq!(
        run(sub, v8, None, Some(&t08), &[], None),
        Err(TokenError::InUrl)
    );
    // Token and parameters of different drafts.
    let mismatch = |token, request| Err(TokenError::DraftMismatch { token, request });
    assert_eq!(
        run(sub, v8, Some(&format!("Bearer {t07}")), None, &[], None),
        mismatch(Draft::V07, Draft::V08)
    );
    assert_eq!(
        run(sub, v7, Some(&bearer08), None, &[], None),
        mismatch(Draft::V08, Draft::V07)
    );
    // No token.
    let missing = |hint| Err(TokenError::Missing(hint));
    assert_eq!(
        run(sub, v7, None, None, &[], None),
        missing(MissingHint::Nothing)
    );
    assert_eq!(
        run(sub, v7, None, None, &[], Some("https://app.example")),
        missing(MissingHint::CrossSiteNoCookie)
    );
    assert_eq!(
        run(
            sub,
            v7,
            None,
            None,
            &["theme=dark"],
            Some("https://app.example")
        ),
        missing(MissingHint::OtherCookies)
    );
    assert_eq!(
        run(sub, v8, None, None, &[&cookie07], None),
        missing(MissingHint::OtherCookies)
    );
    assert_eq!(
        run(Role::Publisher, None, None, None, &[], None),
        missing(MissingHint::Nothing)
    );
    let anonymous = verifier(&["--jwt-key", SECRET, "--anonymous"]);
    let p = Presented {
        draft: v7,
        ..Presented::default()
    };
    assert_eq!(anonymous.authorize(sub, &p, NOW), Ok(None));
    assert_eq!(
        anonymous.authorize(Role::Publisher, &p, NOW),
        Err(TokenError::Missing(MissingHint::Nothing))
    );
}

#[test]
fn publish_checks() {
    let v = verifier(&["--jwt-key", SECRET]);
    let claims = |publish: Value| {
        v.verify(
            Role::Publisher,
            &hs(None, claims07(json!({ "publish": publish }))),
            NOW,
        )
        .unwrap()
    };
    let matches =
        |s: &SelectorSpec, topic: &str| s.kind() == SelectorKind::Any || s.text() == topic;
    let c = claims(json!(["/a", "/b"]));
    assert_eq!(c.check_publish(["/a"], matches), Ok(()));
    assert_eq!(c.check_publish(["/a", "/b"], matches), Ok(()));
    assert_eq!(
        c.check_publish(["/a", "/c"], matches),
        Err(TokenError::TopicNotAllowed)
    );
    assert_eq!(claims(json!(["*"])).check_publish(["/x"], matches), Ok(()));
    assert_eq!(
        claims(json!([])).check_publish(["/a"], matches),
        Err(TokenError::NoPublishRights)
    );
}

#[test]
fn statuses_and_challenges() {
    use TokenError::*;
    let cases: &[(TokenError, u16, &str)] = &[
        (Missing(MissingHint::Nothing), 401, "Bearer"),
        (Missing(MissingHint::CrossSiteNoCookie), 401, "Bearer"),
        (BadPresentation, 400, r#"Bearer error="invalid_request""#),
        (InUrl, 400, r#"Bearer error="invalid_request""#),
        (
            DraftMismatch {
                token: Draft::V07,
                request: Draft::V08,
            },
            400,
            r#"Bearer error="invalid_request""#,
        ),
        (TooLarge, 401, r#"Bearer error="invalid_token""#),
        (Malformed, 401, r#"Bearer error="invalid_token""#),
        (AlgNone, 401, r#"Bearer error="invalid_token""#),
        (
            AlgNotAllowed {
                got: Some(Alg::Hs256),
                want: Alg::Rs256,
            },
            401,
            r#"Bearer error="invalid_token""#,
        ),
        (
            AlgNotAllowed {
                got: None,
                want: Alg::Rs256,
            },
            401,
            r#"Bearer error="invalid_token""#,
        ),
        (Crit, 401, r#"Bearer error="invalid_token""#),
        (BadSignature, 401, r#"Bearer error="invalid_token""#),
        (Expired, 401, r#"Bearer error="invalid_token""#),
        (NotYetValid, 401, r#"Bearer error="invalid_token""#),
        (WrongType, 401, r#"Bearer error="invalid_token""#),
        (MissingClaim("iss"), 401, r#"Bearer error="invalid_token""#),
        (WrongIssuer, 401, r#"Bearer error="invalid_token""#),
        (WrongAudience, 401, r#"Bearer error="invalid_token""#),
        (Draft08Off, 401, r#"Bearer error="invalid_token""#),
        (
            NoKey(Role::Subscriber),
            401,
            r#"Bearer error="invalid_token""#,
        ),
        (
            BadClaim("aud is not a string or strings"),
            401,
            r#"Bearer error="invalid_token""#,
        ),
        (BothClaims, 401, r#"Bearer error="invalid_token""#),
        (NoRights, 403, r#"Bearer error="insufficient_scope""#),
        (NoPublishRights, 403, r#"Bearer error="insufficient_scope""#),
        (TopicNotAllowed, 403, r#"Bearer error="insufficient_scope""#),
    ];
    for (e, status, challenge) in cases {
        assert_eq!(
            (e.status().code(), e.www_authenticate(None).as_str()),
            (*status, *challenge),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{e:?}: {text}");
    }
    let meta = Some("https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure");
    assert_eq!(
        Missing(MissingHint::Nothing).www_authenticate(meta),
        r#"Bearer resource_metadata="https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure""#
    );
    assert_eq!(
        Expired.www_authenticate(Some("https://h/\"x\\")),
        r#"Bearer resource_metadata="https://h/x", error="invalid_token""#
    );
    let hint = Missing(MissingHint::CrossSiteNoCookie).to_string();
    for what in [
        "Domain",
        "SameSite=None; Secure",
        "withCredentials",
        "--cors-origin",
    ] {
        assert!(hint.contains(what), "{hint}");
    }
    assert_eq!(
        AlgNotAllowed {
            got: Some(Alg::Hs256),
            want: Alg::Rs256
        }
        .to_string(),
        "the token is signed with HS256, but this hub expects RS256"
    );
    assert_eq!(
        DraftMismatch {
            token: Draft::V07,
            request: Draft::V08
        }
        .to_string(),
        "the token is a draft-07 token but the request uses draft-08 parameters"
    );
}
