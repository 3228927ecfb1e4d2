//! Tokens made here with `jsonwebtoken::encode` (RSA from the test-only keys in
//! `server/tests/keys/`, ECDSA and Ed25519 made by rcgen at test time), one case per line.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// The case tables spell their row types out.
#![allow(clippy::type_complexity)]

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use clap::Parser;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "test-only-secret-0123456789abcdef0123456789abcdef";
const ISS: &str = "https://app.example";
const AUD: &str = "https://hub.example/.well-known/mercure";

const RSA_A: &str = include_str!("../../tests/keys/rsa-2048-a.pem");
const RSA_A_PUB: &str = include_str!("../../tests/keys/rsa-2048-a.pub.pem");
const RSA_A_PKCS1_PUB: &str = include_str!("../../tests/keys/rsa-2048-a.pkcs1.pub.pem");
const RSA_B: &str = include_str!("../../tests/keys/rsa-2048-b.pem");
const RSA_1024_PUB: &str = include_str!("../../tests/keys/rsa-1024.pub.pem");

/// A signing key and the public key text a hub is configured with.
struct Pair {
    sign: EncodingKey,
    public: String,
}

struct Keys {
    rsa: Pair,
    rsa_other: EncodingKey,
    p256: Pair,
    p256_other: EncodingKey,
    p384: Pair,
    p384_other: EncodingKey,
    ed: Pair,
    ed_other: EncodingKey,
    cert: String,
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn generated(alg: &'static rcgen::SignatureAlgorithm) -> Pair {
    let kp = rcgen::KeyPair::generate_for(alg).unwrap();
    let sign = if alg == &rcgen::PKCS_ED25519 {
        EncodingKey::from_ed_der(&kp.serialize_der())
    } else {
        EncodingKey::from_ec_der(&kp.serialize_der())
    };
    Pair {
        sign,
        public: kp.public_key_pem(),
    }
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: Pair {
            sign: EncodingKey::from_rsa_der(&pem_der(RSA_A)),
            public: RSA_A_PUB.to_owned(),
        },
        rsa_other: EncodingKey::from_rsa_der(&pem_der(RSA_B)),
        p256: generated(&rcgen::PKCS_ECDSA_P256_SHA256),
        p256_other: generated(&rcgen::PKCS_ECDSA_P256_SHA256).sign,
        p384: generated(&rcgen::PKCS_ECDSA_P384_SHA384),
        p384_other: generated(&rcgen::PKCS_ECDSA_P384_SHA384).sign,
        ed: generated(&rcgen::PKCS_ED25519),
        ed_other: generated(&rcgen::PKCS_ED25519).sign,
        cert: rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert
            .pem(),
    })
}

/// The signing key, the configured public key (or secret) and a wrong signing key of `alg`.
fn material(alg: Alg) -> (EncodingKey, String, EncodingKey) {
    let k = keys();
    let secret = || EncodingKey::from_secret(SECRET.as_bytes());
    let wrong_secret =
        || EncodingKey::from_secret(b"another-test-secret-0123456789abcdef0123456789");
    match alg {
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => (secret(), SECRET.to_owned(), wrong_secret()),
        Alg::Rs256 | Alg::Rs384 | Alg::Rs512 => (
            k.rsa.sign.clone(),
            k.rsa.public.clone(),
            k.rsa_other.clone(),
        ),
        Alg::Es256 => (
            k.p256.sign.clone(),
            k.p256.public.clone(),
            k.p256_other.clone(),
        ),
        Alg::Es384 => (
            k.p384.sign.clone(),
            k.p384.public.clone(),
            k.p384_other.clone(),
        ),
        Alg::EdDsa => (k.ed.sign.clone(), k.ed.public.clone(), k.ed_other.clone()),
    }
}

fn jwa(alg: Alg) -> Algorithm {
    match alg {
        Alg::Hs256 => Algorithm::HS256,
        Alg::Hs384 => Algorithm::HS384,
        Alg::Hs512 => Algorithm::HS512,
        Alg::Rs256 => Algorithm::RS256,
        Alg::Rs384 => Algorithm::RS384,
        Alg::Rs512 => Algorithm::RS512,
        Alg::Es256 => Algorithm::ES256,
        Alg::Es384 => Algorithm::ES384,
        Alg::EdDsa => Algorithm::EdDSA,
    }
}

fn sign(alg: Alg, key: &EncodingKey, typ: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(jwa(alg));
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// An HS256 token with the test secret.
fn hs(typ: Option<&str>, claims: Value) -> String {
    sign(
        Alg::Hs256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        typ,
        &claims,
    )
}

/// A token from raw header and claims JSON, signed with the test secret (HS256).
fn raw(header: &str, claims: &str) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes()),
        signed.as_bytes(),
    );
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    jwt: JwtFlags,
}

fn flags(args: &[&str]) -> JwtFlags {
    Cli::try_parse_from(std::iter::once("ssecast").chain(args.iter().copied()))
        .unwrap()
        .jwt
}

fn verifier(args: &[&str]) -> JwtVerifier {
    JwtVerifier::from_flags(&flags(args)).unwrap().unwrap()
}

/// The draft-08 verifier the tables use: HS256, with issuer and audience.
fn v08() -> JwtVerifier {
    verifier(&[
        "--jwt-key",
        SECRET,
        "--jwt-issuer",
        ISS,
        "--jwt-audience",
        AUD,
    ])
}

/// What a result looks like in the tables: `V07 pub=[t:/a] sub=[*]`, or the error.
fn brief(claims: &Claims) -> String {
    let list = |s: &[SelectorSpec]| {
        s.iter()
            .map(|s| match s.kind() {
                SelectorKind::Any => "*".to_owned(),
                SelectorKind::Template => format!("t:{}", s.text()),
                SelectorKind::Exact => format!("e:{}", s.text()),
                SelectorKind::UrlPattern => format!("u:{}", s.text()),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{:?} pub=[{}] sub=[{}]",
        claims.draft,
        list(&claims.publish),
        list(&claims.subscribe)
    )
}

/// No error text may hold the token or any part of it.
fn assert_secret_free(message: &str, token: &str) {
    assert!(!message.contains('\n'), "one line: {message}");
    for part in token.split('.').filter(|p| p.len() >= 6) {
        assert!(
            !message.contains(part),
            "{message:?} holds part of the token"
        );
    }
}

fn check(v: &JwtVerifier, role: Role, token: &str, expected: Result<&str, TokenError>) {
    let got = v.verify(role, token, NOW);
    if let Err(e) = &got {
        assert_secret_free(&e.to_string(), token);
    }
    assert_eq!(
        got.as_ref().map(brief).map_err(|e| *e),
        expected.map(str::to_owned),
        "{token}"
    );
}

fn claims07(mercure: Value) -> Value {
    json!({ "exp": NOW + 60, "mercure": mercure })
}

fn claims08(details: Value) -> Value {
    json!({
        "iss": ISS, "aud": AUD, "exp": NOW + 60, "sub": "urn:uuid:test",
        "client_id": ISS, "iat": NOW, "jti": "urn:uuid:jti",
        "authorization_details": details,
    })
}

fn detail(actions: Value, topics: Value) -> Value {
    json!([{ "type": "https://mercure.rocks/authorization-detail", "actions": actions, "topics": topics }])
}

const ALL_ALGS: [Alg; 9] = [
    Alg::Hs256,
    Alg::Hs384,
    Alg::Hs512,
    Alg::Rs256,
    Alg::Rs384,
    Alg::Rs512,
    Alg::Es256,
    Alg::Es384,
    Alg::EdDsa,
];

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

/// What `from_flags` made of some flags: each role's algorithm, or the error's text.
fn configured(args: &[&str]) -> Result<String, String> {
    let result = JwtVerifier::from_flags(&flags(args));
    match result {
        Ok(None) => Ok("off".into()),
        Ok(Some(v)) => Ok(format!(
            "pub={} sub={}",
            v.publisher.as_ref().map_or("-", |k| k.alg.name()),
            v.subscriber.as_ref().map_or("-", |k| k.alg.name())
        )),
        Err(e) => {
            let text = e.to_string();
            let keys = args
                .windows(2)
                .filter(|w| w[0].ends_with("jwt-key"))
                .map(|w| w[1]);
            for arg in keys {
                for line in arg
                    .lines()
                    .filter(|l| l.len() >= 8 && !l.starts_with("-----"))
                {
                    assert!(!text.contains(line), "{text:?} holds a key");
                }
            }
            Err(text)
        }
    }
}

#[test]
fn keys_from_flags() {
    let k = keys();
    let escaped = k.p256.public.trim_end().replace('\n', "\\n");
    let k1 =
        "-----BEGIN PUBLIC KEY-----\nMFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAE\n-----END PUBLIC KEY-----\n";
    let secp256k1 = {
        // SubjectPublicKeyInfo for secp256k1, which ring does not verify.
        let mut der = vec![
            0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        ];
        der.extend([
            0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00, 0x04,
        ]);
        der.extend([7u8; 64]);
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        )
    };
    let ok = |s: &str| Ok(s.to_owned());
    let err = |s: &str| Err(s.to_owned());
    let cases: Vec<(Vec<&str>, Result<String, String>)> = vec![
        (vec![], ok("off")),
        (vec!["--anonymous", "--cookie-name", "x"], ok("off")),
        (vec!["--jwt-key", SECRET], ok("pub=HS256 sub=HS256")),
        (vec!["--jwt-key", SECRET, "--jwt-alg", "hs512"], ok("pub=HS512 sub=HS512")),
        (vec!["--jwt-key", SECRET, "--subscriber-jwt-alg", "HS384"], ok("pub=HS256 sub=HS384")),
        (vec!["--jwt-key", &k.rsa.public], ok("pub=RS256 sub=RS256")),
        (vec!["--jwt-key", RSA_A_PKCS1_PUB, "--jwt-alg", "RS512"], ok("pub=RS512 sub=RS512")),
        (vec!["--jwt-key", &k.p256.public], ok("pub=ES256 sub=ES256")),
        (vec!["--jwt-key", &k.p384.public], ok("pub=ES384 sub=ES384")),
        (vec!["--jwt-key", &k.ed.public], ok("pub=EdDSA sub=EdDSA")),
        (vec!["--jwt-key", &escaped], ok("pub=ES256 sub=ES256")),
        (vec!["--publisher-jwt-key", &k.rsa.public, "--subscriber-jwt-key", SECRET], ok("pub=RS256 sub=HS256")),
        (vec!["--subscriber-jwt-key", SECRET], ok("pub=- sub=HS256")),
        (vec!["--jwt-key", &k.rsa.public, "--jwt-alg", "HS256"], err("--jwt-key: HS256 needs an HMAC secret, but the key is an RSA public key")),
        (vec!["--jwt-key", SECRET, "--publisher-jwt-alg", "RS256"], err("--jwt-key: RS256 needs an RSA public key, but the key is an HMAC secret")),
        (vec!["--jwt-key", &k.p256.public, "--jwt-alg", "ES384"], err("--jwt-key: ES384 needs a P-384 public key, but the key is a P-256 public key")),
        (vec!["--subscriber-jwt-key", &k.ed.public, "--subscriber-jwt-alg", "ES256"], err("--subscriber-jwt-key: ES256 needs a P-256 public key, but the key is an Ed25519 public key")),
        (vec!["--jwt-key", RSA_A], err("--jwt-key: this is a private key; give the hub only the public key (openssl pkey -pubout)")),
        (vec!["--jwt-key", &k.cert], err("--jwt-key: this is a certificate; give the hub its public key (openssl x509 -pubkey -noout)")),
        (vec!["--jwt-key", RSA_1024_PUB], err("--jwt-key: the RSA key has 1024 bits; use 2048 to 8192")),
        (vec!["--jwt-key", &secp256k1], err("--jwt-key: use an RSA, P-256, P-384 or Ed25519 public key")),
        (vec!["--jwt-key", k1], err("--jwt-key: the PEM block holds no readable public key")),
        (vec!["--jwt-key", "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----"], err("--jwt-key: the value starts with -----BEGIN but is not valid PEM")),
        (vec!["--jwt-key", "-----BEGIN PUBLIC KEY-----\nMFYw\n-----END PRIVATE KEY-----"], err("--jwt-key: the value starts with -----BEGIN but is not valid PEM")),
        (vec!["--jwt-key", "-----BEGIN DH PARAMETERS-----\nMFYw\n-----END DH PARAMETERS-----"], err("--jwt-key: use a PEM block BEGIN PUBLIC KEY (or BEGIN RSA PUBLIC KEY)")),
        (vec!["--jwt-key", ""], err("--jwt-key: the key is empty")),
        (vec!["--publisher-jwt-alg", "HS256"], err("--publisher-jwt-alg is set but no key goes with it")),
        (vec!["--jwt-alg", "ES256", "--publisher-jwt-key", &k.p256.public], err("--jwt-alg is set but no key goes with it")),
        (vec!["--jwt-key", SECRET, "--jwt-issuer", ISS], err("--jwt-issuer and --jwt-audience go together: draft-08 tokens are checked for both")),
        (vec!["--jwt-key", SECRET, "--jwt-audience", AUD], err("--jwt-issuer and --jwt-audience go together: draft-08 tokens are checked for both")),
        (vec!["--jwt-key", SECRET, "--cookie-name", "my cookie"], err("--cookie-name: use visible ASCII without spaces or ( ) < > @ , ; : \\ \" / [ ] ? = { }")),
        (vec!["--jwt-key", SECRET, "--cookie-name", ""], err("--cookie-name: use visible ASCII without spaces or ( ) < > @ , ; : \\ \" / [ ] ? = { }")),
    ];
    for (args, expected) in cases {
        assert_eq!(configured(&args), expected, "{args:?}");
    }
    // clap refuses a key given twice, and any algorithm outside the list.
    let cli =
        |args: &[&str]| Cli::try_parse_from(std::iter::once("ssecast").chain(args.iter().copied()));
    assert!(cli(&["--jwt-key", SECRET, "--jwt-key-file", "/dev/null"]).is_err());
    for alg in ["none", "PS256", "ES512", "HS1"] {
        assert!(cli(&["--jwt-alg", alg]).is_err(), "{alg}");
    }
    // Neither Debug shows a key.
    let f = flags(&["--jwt-key", SECRET, "--subscriber-jwt-key", &k.p256.public]);
    let shown = format!("{f:?} {:?}", JwtVerifier::from_flags(&f).unwrap().unwrap());
    assert!(
        !shown.contains(SECRET) && !shown.contains("BEGIN"),
        "{shown}"
    );
}

#[test]
fn keys_from_files() {
    let dir = std::env::temp_dir().join(format!("ssecast-jwt-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let crlf = dir.join("secret-crlf");
    std::fs::write(&crlf, format!("{SECRET}\r\n")).unwrap();
    let pem = dir.join("key.pem");
    std::fs::write(&pem, &keys().p256.public).unwrap();
    let token = hs(None, claims07(json!({ "publish": ["*"] })));
    for file in [&secret, &crlf] {
        let v = verifier(&["--jwt-key-file", file.to_str().unwrap()]);
        check(&v, Role::Publisher, &token, Ok("V07 pub=[*] sub=[]"));
    }
    let v = verifier(&[
        "--subscriber-jwt-key-file",
        pem.to_str().unwrap(),
        "--publisher-jwt-key",
        SECRET,
    ]);
    let es = sign(Alg::Es256, &keys().p256.sign, None, &claims07(json!({})));
    check(&v, Role::Subscriber, &es, Ok("V07 pub=[] sub=[]"));
    let gone = dir.join("missing");
    let text = configured(&["--publisher-jwt-key-file", gone.to_str().unwrap()]).unwrap_err();
    assert!(
        text.starts_with("--publisher-jwt-key-file: cannot read ")
            && text.ends_with("missing: entity not found"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn warnings_name_flags_not_keys() {
    let short = "short-test-key";
    let v = verifier(&["--jwt-key", short]);
    let w = v.warnings().join(" | ");
    assert!(!w.contains(short), "{w}");
    assert_eq!(
        w,
        "--jwt-key: an HMAC secret shorter than HS256's hash can be guessed offline from one \
         token; use at least 32 random bytes | no --jwt-issuer and --jwt-audience: draft-08 \
         access tokens are refused"
    );
    assert!(v08().warnings().is_empty());
    let v = verifier(&[
        "--jwt-key",
        &"k".repeat(40),
        "--jwt-alg",
        "HS512",
        "--jwt-issuer",
        ISS,
        "--jwt-audience",
        AUD,
    ]);
    assert_eq!(v.warnings().len(), 1);
}

#[test]
fn verify_cached_remembers_one_token() {
    let v = verifier(&["--jwt-key", SECRET]);
    let other = verifier(&[
        "--jwt-key",
        "another-test-secret-0123456789abcdef0123456789",
    ]);
    let a = hs(
        None,
        json!({ "exp": NOW + 60, "nbf": NOW - 1, "mercure": { "publish": ["/a"] } }),
    );
    let b = hs(None, claims07(json!({ "publish": ["/b"] })));
    let mut cache = TokenCache::default();
    let got = |c: Result<&Claims, TokenError>| c.map(brief);
    assert_eq!(
        got(v.verify_cached(&mut cache, Role::Publisher, &a, NOW)),
        Ok("V07 pub=[t:/a] sub=[]".into())
    );
    // A hit is not verified again: a verifier that would refuse the token still gets the
    // remembered claims (which is why a cache belongs to one verifier).
    assert_eq!(
        got(other.verify_cached(&mut cache, Role::Publisher, &a, NOW)),
        Ok("V07 pub=[t:/a] sub=[]".into())
    );
    // But its times are checked on every use.
    assert_eq!(
        got(v.verify_cached(&mut cache, Role::Publisher, &a, NOW + 60)),
        Err(TokenError::Expired)
    );
    assert_eq!(
        got(v.verify_cached(&mut cache, Role::Publisher, &a, NOW - 10)),
        Err(TokenError::NotYetValid)
    );
    // Another token, or another role, is verified afresh.
    assert_eq!(
        got(other.verify_cached(&mut cache, Role::Subscriber, &a, NOW)),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        got(other.verify_cached(&mut cache, Role::Publisher, &a, NOW)),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        got(v.verify_cached(&mut cache, Role::Publisher, &b, NOW)),
        Ok("V07 pub=[t:/b] sub=[]".into())
    );
    assert_eq!(
        got(other.verify_cached(&mut cache, Role::Publisher, &b, NOW)),
        Ok("V07 pub=[t:/b] sub=[]".into())
    );
}
