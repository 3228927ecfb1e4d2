//! HTTPS end to end: `ssecast serve --tls-cert --tls-key` with a certificate made at test time
//! (rcgen), and a rustls client that trusts only that certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, WAIT};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use ssecast::{Decoder, MessageEvent};

/// A certificate for `localhost` and 127.0.0.1 and its key, in PEM files in a fresh
/// directory (removed on drop).
struct Cert {
    dir: PathBuf,
    der: CertificateDer<'static>,
}

impl Cert {
    fn new() -> Cert {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "ssecast-tls-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).unwrap();
        Cert {
            dir,
            der: made.cert.der().clone(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn start(&self, args: &[&str]) -> Server {
        let (cert, key) = (self.path("cert.pem"), self.path("key.pem"));
        let mut all = vec!["--tls-cert", &cert, "--tls-key", &key];
        all.extend_from_slice(args);
        Server::start(&all)
    }

    fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A TLS connection to the server, handshake done.
    fn connect(&self, port: u16, alpn: &[&[u8]]) -> Tls {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(self.client_config(alpn), name).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        // Drives the handshake to its end.
        tls.flush().unwrap();
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        tls
    }

    /// One request with `Connection: close`; the status and the body.
    fn request(&self, port: u16, method: &str, target: &str, body: &str) -> (u16, String) {
        let mut tls = self.connect(port, &[]);
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        // The server may close without close_notify after a delimited body: keep what came.
        let _ = tls.read_to_end(&mut raw);
        let (status, headers, end) = common::parse_head(&raw).expect("a response head");
        let mut body = raw[end..].to_vec();
        if headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked")
        {
            body = common::dechunk(&body);
        }
        (status, String::from_utf8(body).unwrap())
    }

    fn metric(&self, port: u16, sample: &str) -> u64 {
        let (status, text) = self.request(port, "GET", "/metrics", "");
        assert_eq!(status, 200);
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {sample}"))
            .parse()
            .unwrap()
    }

    fn wait_metric(&self, port: u16, sample: &str, value: u64) -> bool {
        common::wait_until(WAIT, || self.metric(port, sample) == value)
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// An event stream over TLS, de-chunked and decoded by the core's decoder.
struct TlsSse {
    tls: Tls,
    raw: Vec<u8>,
    head: Option<(u16, Vec<(String, String)>)>,
    decoder: Decoder,
}

impl TlsSse {
    fn open(cert: &Cert, port: u16, target: &str) -> TlsSse {
        let mut tls = cert.connect(port, &[]);
        let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        tls.write_all(req.as_bytes()).unwrap();
        let mut sse = TlsSse {
            tls,
            raw: Vec::new(),
            head: None,
            decoder: Decoder::new(),
        };
        let deadline = Instant::now() + WAIT;
        while sse.head.is_none() {
            assert!(Instant::now() < deadline, "no response head");
            sse.read_some();
        }
        sse
    }

    fn read_some(&mut self) {
        let mut buf = [0u8; 4096];
        let n = self.tls.read(&mut buf).expect("read");
        assert!(n > 0, "the stream closed");
        self.raw.extend_from_slice(&buf[..n]);
        if self.head.is_none() {
            if let Some((status, headers, end)) = common::parse_head(&self.raw) {
                self.raw.drain(..end);
                self.head = Some((status, headers));
            }
        }
        // Feeds every complete chunk to the decoder.
        while let Some(line) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&self.raw[..line]).unwrap();
            let size = usize::from_str_radix(size, 16).expect("chunk size");
            if self.raw.len() < line + 2 + size + 2 {
                break;
            }
            self.decoder
                .feed(&self.raw[line + 2..line + 2 + size])
                .unwrap();
            self.raw.drain(..line + 2 + size + 2);
        }
    }

    fn event(&mut self) -> MessageEvent {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(event) = self.decoder.next_event() {
                return event;
            }
            assert!(Instant::now() < deadline, "no event");
            self.read_some();
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        let (_, headers) = self.head.as_ref()?;
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[test]
fn events_stream_and_publishes_land_over_https() {
    let cert = Cert::new();
    let server = cert.start(&[]);
    let mut sse = TlsSse::open(&cert, server.port, "/events?topic=tls");
    assert_eq!(sse.head.as_ref().unwrap().0, 200);
    assert_eq!(sse.header("Content-Type"), Some("text/event-stream"));
    assert!(cert.wait_metric(server.port, "ssecast_subscribers", 1));
    for i in 0..3 {
        let (status, body) =
            cert.request(server.port, "POST", "/publish?topic=tls", &format!("e{i}"));
        assert_eq!(status, 200, "{body}");
        let event = sse.event();
        assert_eq!(event.data, format!("e{i}"));
        assert!(body.contains(&event.last_event_id), "{body} vs {event:?}");
    }
    // Every route is served over TLS, the static page too.
    assert_eq!(cert.request(server.port, "GET", "/healthz", "").1, "ok\n");
    assert_eq!(cert.request(server.port, "GET", "/", "").0, 200);
}

#[test]
fn alpn_gives_h2_to_a_client_offering_it_and_http_1_1_otherwise() {
    let cert = Cert::new();
    let server = cert.start(&[]);
    let check = |offered: &[&[u8]], expected: Option<&[u8]>| {
        let tls = cert.connect(server.port, offered);
        assert_eq!(tls.conn.alpn_protocol(), expected, "{offered:?}");
    };
    check(&[b"h2", b"http/1.1"], Some(b"h2"));
    check(&[b"http/1.1", b"h2"], Some(b"h2"));
    check(&[b"http/1.1"], Some(b"http/1.1"));
    // No ALPN at all: HTTP/1.1, as before ALPN existed.
    check(&[], None);
    assert_eq!(cert.request(server.port, "GET", "/healthz", "").1, "ok\n");
}

#[test]
fn a_client_that_leaves_is_noticed_by_close_notify_or_by_closing() {
    let cert = Cert::new();
    let server = cert.start(&["--keepalive", "0"]);
    // close_notify alone, the TCP connection left open: only TLS says the client is gone.
    let mut sse = TlsSse::open(&cert, server.port, "/events");
    assert!(cert.wait_metric(server.port, "ssecast_subscribers", 1));
    sse.tls.conn.send_close_notify();
    sse.tls.flush().unwrap();
    assert!(cert.wait_metric(server.port, "ssecast_subscribers", 0));
    // The TCP connection closed with no TLS goodbye.
    let sse = TlsSse::open(&cert, server.port, "/events");
    assert!(cert.wait_metric(server.port, "ssecast_subscribers", 1));
    drop(sse);
    assert!(cert.wait_metric(server.port, "ssecast_subscribers", 0));
}

#[test]
fn plain_http_to_the_tls_port_gets_a_400_and_streams_keep_flowing() {
    let cert = Cert::new();
    let server = cert.start(&[]);
    let mut sse = TlsSse::open(&cert, server.port, "/events");
    assert!(cert.wait_metric(server.port, "ssecast_subscribers", 1));
    let reply = common::get(server.port, "/events");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.text(),
        "this port speaks HTTPS: use an https:// URL\n"
    );
    // Not TLS, not HTTP: the handshake fails and the connection is closed.
    let raw = common::raw_exchange(server.port, b"\x16\x03\x01\x00\x05hello");
    assert!(!raw.starts_with(b"HTTP/"), "{raw:?}");
    assert_eq!(
        cert.request(server.port, "POST", "/publish", "still").0,
        200
    );
    assert_eq!(sse.event().data, "still");
}

#[test]
fn a_stalled_handshake_is_dropped_at_the_header_timeout() {
    let cert = Cert::new();
    let server = cert.start(&[]);
    let mut sse = TlsSse::open(&cert, server.port, "/events");
    // Silent, and a handshake begun (a record header) but never finished.
    let mut silent = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut begun = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    begun.write_all(b"\x16\x03\x01\x02\x00").unwrap();
    let start = Instant::now();
    for stream in [&mut silent, &mut begun] {
        // WAIT (10 s) is twice the header timeout: a connection kept open fails the read.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 64];
        let read = stream.read(&mut buf);
        let closed = matches!(read, Ok(0))
            || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset);
        assert!(closed, "{read:?} after {:?}", start.elapsed());
    }
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "closed too early"
    );
    assert_eq!(
        cert.request(server.port, "POST", "/publish", "alive").0,
        200
    );
    assert_eq!(sse.event().data, "alive");
}

/// Runs `ssecast serve` with `args` and returns its exit status and stderr; it must exit
/// (with an error) by itself.
fn refused_start(args: &[&str]) -> String {
    let mut child = Command::new(common::bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--tick", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?}: still running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{args:?}: {status}");
    assert_eq!(stdout, "", "{args:?}: nothing listens");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

#[test]
fn bad_certificate_or_key_files_are_one_line_errors_at_start() {
    let cert = Cert::new();
    let other = Cert::new();
    std::fs::write(cert.path("garbage.pem"), "not a certificate\n").unwrap();
    let (c, k) = (cert.path("cert.pem"), cert.path("key.pem"));
    let (missing, garbage) = (cert.path("missing.pem"), cert.path("garbage.pem"));
    let other_key = other.path("key.pem");
    let check = |cert: &str, key: &str, expected: &str| {
        let stderr = refused_start(&["--tls-cert", cert, "--tls-key", key]);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    };
    check(&missing, &k, &format!("--tls-cert {missing}: No such file"));
    check(&c, &missing, &format!("--tls-key {missing}: No such file"));
    check(&garbage, &k, "--tls-cert");
    check(&garbage, &k, "no CERTIFICATE block");
    check(&c, &garbage, "no PRIVATE KEY");
    check(&c, &c, "no PRIVATE KEY");
    check(&k, &k, "no CERTIFICATE block");
    check(&c, &other_key, "does not fit --tls-cert");
    check(&cert.dir.to_string_lossy(), &k, "--tls-cert");
    // One without the other is a usage error.
    let stderr = refused_start(&["--tls-cert", &c]);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

/// A child process killed (and reaped) when dropped, also when a test fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn listen_and_publish_speak_https_trusting_the_given_ca() {
    let cert = Cert::new();
    let other = Cert::new();
    let server = cert.start(&["--subscribe-token", "t0k"]);
    let port = server.port;
    let ca = cert.path("cert.pem");
    let url = format!("https://127.0.0.1:{port}/events?topic=cli");
    let mut listen = Child(
        Command::new(common::bin())
            .args(["listen", "--json", "--ca", &ca, "--token", "t0k", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = listen.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert!(cert.wait_metric(port, "ssecast_subscribers", 1));
    let publish = |ca: &str| {
        Command::new(common::bin())
            .args(["publish", "--ca", ca, &format!("https://localhost:{port}")])
            .args(["hello", "--topic", "cli"])
            .output()
            .unwrap()
    };
    let published = publish(&ca);
    assert!(published.status.success(), "{published:?}");
    let id = String::from_utf8(published.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let line = rx.recv_timeout(WAIT).expect("an event from listen");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["data"], "hello");
    assert_eq!(event["last_event_id"], id.as_str());
    // A server whose certificate the CA did not sign is refused, with a reason.
    let refused = publish(&other.path("cert.pem"));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
    assert_eq!(cert.metric(port, "ssecast_published_total"), 1);
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_open_streams() {
    let cert = Cert::new();
    let (server, log) = {
        let (c, k) = (cert.path("cert.pem"), cert.path("key.pem"));
        Server::start_logged(&["--tls-cert", &c, "--tls-key", &k])
    };
    let mut sse = TlsSse::open(&cert, server.port, "/events?topic=reload");
    assert!(cert.wait_metric(server.port, "ssecast_subscribers", 1));
    let served_der = |port: u16| {
        // Trusts nothing in particular: the test only reads what the server presents.
        let tls = Cert::connect_any(port);
        tls.conn.peer_certificates().unwrap()[0].as_ref().to_vec()
    };
    assert_eq!(served_der(server.port), cert.der.as_ref());
    let hup = || {
        let status = Command::new("kill")
            .args(["-s", "HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // A broken file: the old certificate stays, and the log says why.
    std::fs::write(cert.path("cert.pem"), "not a certificate\n").unwrap();
    hup();
    log.wait_for("SIGHUP: --tls-cert");
    log.wait_for("keeping the certificate in use");
    assert_eq!(served_der(server.port), cert.der.as_ref());
    // A key that does not fit the certificate changes nothing either.
    let next = Cert::new();
    std::fs::copy(next.path("cert.pem"), cert.path("cert.pem")).unwrap();
    hup();
    log.wait_for("does not fit --tls-cert");
    assert_eq!(served_der(server.port), cert.der.as_ref());
    // The renewed pair: new handshakes get it.
    std::fs::copy(next.path("key.pem"), cert.path("key.pem")).unwrap();
    hup();
    assert!(common::wait_until(WAIT, || served_der(server.port) == next.der.as_ref()));
    assert_eq!(next.request(server.port, "GET", "/healthz", "").1, "ok\n");
    // The stream opened with the old certificate still flows.
    assert_eq!(
        next.request(server.port, "POST", "/publish?topic=reload", "after")
            .0,
        200
    );
    assert_eq!(sse.event().data, "after");
}

/// A verifier that accepts any certificate: for reading which one a server presents.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Cert {
    /// A handshake that trusts any certificate.
    fn connect_any(port: u16) -> Tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        tls.flush().unwrap();
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        tls
    }
}
