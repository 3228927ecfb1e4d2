//! The JWT flags, and the verification keys they describe: an HMAC secret, or a PEM public
//! key read here (SPKI `BEGIN PUBLIC KEY`, or PKCS#1 `BEGIN RSA PUBLIC KEY`), each bound to
//! exactly one algorithm at startup.
//!
//! A key is given as text (`--jwt-key K`, as the reference hub takes it from an environment
//! variable) or as a file (`--jwt-key-file PATH`). A value starting with `-----BEGIN` is PEM
//! (a one-line PEM with literal `\n` escapes, as some environment files hold it, is accepted
//! too); anything else is an HMAC secret, its bytes as given. A secret read from a file loses
//! one trailing line ending (`echo secret > file` leaves one). When no algorithm flag is given
//! the key decides: a secret is HS256, an RSA key RS256, a P-256 key ES256, a P-384 key
//! ES384, an Ed25519 key EdDSA.
//!
//! A PEM value may follow its flag as the next argument (`--jwt-key "$(cat key.pem)"`): the
//! key flags take values starting with `-`, so clap never mistakes one for a flag (and never
//! echoes it in an "unknown argument" error).
//!
//! Every mismatch is refused here, before a token is ever seen: an HS* algorithm with a PEM
//! key (the algorithm-confusion attack would verify HMACs with the public key as the secret),
//! RS*/ES*/EdDSA with a secret, ES256 with a P-384 key, an RSA key outside 2048..=8192 bits
//! (ring would fail every verification), a private key or a certificate where the public key
//! belongs. The messages name the flag, never the key.

// Built for the Mercure routes, which the lead wires; until then not everything is called.
#![allow(dead_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey};

pub(crate) use crate::config::{Alg, JwtFlags, KeyText};

use super::jwt::Role;
use super::pem::{parse_key, KeyProblem, Material};

/// The cookie a draft-08 browser sends its access token in.
pub(crate) const COOKIE_08: &str = "__Secure-mercure_access_token";

impl Alg {
    /// The `alg` header value (RFC 7518), exactly as a token must spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// The algorithm a token's `alg` names, if it is one of ours (case-sensitive, RFC 7515).
    pub(crate) fn from_name(name: &str) -> Option<Alg> {
        ALL.iter().copied().find(|a| a.name() == name)
    }

    fn jsonwebtoken(self) -> Algorithm {
        match self {
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

    /// The kind of key this algorithm verifies with.
    fn needs(self) -> KeyKind {
        match self {
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => KeyKind::Secret,
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 => KeyKind::Rsa,
            Alg::Es256 => KeyKind::P256,
            Alg::Es384 => KeyKind::P384,
            Alg::EdDsa => KeyKind::Ed25519,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const ALL: [Alg; 9] = [
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

/// What a configured key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// An HMAC secret.
    Secret,
    /// An RSA public key.
    Rsa,
    /// An ECDSA P-256 public key.
    P256,
    /// An ECDSA P-384 public key.
    P384,
    /// An Ed25519 public key.
    Ed25519,
}

impl KeyKind {
    fn describe(self) -> &'static str {
        match self {
            KeyKind::Secret => "an HMAC secret",
            KeyKind::Rsa => "an RSA public key",
            KeyKind::P256 => "a P-256 public key",
            KeyKind::P384 => "a P-384 public key",
            KeyKind::Ed25519 => "an Ed25519 public key",
        }
    }

    /// The algorithm used when no flag names one.
    fn default_alg(self) -> Alg {
        match self {
            KeyKind::Secret => Alg::Hs256,
            KeyKind::Rsa => Alg::Rs256,
            KeyKind::P256 => Alg::Es256,
            KeyKind::P384 => Alg::Es384,
            KeyKind::Ed25519 => Alg::EdDsa,
        }
    }
}

/// A verification key and the one algorithm it verifies. Built only by [`RoleKey::load`],
/// which checked that the two belong together, so a token can never pick another algorithm
/// for this key: verification always runs `alg`, and a token naming anything else is refused
/// before its signature is looked at.
#[derive(Clone)]
pub(crate) struct RoleKey {
    pub(crate) alg: Alg,
    pub(crate) key: DecodingKey,
    /// The flag the key came from, for messages.
    pub(crate) flag: &'static str,
    /// An HMAC secret shorter than the hash (RFC 7518 section 3.2 requires at least that).
    pub(crate) short_secret: bool,
}

impl fmt::Debug for RoleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoleKey({} from {})", self.alg, self.flag)
    }
}

impl RoleKey {
    /// Verifies `signature` (base64url) over `message` with this key and its algorithm.
    pub(crate) fn verifies(&self, message: &[u8], signature: &str) -> bool {
        // An error is a signature that is not base64url or that ring rejects: not valid either.
        jsonwebtoken::crypto::verify(signature, message, &self.key, self.alg.jsonwebtoken())
            .unwrap_or(false)
    }

    /// The key of `role` the flags describe, if any.
    pub(crate) fn for_role(flags: &JwtFlags, role: Role) -> Result<Option<RoleKey>, KeyError> {
        let (text, file, alg, names) = match role {
            Role::Publisher => (
                &flags.publisher_jwt_key,
                &flags.publisher_jwt_key_file,
                flags.publisher_jwt_alg,
                [
                    "--publisher-jwt-key",
                    "--publisher-jwt-key-file",
                    "--publisher-jwt-alg",
                ],
            ),
            Role::Subscriber => (
                &flags.subscriber_jwt_key,
                &flags.subscriber_jwt_key_file,
                flags.subscriber_jwt_alg,
                [
                    "--subscriber-jwt-key",
                    "--subscriber-jwt-key-file",
                    "--subscriber-jwt-alg",
                ],
            ),
        };
        let (source, flag) = match (text, file) {
            (Some(t), _) => (Source::Text(t), names[0]),
            (None, Some(p)) => (Source::File(p), names[1]),
            (None, None) => match (&flags.jwt_key, &flags.jwt_key_file) {
                (Some(t), _) => (Source::Text(t), "--jwt-key"),
                (None, Some(p)) => (Source::File(p), "--jwt-key-file"),
                (None, None) => {
                    return match (alg, flags.jwt_alg) {
                        (Some(_), _) => Err(KeyError::AlgWithoutKey { flag: names[2] }),
                        (None, Some(_)) => Err(KeyError::AlgWithoutKey { flag: "--jwt-alg" }),
                        (None, None) => Ok(None),
                    }
                }
            },
        };
        RoleKey::load(source, flag, alg.or(flags.jwt_alg)).map(Some)
    }

    fn load(source: Source<'_>, flag: &'static str, alg: Option<Alg>) -> Result<RoleKey, KeyError> {
        let material = match source {
            Source::Text(t) => parse_key(t.0.as_bytes(), false),
            Source::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| KeyError::Unreadable {
                    flag,
                    path: path.to_owned(),
                    error: e.kind(),
                })?;
                parse_key(&bytes, true)
            }
        }
        .map_err(|problem| KeyError::Bad { flag, problem })?;
        let kind = material.kind();
        let alg = alg.unwrap_or(kind.default_alg());
        if alg.needs() != kind {
            return Err(KeyError::Mismatch { flag, alg, kind });
        }
        let short_secret = match &material {
            Material::Secret(s) => s.len() < hash_len(alg),
            _ => false,
        };
        let key = match material {
            Material::Secret(s) => DecodingKey::from_secret(&s),
            Material::Rsa(pkcs1) => DecodingKey::from_rsa_der(&pkcs1),
            Material::Ec(_, point) => DecodingKey::from_ec_der(&point),
            Material::Ed25519(raw) => DecodingKey::from_ed_der(&raw),
        };
        Ok(RoleKey {
            alg,
            key,
            flag,
            short_secret,
        })
    }
}

fn hash_len(alg: Alg) -> usize {
    match alg {
        Alg::Hs384 => 48,
        Alg::Hs512 => 64,
        _ => 32,
    }
}

enum Source<'a> {
    Text(&'a KeyText),
    File(&'a Path),
}

/// Why the flags describe no usable key. `Display` names the flag, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// A key file could not be read.
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        error: std::io::ErrorKind,
    },
    /// The key text is not a usable key.
    Bad {
        flag: &'static str,
        problem: KeyProblem,
    },
    /// The algorithm needs another kind of key.
    Mismatch {
        flag: &'static str,
        alg: Alg,
        kind: KeyKind,
    },
    /// An algorithm flag without a key to go with it.
    AlgWithoutKey { flag: &'static str },
    /// `--jwt-issuer` and `--jwt-audience` come together.
    IssuerAudiencePair,
    /// `--cookie-name` is not a cookie name.
    CookieName,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Unreadable { flag, path, error } => {
                write!(f, "{flag}: cannot read {}: {error}", path.display())
            }
            KeyError::Bad { flag, problem } => write!(f, "{flag}: {problem}"),
            KeyError::Mismatch { flag, alg, kind } => write!(
                f,
                "{flag}: {alg} needs {}, but the key is {}",
                alg.needs().describe(),
                kind.describe()
            ),
            KeyError::AlgWithoutKey { flag } => write!(f, "{flag} is set but no key goes with it"),
            KeyError::IssuerAudiencePair => f.write_str(
                "--jwt-issuer and --jwt-audience go together: draft-08 tokens are checked for both",
            ),
            KeyError::CookieName => f.write_str(
                "--cookie-name: use visible ASCII without spaces or ( ) < > @ , ; : \\ \" / [ ] ? = { }",
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// Whether `name` is an RFC 6265 cookie name (an RFC 9110 token).
pub(crate) fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}
