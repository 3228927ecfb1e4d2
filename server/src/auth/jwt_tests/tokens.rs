//! Signatures, algorithms and the registered time claims: what makes a token valid at all.

// benches/jwt.rs compiles these files with `cfg(test)` but without the test harness,
// which drops every `#[test]` function and leaves this import unused.
#[allow(unused_imports)]
use super::*;

#[test]
fn every_algorithm_verifies_its_own_key_only() {
    let body = claims07(json!({ "publish": ["/a"], "subscribe": ["*"] }));
    for alg in ALL_ALGS {
        let (good, public, wrong) = material(alg);
        let v = verifier(&["--jwt-key", &public, "--jwt-alg", alg.name()]);
        let ok = "V07 pub=[t:/a] sub=[*]";
        check(&v, Role::Publisher, &sign(alg, &good, None, &body), Ok(ok));
        check(
            &v,
            Role::Subscriber,
            &sign(alg, &good, Some("JWT"), &body),
            Ok(ok),
        );
        check(
            &v,
            Role::Publisher,
            &sign(alg, &wrong, None, &body),
            Err(TokenError::BadSignature),
        );
        // The same key under every other algorithm is refused before its signature is read.
        for other in ALL_ALGS.into_iter().filter(|&o| o != alg) {
            let (key, ..) = material(other);
            let want = Err(TokenError::AlgNotAllowed {
                got: Some(other),
                want: alg,
            });
            check(&v, Role::Publisher, &sign(other, &key, None, &body), want);
        }
    }
}

#[test]
fn algorithm_confusion_and_unsigned_tokens() {
    let k = keys();
    let rs = verifier(&["--jwt-key", &k.rsa.public]);
    let body = claims07(json!({ "publish": ["*"] }));
    // HS256 with the hub's own public key as the secret: the classic confusion attack.
    let confused = sign(
        Alg::Hs256,
        &EncodingKey::from_secret(k.rsa.public.as_bytes()),
        None,
        &body,
    );
    let want = Err(TokenError::AlgNotAllowed {
        got: Some(Alg::Hs256),
        want: Alg::Rs256,
    });
    check(&rs, Role::Publisher, &confused, want);
    let es = verifier(&["--jwt-key", &k.p256.public]);
    let confused = sign(
        Alg::Hs256,
        &EncodingKey::from_secret(k.p256.public.as_bytes()),
        None,
        &body,
    );
    let want = Err(TokenError::AlgNotAllowed {
        got: Some(Alg::Hs256),
        want: Alg::Es256,
    });
    check(&es, Role::Publisher, &confused, want);

    let hs = verifier(&["--jwt-key", SECRET]);
    let claims = URL_SAFE_NO_PAD.encode(body.to_string());
    for alg in ["none", "None", "NONE"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        for sig in ["", "c2ln"] {
            let token = format!("{header}.{claims}.{sig}");
            check(&hs, Role::Publisher, &token, Err(TokenError::AlgNone));
        }
    }
    let unknown = Err(TokenError::AlgNotAllowed {
        got: None,
        want: Alg::Hs256,
    });
    for alg in ["PS256", "hs256", "HS256 ", "", "ES512"] {
        let token = raw(&format!(r#"{{"alg":"{alg}"}}"#), &body.to_string());
        check(&hs, Role::Publisher, &token, unknown);
    }
    let token = raw(
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        &body.to_string(),
    );
    check(&hs, Role::Publisher, &token, Err(TokenError::Crit));
}

#[test]
fn malformed_and_tampered_tokens() {
    let v = verifier(&["--jwt-key", SECRET]);
    let good = hs(None, claims07(json!({ "publish": ["/a"] })));
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let other = hs(None, claims07(json!({ "publish": ["*"] })));
    let other_payload = other.split('.').nth(1).unwrap();
    let m = Err(TokenError::Malformed);
    let bad = Err(TokenError::BadSignature);
    let cases: Vec<(String, Result<&str, TokenError>)> = vec![
        (good.clone(), Ok("V07 pub=[t:/a] sub=[]")),
        (String::new(), m),
        ("abc".into(), m),
        (format!("{head}.{payload}"), m),
        (format!("{good}.{sig}"), m),
        ("..".into(), m),
        (format!("{head}..{sig}"), m),
        (format!(".{payload}.{sig}"), m),
        (format!("{head}.{payload}=.{sig}"), m),
        (format!("{head} .{payload}.{sig}"), m),
        (format!("{head}.{payload}.{sig}+"), m),
        // Header not JSON, not an object, without alg.
        (
            format!("{}.{payload}.{sig}", URL_SAFE_NO_PAD.encode("not json")),
            m,
        ),
        (
            format!("{}.{payload}.{sig}", URL_SAFE_NO_PAD.encode("[\"HS256\"]")),
            m,
        ),
        (
            format!(
                "{}.{payload}.{sig}",
                URL_SAFE_NO_PAD.encode("{\"typ\":\"JWT\"}")
            ),
            m,
        ),
        // Signed, but the claims are not an object.
        (raw(r#"{"alg":"HS256"}"#, "[1]"), m),
        (raw(r#"{"alg":"HS256"}"#, "nope"), m),
        // Someone else's claims under this signature, no signature, a truncated one.
        (format!("{head}.{other_payload}.{sig}"), bad),
        (format!("{head}.{payload}."), bad),
        (format!("{head}.{payload}.{}", &sig[..sig.len() - 2]), bad),
        ("a".repeat(MAX_TOKEN_BYTES + 1), Err(TokenError::TooLarge)),
    ];
    for (token, expected) in cases {
        check(&v, Role::Publisher, &token, expected);
    }
}

#[test]
fn expiry_and_not_before() {
    let v = verifier(&["--jwt-key", SECRET]);
    let ok = Ok("V07 pub=[] sub=[]");
    let expired = Err(TokenError::Expired);
    let bad_exp = Err(TokenError::BadClaim("exp is not a number of seconds"));
    let cases: Vec<(Value, Result<&str, TokenError>)> = vec![
        (json!({}), ok),
        (json!({ "exp": NOW + 60 }), ok),
        (json!({ "exp": NOW + 1 }), ok),
        (json!({ "exp": NOW }), expired),
        (json!({ "exp": NOW - 1 }), expired),
        (json!({ "exp": NOW - 3600 }), expired),
        (json!({ "exp": 0 }), expired),
        (json!({ "exp": (NOW + 60) as f64 + 0.5 }), ok),
        (json!({ "exp": (NOW - 60) as f64 + 0.5 }), expired),
        (json!({ "exp": u64::MAX }), ok),
        (json!({ "exp": 1e300 }), ok),
        (json!({ "exp": null }), ok),
        (json!({ "exp": "soon" }), bad_exp),
        (json!({ "exp": -1 }), bad_exp),
        (json!({ "exp": [NOW] }), bad_exp),
        (json!({ "nbf": NOW + LEEWAY_SECS }), ok),
        (
            json!({ "nbf": NOW + LEEWAY_SECS + 1 }),
            Err(TokenError::NotYetValid),
        ),
        (json!({ "nbf": NOW - 60, "exp": NOW + 60 }), ok),
        (
            json!({ "nbf": "now" }),
            Err(TokenError::BadClaim("nbf is not a number of seconds")),
        ),
    ];
    for (mut claims, expected) in cases {
        claims["mercure"] = json!({});
        check(&v, Role::Subscriber, &hs(None, claims), expected);
    }
    let claims = v
        .verify(Role::Subscriber, &hs(None, claims07(json!({}))), NOW)
        .unwrap();
    assert_eq!(claims.expires, Some(NOW + 60));
    let claims = v
        .verify(Role::Subscriber, &hs(None, json!({"sub": "alice"})), NOW)
        .unwrap();
    assert_eq!(
        (claims.expires, claims.subject.as_deref()),
        (None, Some("alice"))
    );
}
