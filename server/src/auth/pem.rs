//! Key text to key bytes: an HMAC secret, or the public key of a PEM block (RFC 7468) holding
//! a SubjectPublicKeyInfo (RFC 5280; RSA, P-256, P-384, Ed25519) or a PKCS#1 RSA public key,
//! read with a DER walk just deep enough to find the key and check its type and size.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::keys::KeyKind;

/// Key bytes as they will be handed to ring.
pub(crate) enum Material {
    Secret(Vec<u8>),
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// The curve, and the uncompressed point.
    Ec(KeyKind, Vec<u8>),
    /// The 32 key bytes.
    Ed25519(Vec<u8>),
}

impl Material {
    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            Material::Secret(_) => KeyKind::Secret,
            Material::Rsa(_) => KeyKind::Rsa,
            Material::Ec(curve, _) => *curve,
            Material::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}

/// What is wrong with a key's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    Empty,
    NotPem,
    PrivateKey,
    Certificate,
    UnsupportedPem,
    NotPublicKey,
    UnsupportedKeyType,
    CompressedPoint,
    RsaSize { bits: usize },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self {
            KeyProblem::Empty => "the key is empty",
            KeyProblem::NotPem => "the value starts with -----BEGIN but is not valid PEM",
            KeyProblem::PrivateKey => {
                "this is a private key; give the hub only the public key (openssl pkey -pubout)"
            }
            KeyProblem::Certificate => {
                "this is a certificate; give the hub its public key (openssl x509 -pubkey -noout)"
            }
            KeyProblem::UnsupportedPem => {
                "use a PEM block BEGIN PUBLIC KEY (or BEGIN RSA PUBLIC KEY)"
            }
            KeyProblem::NotPublicKey => "the PEM block holds no readable public key",
            KeyProblem::UnsupportedKeyType => "use an RSA, P-256, P-384 or Ed25519 public key",
            KeyProblem::CompressedPoint => "give the EC public key with an uncompressed point",
            KeyProblem::RsaSize { bits } => {
                return write!(f, "the RSA key has {bits} bits; use 2048 to 8192");
            }
        };
        f.write_str(why)
    }
}

/// Reads a key: PEM when it starts with `-----BEGIN`, else an HMAC secret.
pub(crate) fn parse_key(bytes: &[u8], from_file: bool) -> Result<Material, KeyProblem> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        return parse_pem(trimmed);
    }
    let mut secret = bytes;
    if from_file {
        secret = secret.strip_suffix(b"\n").unwrap_or(secret);
        secret = secret.strip_suffix(b"\r").unwrap_or(secret);
    }
    if secret.is_empty() {
        return Err(KeyProblem::Empty);
    }
    Ok(Material::Secret(secret.to_vec()))
}

/// Reads the first PEM block (RFC 7468) and the public key in it.
fn parse_pem(text: &[u8]) -> Result<Material, KeyProblem> {
    let text = std::str::from_utf8(text).map_err(|_| KeyProblem::NotPem)?;
    // A PEM squeezed onto one line with literal `\n`s, as environment files often hold it.
    let unescaped;
    let text = if !text.contains('\n') && text.contains("\\n") {
        unescaped = text.replace("\\n", "\n");
        unescaped.as_str()
    } else {
        text
    };
    let rest = text.strip_prefix("-----BEGIN ").ok_or(KeyProblem::NotPem)?;
    let (label, rest) = rest.split_once("-----").ok_or(KeyProblem::NotPem)?;
    let end = format!("-----END {label}-----");
    let (body, _) = rest.split_once(end.as_str()).ok_or(KeyProblem::NotPem)?;
    match label {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {}
        "CERTIFICATE" | "TRUSTED CERTIFICATE" => return Err(KeyProblem::Certificate),
        l if l.ends_with("PRIVATE KEY") => return Err(KeyProblem::PrivateKey),
        _ => return Err(KeyProblem::UnsupportedPem),
    }
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|_| KeyProblem::NotPem)?;
    if label == "RSA PUBLIC KEY" {
        rsa_bits(&der)?;
        return Ok(Material::Rsa(der));
    }
    parse_spki(&der)
}

// DER encodings of the object identifiers a SubjectPublicKeyInfo may name (RFC 5480, 8410).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;

/// `SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { algorithm OID, parameters ANY OPTIONAL },
/// subjectPublicKey BIT STRING }` (RFC 5280), to the key bytes ring takes.
fn parse_spki(der: &[u8]) -> Result<Material, KeyProblem> {
    let bad = KeyProblem::NotPublicKey;
    let (spki, _) = der_take(der, SEQUENCE).ok_or(bad)?;
    let (algorithm, rest) = der_take(spki, SEQUENCE).ok_or(bad)?;
    let (bits, _) = der_take(rest, BIT_STRING).ok_or(bad)?;
    // The first byte of a BIT STRING counts the unused bits of the last: keys have none.
    let key = bits.strip_prefix(&[0]).ok_or(bad)?;
    let (oid, params) = der_take(algorithm, OID).ok_or(bad)?;
    if oid == OID_RSA {
        rsa_bits(key)?;
        Ok(Material::Rsa(key.to_vec()))
    } else if oid == OID_EC {
        let (curve, _) = der_take(params, OID).ok_or(KeyProblem::UnsupportedKeyType)?;
        let (kind, coordinate) = match curve {
            c if c == OID_P256 => (KeyKind::P256, 32),
            c if c == OID_P384 => (KeyKind::P384, 48),
            _ => return Err(KeyProblem::UnsupportedKeyType),
        };
        match key.first() {
            Some(0x04) if key.len() == 1 + 2 * coordinate => Ok(Material::Ec(kind, key.to_vec())),
            Some(0x02 | 0x03) => Err(KeyProblem::CompressedPoint),
            _ => Err(bad),
        }
    } else if oid == OID_ED25519 {
        if key.len() != 32 {
            return Err(bad);
        }
        Ok(Material::Ed25519(key.to_vec()))
    } else {
        Err(KeyProblem::UnsupportedKeyType)
    }
}

/// Checks `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017)
/// and that ring will verify with its modulus (2048 to 8192 bits).
fn rsa_bits(der: &[u8]) -> Result<(), KeyProblem> {
    let bad = KeyProblem::NotPublicKey;
    let (key, _) = der_take(der, SEQUENCE).ok_or(bad)?;
    let (modulus, rest) = der_take(key, INTEGER).ok_or(bad)?;
    der_take(rest, INTEGER).ok_or(bad)?;
    let modulus = match modulus.iter().position(|&b| b != 0) {
        Some(i) => &modulus[i..],
        None => return Err(bad),
    };
    let bits = modulus.len() * 8 - modulus[0].leading_zeros() as usize;
    if !(2048..=8192).contains(&bits) {
        return Err(KeyProblem::RsaSize { bits });
    }
    Ok(())
}

/// Splits one DER element with tag `tag` off the front of `input`: its contents and the rest.
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: the low bits count the length bytes; keys need at most three.
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let (digits, after) = rest.split_at(n);
        rest = after;
        digits.iter().fold(0, |len, &d| len << 8 | usize::from(d))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}
