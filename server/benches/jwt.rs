#![allow(clippy::unwrap_used, clippy::expect_used)]
//! JWT verifications per second, one core: `cargo bench -p ssecast-server --bench jwt`.
//!
//! Each case verifies one typical token with `JwtVerifier::verify` (split, header, `alg`
//! check, signature, claims JSON, time and draft checks, rights read into `Claims`): a draft-07
//! subscriber token (two selectors and a small payload, 360 to 660 bytes) signed with HS256,
//! RS256 (2048 bits) and ES256, and a draft-08 access token (RFC 9068 claims, one
//! authorization detail, about 800 bytes) signed with HS256 and ES256; and
//! `JwtVerifier::verify_cached` presented the token it verified last.
//!
//! Time is the bench thread's time on a CPU (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! the machine is shared, and time spent waiting for a core is not the verifier's cost. So
//! criterion's `time` is the cost of one verification on one core, and `thrpt` is
//! verifications per second per core.
//!
//! The auth module is private to the server crate and has no public way in, so its files are
//! compiled into this bench as they are (they refer to nothing else of the crate).

use std::hint::black_box;

use clap::Parser;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

// The auth modules at this crate's root, where their `super::` finds one another.
#[path = "../src/auth/claims.rs"]
mod claims;
#[path = "../src/config/jwt.rs"]
mod config;
#[path = "../src/auth/error.rs"]
mod error;
#[path = "../src/auth/jwt.rs"]
mod jwt;
#[path = "../src/auth/keys.rs"]
mod keys;
#[path = "../src/auth/pem.rs"]
mod pem;
#[path = "../src/auth/source.rs"]
mod source;

use jwt::{JwtFlags, JwtVerifier, Role, TokenCache};

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://app.example.com";
const AUD: &str = "https://hub.example.com/.well-known/mercure";
const SECRET: &str = "bench-only-secret-0123456789abcdef0123456789abcdef";
/// The test-only key pair of `server/tests/keys/`.
const RSA: &str = include_str!("../tests/keys/rsa-2048-a.pem");
const RSA_PUB: &str = include_str!("../tests/keys/rsa-2048-a.pub.pem");

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    jwt: JwtFlags,
}

fn verifier(key: &str) -> JwtVerifier {
    let args = [
        "ssecast",
        "--jwt-key",
        key,
        "--jwt-issuer",
        ISS,
        "--jwt-audience",
        AUD,
    ];
    let flags = Cli::try_parse_from(args).unwrap().jwt;
    JwtVerifier::from_flags(&flags).unwrap().unwrap()
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn sign(alg: Algorithm, key: &EncodingKey, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// Nanoseconds the calling thread has spent on a CPU (`CLOCK_THREAD_CPUTIME_ID`).
fn on_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Criterion measures each batch of iterations with this instead of a clock.
struct OnCpu;

static WALL: WallTime = WallTime;

impl Measurement for OnCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        on_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        on_cpu_ns() - started
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, ns: &u64) -> f64 {
        *ns as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, as for wall time.
        WALL.formatter()
    }
}

fn main() {
    let draft07 = json!({
        "exp": NOW + 3600,
        "iat": NOW,
        "mercure": {
            "subscribe": [
                "https://example.com/users/42/{?topic}",
                "https://example.com/books/{id}",
            ],
            "payload": { "user": "https://example.com/users/42", "remoteAddr": "127.0.0.1" },
        },
    });
    let draft08 = json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        "client_id": ISS,
        "iat": NOW,
        "exp": NOW + 3600,
        "jti": "urn:uuid:e70ff8d7-59d5-4a92-b0b7-505e8f6d09fa",
        "authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["subscribe"],
            "topics": [
                { "match": "https://example.com/books/:id", "match_type": "urlpattern" },
                { "match": "https://example.com/users/42/notifications" },
            ],
            "payload": { "tenant": "acme" },
        }],
    });
    let hmac = EncodingKey::from_secret(SECRET.as_bytes());
    let rsa = EncodingKey::from_rsa_der(&pem_der(RSA));
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_sign = EncodingKey::from_ec_der(&ec.serialize_der());
    let (hs, rs, es) = (
        verifier(SECRET),
        verifier(RSA_PUB),
        verifier(&ec.public_key_pem()),
    );

    let cases = [
        (
            "draft07/HS256",
            &hs,
            sign(Algorithm::HS256, &hmac, "JWT", &draft07),
        ),
        (
            "draft07/RS256",
            &rs,
            sign(Algorithm::RS256, &rsa, "JWT", &draft07),
        ),
        (
            "draft07/ES256",
            &es,
            sign(Algorithm::ES256, &ec_sign, "JWT", &draft07),
        ),
        (
            "draft08/HS256",
            &hs,
            sign(Algorithm::HS256, &hmac, "at+jwt", &draft08),
        ),
        (
            "draft08/ES256",
            &es,
            sign(Algorithm::ES256, &ec_sign, "at+jwt", &draft08),
        ),
    ];
    let mut c = Criterion::default()
        .with_measurement(OnCpu)
        .configure_from_args();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for (name, verifier, token) in &cases {
        // A bench of a refusal would measure nothing: check that each token verifies.
        verifier.verify(Role::Subscriber, token, NOW).unwrap();
        println!("{name}: token of {} bytes", token.len());
        group.bench_function(*name, |b| {
            b.iter(|| {
                verifier
                    .verify(Role::Subscriber, black_box(token), NOW)
                    .unwrap()
            })
        });
    }
    // A keep-alive client presenting the same token again: compared, times re-checked.
    let (_, verifier, token) = &cases[0];
    let mut cache = TokenCache::default();
    group.bench_function("draft07/HS256/cached", |b| {
        b.iter(|| {
            let claims =
                verifier.verify_cached(&mut cache, Role::Subscriber, black_box(token), NOW);
            claims.map(|c| c.expires).unwrap()
        })
    });
    group.finish();
    c.final_summary();
}
