//! The JWT flags (verified by [`crate::auth`], which reads the keys they name).

use std::fmt;
use std::path::PathBuf;

use clap::Args;

/// The cookie a draft-07 browser sends its token in, unless `--cookie-name` says otherwise.
pub(crate) const DEFAULT_COOKIE_07: &str = "mercureAuthorization";

/// JWT verification flags, for `#[command(flatten)]` into `ServeArgs`.
#[derive(Debug, Clone, Args)]
pub(crate) struct JwtFlags {
    /// Verify publishers' and subscribers' JWTs with this key: an HMAC secret, or a PEM public
    /// key (a value starting with `-----BEGIN`) for RS*, ES* and EdDSA.
    #[arg(
        long,
        env = "SSECAST_JWT_KEY",
        hide_env_values = true,
        value_name = "KEY",
        conflicts_with = "jwt_key_file",
        allow_hyphen_values = true
    )]
    pub(crate) jwt_key: Option<KeyText>,

    /// `--jwt-key`, read from this file (PEM, or a secret: one trailing newline is dropped).
    #[arg(long, env = "SSECAST_JWT_KEY_FILE", value_name = "PATH")]
    pub(crate) jwt_key_file: Option<PathBuf>,

    /// Algorithm of `--jwt-key` [default: HS256 for a secret, else the PEM key's own: RS256,
    /// ES256 (P-256), ES384 (P-384), EdDSA (Ed25519)].
    #[arg(long, env = "SSECAST_JWT_ALG", value_name = "ALG", ignore_case = true)]
    pub(crate) jwt_alg: Option<Alg>,

    /// Verify publishers' JWTs with this key instead of `--jwt-key`.
    #[arg(
        long,
        env = "SSECAST_PUBLISHER_JWT_KEY",
        hide_env_values = true,
        value_name = "KEY",
        conflicts_with = "publisher_jwt_key_file",
        allow_hyphen_values = true
    )]
    pub(crate) publisher_jwt_key: Option<KeyText>,

    /// `--publisher-jwt-key`, read from this file.
    #[arg(long, env = "SSECAST_PUBLISHER_JWT_KEY_FILE", value_name = "PATH")]
    pub(crate) publisher_jwt_key_file: Option<PathBuf>,

    /// Algorithm of publishers' JWTs, one of `--jwt-alg`'s [default: as `--jwt-alg`].
    #[arg(
        long,
        env = "SSECAST_PUBLISHER_JWT_ALG",
        value_name = "ALG",
        ignore_case = true,
        hide_possible_values = true
    )]
    pub(crate) publisher_jwt_alg: Option<Alg>,

    /// Verify subscribers' JWTs with this key instead of `--jwt-key`.
    #[arg(
        long,
        env = "SSECAST_SUBSCRIBER_JWT_KEY",
        hide_env_values = true,
        value_name = "KEY",
        conflicts_with = "subscriber_jwt_key_file",
        allow_hyphen_values = true
    )]
    pub(crate) subscriber_jwt_key: Option<KeyText>,

    /// `--subscriber-jwt-key`, read from this file.
    #[arg(long, env = "SSECAST_SUBSCRIBER_JWT_KEY_FILE", value_name = "PATH")]
    pub(crate) subscriber_jwt_key_file: Option<PathBuf>,

    /// Algorithm of subscribers' JWTs, one of `--jwt-alg`'s [default: as `--jwt-alg`].
    #[arg(
        long,
        env = "SSECAST_SUBSCRIBER_JWT_ALG",
        value_name = "ALG",
        ignore_case = true,
        hide_possible_values = true
    )]
    pub(crate) subscriber_jwt_alg: Option<Alg>,

    /// Let subscribers without a token in: they receive public updates only. Without it,
    /// subscribing needs a valid token once a subscriber key is configured.
    /// (`SSECAST_ANONYMOUS` takes true/false, 1/0, yes/no, on/off.)
    #[arg(long, env = "SSECAST_ANONYMOUS", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) anonymous: bool,

    /// The cookie a draft-07 browser sends its token in (draft-08 uses
    /// `__Secure-mercure_access_token`).
    #[arg(long, env = "SSECAST_COOKIE_NAME", value_name = "NAME", default_value = DEFAULT_COOKIE_07)]
    pub(crate) cookie_name: String,

    /// The issuer (`iss`) of draft-08 access tokens, bound to the configured keys: a token of
    /// another issuer is refused even when a configured key signed it. Needs `--jwt-audience`.
    #[arg(long, env = "SSECAST_JWT_ISSUER", value_name = "URL")]
    pub(crate) jwt_issuer: Option<String>,

    /// This hub's resource identifier, which draft-08 access tokens must name in `aud` (e.g.
    /// `https://hub.example.com/.well-known/mercure`). Needs `--jwt-issuer`.
    #[arg(long, env = "SSECAST_JWT_AUDIENCE", value_name = "URL")]
    pub(crate) jwt_audience: Option<String>,
}

/// Key text from a flag or an environment variable. Its `Debug` hides it, so no log line or
/// error message can carry it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyText(pub(crate) String);

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyText(..)")
    }
}

impl std::str::FromStr for KeyText {
    type Err = std::convert::Infallible;

    /// Never fails: a bad key is refused by `JwtVerifier::from_flags`,
    /// whose message does not repeat it (clap's would).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(KeyText(s.to_owned()))
    }
}

/// A signature algorithm a key may be configured for. `none` is not one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Alg {
    /// HMAC with SHA-256.
    #[value(name = "HS256")]
    Hs256,
    /// HMAC with SHA-384.
    #[value(name = "HS384")]
    Hs384,
    /// HMAC with SHA-512.
    #[value(name = "HS512")]
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[value(name = "RS256")]
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    #[value(name = "RS384")]
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    #[value(name = "RS512")]
    Rs512,
    /// ECDSA on P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// ECDSA on P-384 with SHA-384.
    #[value(name = "ES384")]
    Es384,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
}
