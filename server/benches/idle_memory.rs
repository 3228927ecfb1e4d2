//! W1-style memory over both protocols: N idle subscribers over HTTP/1.1 (one connection
//! each) and over HTTP/2 (M streams per connection), in plain TCP and over TLS, against the
//! release binary; prints the server's RSS growth per subscriber. A figure, not a check:
//! `IDLE_SUBSCRIBERS=5000 cargo bench -p ssecast-server --bench idle_memory`
//! (`IDLE_SUBSCRIBERS=N`, `STREAMS_PER_CONNECTION=M`, 2000 and 100 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/h2.rs"]
mod h2client;

use common::{Server, WAIT};
use h2client::{tls_connect, Client, H2Sse, SelfSigned};

fn main() {
    use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
    let n: usize = std::env::var("IDLE_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let per_conn: usize = std::env::var("STREAMS_PER_CONNECTION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let tls = SelfSigned::new("ssecast-h2mem");
    let (cert, key, der) = (&tls.cert, &tls.key, &tls.der);
    let max_streams = per_conn.to_string();
    let plain = vec![
        "--max-subscribers",
        "100000",
        "--keepalive",
        "0",
        "--threads",
        "1",
        "--h2-max-streams",
        &max_streams,
    ];
    let mut tls = plain.clone();
    tls.extend([
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let mut figures = Vec::new();
    for (name, args, secure, h2) in [
        ("HTTP/1.1", &plain, false, false),
        ("HTTP/2", &plain, false, true),
        ("HTTP/1.1 over TLS", &tls, true, false),
        ("HTTP/2 over TLS", &tls, true, true),
    ] {
        let server = Server::start(args);
        let pid = server.child.id();
        let before = common::rss_kib(pid);
        let bytes = smol::block_on(async {
            // Held open until measured.
            let mut plain_h1 = Vec::new();
            let mut tls_h1 = Vec::new();
            let mut clients = Vec::new();
            let mut streams = Vec::new();
            let request = b"GET /events?topic=idle HTTP/1.1\r\nHost: localhost\r\n\r\n";
            if !h2 {
                for _ in 0..n {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    if secure {
                        let mut io = tls_connect(server.port, der, b"http/1.1").await;
                        io.write_all(request).await.unwrap();
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            let k = io.read(&mut buf).await.unwrap();
                            assert!(k > 0);
                            head.extend_from_slice(&buf[..k]);
                        }
                        tls_h1.push(io);
                    } else {
                        let mut io = smol::net::TcpStream::connect(("127.0.0.1", server.port))
                            .await
                            .unwrap();
                        io.write_all(request).await.unwrap();
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            let k = io.read(&mut buf).await.unwrap();
                            assert!(k > 0);
                            head.extend_from_slice(&buf[..k]);
                        }
                        plain_h1.push(io);
                    }
                }
            } else {
                for _ in 0..n.div_ceil(per_conn) {
                    let client = if secure {
                        Client::over(tls_connect(server.port, der, b"h2").await, 65_535).await
                    } else {
                        Client::connect(server.port, 65_535).await
                    };
                    for _ in 0..per_conn {
                        if streams.len() < n {
                            streams.push(H2Sse::open(&client, "/events?topic=idle", true).await);
                        }
                    }
                    clients.push(client);
                }
            }
            // Asked over another connection: every h2 one has all the streams it may have.
            let counted = if secure {
                let client = Client::over(tls_connect(server.port, der, b"h2").await, 65_535).await;
                client.wait_metric("ssecast_subscribers", n as u64).await
            } else {
                server.wait_metric("ssecast_subscribers", n as u64, WAIT * 6)
            };
            assert!(counted, "{name}");
            (common::rss_kib(pid) - before) as f64 * 1024.0 / n as f64
        });
        figures.push(format!("{name} {bytes:.0} bytes"));
    }
    println!(
        "idle subscribers: {n} (HTTP/2: {per_conn} streams per connection); RSS per subscriber: {}",
        figures.join(", ")
    );
}
