//! The verifier built from flags and key files, its warnings, and its cache.

use super::*;

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
