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

mod flags;
mod requests;
mod rights;
mod tokens;

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "test-only-secret-0123456789abcdef0123456789abcdef";
const ISS: &str = "https://app.example";
const AUD: &str = "https://hub.example/.well-known/mercure";

const RSA_A: &str = include_str!("../../../tests/keys/rsa-2048-a.pem");
const RSA_A_PUB: &str = include_str!("../../../tests/keys/rsa-2048-a.pub.pem");
const RSA_A_PKCS1_PUB: &str = include_str!("../../../tests/keys/rsa-2048-a.pkcs1.pub.pem");
const RSA_B: &str = include_str!("../../../tests/keys/rsa-2048-b.pem");
const RSA_1024_PUB: &str = include_str!("../../../tests/keys/rsa-1024.pub.pem");

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
