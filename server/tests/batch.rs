//! `POST /publish` with `application/x-ndjson`: a batch of JSON events, one a line, answered
//! with their ids in order, all published or none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{post, Reply, Server, Sse};

fn batch(server: &Server, query: &str, body: &str) -> Reply {
    post(
        server.port,
        &format!("/publish{query}"),
        "application/x-ndjson",
        body.as_bytes(),
        &[],
    )
}

fn ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

/// The data of the next `n` events of `sse`.
fn data(sse: &mut Sse, n: usize) -> Vec<(String, String)> {
    sse.events(n)
        .into_iter()
        .map(|e| (e.last_event_id, e.data))
        .collect()
}

#[test]
fn a_batch_is_answered_with_its_ids_in_order_and_delivered_in_order() {
    let server = Server::start(&[]);
    let mut sse = Sse::open(server.port, "/events?topic=t", &[]);
    let reply = batch(
        &server,
        "?topic=t",
        "{\"data\":\"a\"}\n{\"data\":\"b\",\"id\":\"mine\"}\r\n{\"data\":\"c\"}\n\n",
    );
    let ids = ids(&reply);
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], "mine");
    let got = data(&mut sse, 3);
    let want: Vec<(String, String)> = ids
        .iter()
        .zip(["a", "b", "c"])
        .map(|(id, d)| (id.clone(), d.to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_bad_line_refuses_the_whole_batch_and_names_its_line() {
    let server = Server::start(&[]);
    let mut sse = Sse::open(server.port, "/events", &[]);
    for (body, line) in [
        ("{\"data\":\"a\"}\n{\"data\":\"b\"}\n{\"data\":", 3),
        ("{\"data\":\"a\"}\n{\"nope\":1}\n", 2),
        ("{\"data\":\"a\",\"topic\":\"\"}\n", 1),
        (
            "{\"data\":\"a\"}\r\n\r\n{\"data\":\"b\",\"id\":\"\"}\r\n",
            3,
        ),
    ] {
        let reply = batch(&server, "", body);
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.text());
        assert!(
            reply.text().starts_with(&format!("line {line}: ")),
            "{body:?}: {}",
            reply.text()
        );
    }
    // Nothing of the refused batches was published: the next event is this one.
    server.publish("after");
    assert_eq!(sse.event().data, "after");
    assert_eq!(server.metric("ssecast_published_total"), 1);
}

#[test]
fn the_limits_of_a_batch() {
    let server = Server::start(&["--max-body", "200000"]);
    let line = "{\"data\":\"x\"}\n";
    assert_eq!(ids(&batch(&server, "", &line.repeat(1000))).len(), 1000);
    let reply = batch(&server, "", &line.repeat(1001));
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(
        reply.text().contains("1000 events at most"),
        "{}",
        reply.text()
    );
    let reply = batch(&server, "", &line.repeat(20000));
    assert_eq!(reply.status, 413, "{}", reply.text());
    let reply = batch(&server, "", "\n\r\n");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(server.metric("ssecast_published_total"), 1000);
}

#[test]
fn a_durable_batch_survives_a_restart_and_costs_one_sync() {
    let dir = std::env::temp_dir().join(format!(
        "ssecast-test-batch-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let path = dir.to_str().unwrap().to_owned();
    let server = Server::start(&["--data-dir", &path]);
    let syncs = server.metric("ssecast_store_syncs_total");
    let body: String = (0..50)
        .map(|i| format!("{{\"data\":\"e{i}\"}}\n"))
        .collect();
    let ids = ids(&batch(&server, "?topic=d", &body));
    assert_eq!(ids.len(), 50);
    assert_eq!(server.metric("ssecast_store_syncs_total"), syncs + 1);
    assert_eq!(server.metric("ssecast_store_synced_total"), 50);
    drop(server);
    let server = Server::start(&["--data-dir", &path]);
    let mut sse = Sse::open(
        server.port,
        "/events?topic=d",
        &[("Last-Event-ID", &ids[0])],
    );
    let got = data(&mut sse, 49);
    assert_eq!(got.last().unwrap(), &(ids[49].clone(), "e49".to_owned()));
    assert!(got.iter().zip(&ids[1..]).all(|((id, _), want)| id == want));
    drop(sse);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
