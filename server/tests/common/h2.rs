//! An HTTP/2 client for the tests and the idle-memory bench: the h2 crate driven by smol (no
//! tokio runtime), an event stream read with the core's decoder, TLS with ALPN.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use ssecast::{Decoder, MessageEvent};
use tokio_util::compat::FuturesAsyncReadCompatExt as _;

use crate::common::WAIT;

/// An h2 client connection (the h2 crate, driven by smol; no tokio runtime here either).
pub struct Client {
    pub send: h2::client::SendRequest<bytes::Bytes>,
}

impl Client {
    /// Connects with this stream window (the connection's is large, so one stream that stops
    /// reading leaves the others room).
    pub async fn connect(port: u16, stream_window: u32) -> Client {
        let tcp = smol::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        Client::over(tcp, stream_window).await
    }

    /// An h2 connection over `io` (TCP, or TLS after ALPN chose `h2`).
    pub async fn over<S>(io: S, stream_window: u32) -> Client
    where
        S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(stream_window)
            .initial_connection_window_size(16 << 20)
            .handshake::<_, bytes::Bytes>(io.compat())
            .await
            .unwrap();
        smol::spawn(async move {
            let _ = conn.await;
        })
        .detach();
        Client { send }
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> http::Response<h2::RecvStream> {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1{path}"))
            .header("content-type", "text/plain")
            .body(())
            .unwrap();
        let mut send = self.send.clone().ready().await.unwrap();
        let (response, mut stream) = send.send_request(req, body.is_empty()).unwrap();
        if !body.is_empty() {
            stream
                .send_data(bytes::Bytes::from(body.to_owned()), true)
                .unwrap();
        }
        response.await.unwrap()
    }

    pub async fn text(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let res = self.request(method, path, body).await;
        let status = res.status().as_u16();
        let mut body = res.into_body();
        let mut out = Vec::new();
        while let Some(data) = body.data().await {
            let data = data.unwrap();
            let _ = body.flow_control().release_capacity(data.len());
            out.extend_from_slice(&data);
        }
        (status, String::from_utf8(out).unwrap())
    }

    pub async fn metric(&self, sample: &str) -> u64 {
        let (_, text) = self.text("GET", "/metrics", "").await;
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {sample}"))
            .parse()
            .unwrap()
    }

    pub async fn wait_metric(&self, sample: &str, value: u64) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.metric(sample).await == value {
                return true;
            }
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        false
    }
}

/// An event stream on one h2 stream, read with the core's decoder.
pub struct H2Sse {
    body: h2::RecvStream,
    decoder: Decoder,
    /// Give flow-control capacity back as data is read (false: the client stops reading).
    reading: bool,
}

impl H2Sse {
    pub async fn open(client: &Client, path: &str, reading: bool) -> H2Sse {
        let res = client.request("GET", path, "").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        H2Sse {
            body: res.into_body(),
            decoder: Decoder::new(),
            reading,
        }
    }

    pub async fn event(&mut self) -> Option<MessageEvent> {
        loop {
            if let Some(e) = self.decoder.next_event() {
                return Some(e);
            }
            let data = self.body.data().await?.ok()?;
            if self.reading {
                let _ = self.body.flow_control().release_capacity(data.len());
            }
            self.decoder.feed(&data).unwrap();
        }
    }
}

/// A TLS connection to `port` trusting `cert`, offering `alpn`.
pub async fn tls_connect(
    port: u16,
    cert: &rustls::pki_types::CertificateDer<'static>,
    alpn: &[u8],
) -> futures_rustls::client::TlsStream<smol::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = smol::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    futures_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM files into a
/// fresh temporary directory named after `name` (removed on drop).
pub struct SelfSigned {
    pub dir: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub der: rustls::pki_types::CertificateDer<'static>,
}

impl SelfSigned {
    pub fn new(name: &str) -> SelfSigned {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        SelfSigned {
            dir,
            cert,
            key,
            der: made.cert.der().clone(),
        }
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
