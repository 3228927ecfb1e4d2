// The demo page in Debian's headless Chromium against a real `ssecast serve --tick 200ms`:
// both feeds, publishing, the playground, the counters, a dropped connection and a server
// restart. Run by scripts/test.sh (`node --test browser-test/`), which installs Chromium and
// the wasm tools first. Saves screenshots under target/browser/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = fileURLToPath(new URL("..", import.meta.url));
const serverBin = join(root, "target/debug/ssecast");
const shots = join(root, "target/browser");
// The bound of every wait. Tests wait for conditions, never for a time or a count of ticks:
// on a loaded machine everything arrives later, and this only bounds how much later.
const WAIT = 30_000;

// Everything started here, stopped in `after` whatever happened.
const servers = new Set();
let browser;

before(() => {
  const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: "inherit" });
  run("cargo", ["build", "--quiet", "-p", "ssecast-server"]);
  // The same build scripts/run.sh does.
  run("wasm-pack", ["--quiet", "build", "--release", "--target", "web", "--mode", "no-install",
    "--out-dir", "../www/pkg", "wasm"]);
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  await Promise.all([...servers].map((s) => s.stop()));
});

/** Starts `ssecast serve` and resolves once it printed its URL. */
function startServer(args) {
  const child = spawn(serverBin, ["serve", "--tick", "200ms", "--retry", "500ms", ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d) => { log += d; });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const server = {
    child,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      servers.delete(server);
    },
  };
  servers.add(server);
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no URL within ${WAIT} ms:\n${log}`)), WAIT);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ ...server, url: m[1], port: Number(m[2]) });
      }
    });
    child.on("exit", (code) => reject(new Error(`ssecast serve exited with ${code}:\n${log}`)));
  });
}

async function newPage() {
  browser ??= await chromium.launch({
    executablePath: "/usr/bin/chromium",
    // Playwright gives every launch a fresh, temporary user data dir.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = [];
  // While `tolerate` matches, console errors matching it are expected (a server restart makes
  // the browser log refused connections).
  const state = { tolerate: null };
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (state.tolerate?.test(m.text())) return;
    const where = m.location().url ? ` at ${new URL(m.location().url).pathname}` : "";
    errors.push(`console error: ${m.text()}${where}`);
  });
  return { page, context, errors, state };
}

/** The events a feed shows, oldest first: `[id, type, data]`. */
function feed(page, name) {
  return page.$$eval(`#${name} .feed li`, (items) =>
    items.reverse().map((li) => [li.dataset.id, li.dataset.type, li.querySelector(".data").textContent]));
}

/**
 * Polls `probe` (async, returns a value or a falsy one) until it gives a value, for at most
 * WAIT; then fails with `what` and `describe()`.
 */
async function waitFor(probe, what, describe = async () => "") {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${WAIT} ms waiting for ${what}${await describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until `predicate(feed)` holds for the named feed. */
function waitForFeed(page, name, predicate, what) {
  return waitFor(async () => {
    const events = await feed(page, name);
    return predicate(events) && events;
  }, `${name} feed: ${what}`, async () => `; it shows ${JSON.stringify(await feed(page, name))}`);
}

/**
 * The events both feeds have, checking that they agree: from the first event both have to
 * the last event both have, the two sequences are identical (no gap, duplicate or
 * reordering on either side) and their ids consecutive. Either feed may have newer events
 * than the other (they were read one after the other) or older ones (it started earlier).
 */
function commonEvents(a, b) {
  const inB = new Set(b.map((e) => e[0]));
  const common = a.filter((e) => inB.has(e[0]));
  if (common.length === 0) return common;
  const slice = (events) => events.slice(
    events.findIndex((e) => e[0] === common[0][0]),
    events.findIndex((e) => e[0] === common.at(-1)[0]) + 1,
  );
  assert.deepEqual(slice(a), slice(b));
  for (const events of [a, b]) {
    const ids = slice(events).map((e) => Number(e[0]));
    ids.forEach((id, i) => i === 0 || assert.equal(id, ids[i - 1] + 1, `ids ${ids.join(",")}`));
  }
  return common;
}

/**
 * Waits until the two feeds (after `from`, if given: a function from a feed to its part to
 * compare) agree and their common events satisfy `enough`; returns those events.
 */
function waitForSameEvents(page, enough, what, from = (events) => events) {
  let last = {};
  return waitFor(async () => {
    const es = from(await feed(page, "es"));
    const wasm = from(await feed(page, "wasm"));
    last = { es, wasm };
    const common = commonEvents(es, wasm);
    return enough(common) && common;
  }, `both feeds to show ${what}`, async () => `; they show ${JSON.stringify(last)}`);
}

/** The common events hold `id` with at least `n` events after it. */
const holds = (id, n) => (common) => {
  const i = common.findIndex((e) => e[0] === id);
  return i >= 0 && common.length - 1 - i >= n;
};

const hasTicks = (n) => (events) => events.filter(([, type, data]) => type === "message" && /^tick \d+$/.test(data)).length >= n;

test("the demo page against a running server", { timeout: 300_000 }, async (t) => {
  const server = await startServer(["--addr", "127.0.0.1:0", "--www", "www"]);
  const { page, errors, state } = await newPage();
  const streams = [];
  page.on("request", async (request) => {
    if (new URL(request.url()).pathname === "/events") streams.push(await request.allHeaders());
  });

  try {
    await page.goto(server.url);
    await t.test("both feeds receive the same ticks", async () => {
      await waitForFeed(page, "es", hasTicks(8), "8 ticks");
      await waitForFeed(page, "wasm", hasTicks(8), "8 ticks");
      await waitForSameEvents(page, (common) => hasTicks(5)(common), "5 ticks in common");
    });

    await t.test("the fetch feed sends its custom header", () => {
      const fetched = streams.filter((h) => h.authorization !== undefined);
      assert.equal(fetched.length, 1, JSON.stringify(streams));
      assert.equal(fetched[0].authorization, "Bearer demo");
      assert.equal(fetched[0].accept, "text/event-stream");
      assert.equal(fetched[0]["last-event-id"], undefined);
    });

    await t.test("the counters come from /metrics", async () => {
      // The page's two streams, and the ticks published so far.
      await page.waitForFunction(() => document.querySelector("#m-subscribers").textContent === "2");
      await page.waitForFunction(() => Number(document.querySelector("#m-published").textContent.replace(/,/g, "")) >= 8);
      assert.equal(await page.textContent("#m-dropped"), "0");
    });

    await t.test("a message published from the box appears in both feeds", async () => {
      const data = `hello from the browser test ${process.pid}`;
      await page.fill("#publish [name=data]", data);
      await page.fill("#publish [name=event]", "greeting");
      await page.click("#publish button[type=submit]");
      await page.waitForSelector("#publish-result.ok");
      const id = await page.getAttribute("#publish-result", "data-id");
      assert.match(await page.textContent("#publish-result"), new RegExp(`^published to default as id ${id}$`));
      // In both feeds, in sequence between ticks: the same events before it, and 3 after.
      const common = await waitForSameEvents(page, holds(id, 3), `id ${id} and 3 events after it`);
      assert.deepEqual(common.find((e) => e[0] === id), [id, "greeting", data]);
      assert.ok(common[0][0] !== id, `events before ${id}: ${JSON.stringify(common)}`);
    });

    await t.test("the playground encodes and decodes a multi-line event", async () => {
      await page.fill("#encode [name=data]", "line one\nline two");
      await page.fill("#encode [name=event]", "update");
      await page.fill("#encode [name=id]", "7");
      await page.fill("#encode [name=retry]", "1500");
      const wire = "event: update\nid: 7\nretry: 1500\ndata: line one\ndata: line two\n\n";
      // Line endings are shown as their escapes, each before its real line break.
      assert.equal(await page.textContent("#wire"), wire.replace(/\n/g, "\\n\n"));
      assert.equal(await page.textContent("#wire-len"), `${Buffer.byteLength(wire)} bytes`);
      await page.click("#to-decoder");
      assert.equal(await page.inputValue("#decode [name=raw]"), wire);
      const rows = () => page.$$eval("#decoded tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
      assert.deepEqual(await rows(), [["update", "line one\nline two", "7"]]);
      assert.equal(await page.textContent("#decoder-state"), '1 event · lastEventId "7" · retry 1500 ms');

      // Pasted bytes with CRLF line endings, a BOM and invalid UTF-8, written as escapes.
      await page.fill("#decode [name=raw]", "\\xEF\\xBB\\xBFdata: a\\r\\ndata: b\\xFF\\r\\n\\r\\nid: 9\\ndata: c\\n\\ndata: d");
      assert.deepEqual(await rows(), [["message", "a\nb\uFFFD", ""], ["message", "c", "9"]]);
    });

    await t.test("an id with CR or LF is refused with a visible message", async () => {
      await page.fill("#encode [name=id]", "1\\r\\n2");
      await page.waitForSelector("#encode-error", { state: "visible" });
      assert.equal(await page.textContent("#encode-error"), "Refused: id contains a carriage return (CR)");
      assert.equal(await page.textContent("#wire"), "");
      await page.fill("#encode [name=id]", "1\\n2");
      assert.equal(await page.textContent("#encode-error"), "Refused: id contains a line feed (LF)");
      await page.fill("#encode [name=id]", "12");
      await page.waitForSelector("#encode-error", { state: "hidden" });
      assert.match(await page.textContent("#wire"), /^event: update\\n\nid: 12\\n\n/);
    });

    await t.test("a dropped fetch stream resumes with Last-Event-ID after the server's retry", async () => {
      const lastId = (await feed(page, "wasm")).at(-1)[0];
      // Every state the status line shows, however briefly (a loaded machine may not poll
      // the page during the 500 ms wait).
      await page.evaluate(() => {
        const state = document.querySelector("#wasm .state");
        window.seenStates = [state.textContent];
        new MutationObserver(() => window.seenStates.push(state.textContent))
          .observe(state, { childList: true, characterData: true, subtree: true });
      });
      await page.click("#interrupt");
      // 500 ms is the server's `retry:` (--retry 500ms), not the client's 3000 ms default.
      await page.waitForFunction(() => window.seenStates.includes("reconnecting in 500 ms"));
      // The same events as the EventSource, which never dropped: nothing missed or repeated
      // across the reconnection.
      await waitForSameEvents(page, holds(lastId, 10), `id ${lastId} and 10 events after it`);
      const resumed = streams.filter((h) => h.authorization !== undefined);
      assert.equal(resumed.length, 2, JSON.stringify(streams));
      assert.ok(Number(resumed[1]["last-event-id"]) >= Number(lastId), JSON.stringify(resumed[1]));
    });

    await t.test("both feeds come back after the server restarts", async () => {
      // From here on the browser reports refused connections. Their console messages may
      // reach this process well after the server is back (on a loaded machine), so they
      // stay tolerated to the end; a server that stayed down fails the waits below anyway.
      state.tolerate = /net::ERR_(CONNECTION_REFUSED|EMPTY_RESPONSE|CONNECTION_RESET|INCOMPLETE_CHUNKED_ENCODING)|Failed to load resource/;
      await server.stop();
      const again = await startServer(["--addr", `127.0.0.1:${server.port}`, "--www", "www"]);
      // The new server has no history: each client is told it missed events after its id,
      // the last one it had before the restart (ticks kept coming until the server stopped,
      // so that id is read from the feed, just before the marker), then gets the new
      // server's ticks.
      const before = {};
      for (const name of ["es", "wasm"]) {
        const events = await waitForFeed(page, name, (es) => {
          const i = es.findIndex((e) => e[1] === "ssecast.missed");
          return i > 0 && hasTicks(5)(es.slice(i));
        }, "the missed marker and 5 new ticks");
        const i = events.findIndex((e) => e[1] === "ssecast.missed");
        before[name] = events[i - 1][0];
        assert.equal(events[i][2], before[name], `${name}: ${JSON.stringify(events.slice(i - 1, i + 1))}`);
      }
      const sinceRestart = (events) => events.slice(events.findIndex((e) => e[1] === "ssecast.missed") + 1);
      await waitForSameEvents(page, hasTicks(5), "5 ticks in common since the restart", sinceRestart);
      const last = streams.filter((h) => h.authorization !== undefined).at(-1);
      assert.equal(last["last-event-id"], before.wasm);
      await again.stop();
    });

    await page.screenshot({ path: join(shots, "page.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(shots, "page-phone.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("without the wasm package the page says how to build it and EventSource still works", { timeout: 60_000 }, async () => {
  const www = mkdtempSync(join(tmpdir(), "ssecast-www-"));
  try {
    for (const name of readdirSync(join(root, "www"))) {
      if (name !== "pkg") cpSync(join(root, "www", name), join(www, name), { recursive: true });
    }
    const server = await startServer(["--addr", "127.0.0.1:0", "--www", www]);
    const { page, errors } = await newPage();
    try {
      await page.goto(server.url);
      await page.waitForSelector("#wasm-missing", { state: "visible" });
      assert.match(await page.textContent("#wasm-missing"), /scripts\/run\.sh/);
      await waitForFeed(page, "es", hasTicks(3), "3 ticks");
      assert.deepEqual(await feed(page, "wasm"), []);
      // The only error is the browser reporting the missing module.
      assert.deepEqual(errors, ["console error: Failed to load resource: the server responded with a status of 404 (Not Found) at /pkg/ssecast_wasm.js"]);
    } finally {
      await page.close();
      await server.stop();
    }
  } finally {
    rmSync(www, { recursive: true, force: true });
  }
});

test("the fetch client on its own: headers, limits, close, refusal", { timeout: 60_000 }, async () => {
  const server = await startServer(["--addr", "127.0.0.1:0", "--www", "www"]);
  const { page, errors } = await newPage();
  const requests = [];
  page.on("request", async (request) => {
    if (new URL(request.url()).pathname === "/events") requests.push(await request.allHeaders());
  });
  const subscribers = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return Number(/^ssecast_subscribers (\d+)$/m.exec(text)[1]);
  };
  try {
    // A page of the server's origin that subscribes to nothing by itself.
    await page.goto(`${server.url}/healthz`);
    await page.evaluate(async () => {
      const { default: init, Decoder } = await import("/pkg/ssecast_wasm.js");
      const { subscribe } = await import("/ssecast-client.js");
      await init();
      window.log = { events: [], errors: [], states: [], refused: [] };
      window.stream = subscribe("/events?topic=client-test", {
        decoder: new Decoder({ maxLine: 64 }),
        headers: { Authorization: "Bearer t0ken", "X-Extra": "1" },
        onEvent: (e) => log.events.push(e),
        onError: (e) => log.errors.push(e.message),
        onStatus: (s) => log.states.push(s.state),
      });
      // An answer that is not an event stream ends it for good.
      subscribe("/events?topic=", {
        decoder: new Decoder(),
        onEvent: (e) => log.events.push(e),
        onStatus: (s) => log.refused.push(s),
      });
    });
    await page.waitForFunction(() => log.states.includes("open"));
    assert.equal(await subscribers(), 1);

    const ids = [];
    for (const body of [{ data: "first", event: "a" }, { data: "x".repeat(100) }, { data: "last" }]) {
      const response = await fetch(`${server.url}/publish`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ topic: "client-test", ...body }),
      });
      ids.push((await response.json()).id);
    }
    // The two events that fit, and the refused subscription's end.
    await page.waitForFunction(() => log.events.length >= 2 && log.refused.length >= 2);
    const log = await page.evaluate(() => log);
    // The long event broke maxLine: dropped and reported; the others arrive intact.
    assert.deepEqual(log.events, [
      { type: "a", data: "first", lastEventId: ids[0] },
      { type: "message", data: "last", lastEventId: ids[2] },
    ]);
    assert.deepEqual(log.errors, ["line longer than 64 bytes"]);
    assert.deepEqual(log.refused, [
      { state: "connecting" },
      { state: "closed", reason: "HTTP 400 text/plain; charset=utf-8" },
    ]);
    const sent = requests.find((h) => h.authorization !== undefined);
    assert.equal(sent.authorization, "Bearer t0ken");
    assert.equal(sent["x-extra"], "1");

    await page.evaluate(() => stream.close());
    await page.waitForFunction(() => log.states.at(-1) === "closed");
    // The server sees the subscriber leave.
    await waitFor(async () => await subscribers() === 0, "the server to see the subscriber leave");
    assert.deepEqual(await page.evaluate(() => log.states), ["connecting", "open", "closed"]);
    // The only errors are the browser reporting the refused subscription, and the favicon
    // a page that is not HTML asks for.
    assert.deepEqual(errors.sort(), [
      "console error: Failed to load resource: the server responded with a status of 400 (Bad Request) at /events",
      "console error: Failed to load resource: the server responded with a status of 404 (Not Found) at /favicon.ico",
    ]);
  } finally {
    await page.close();
    await server.stop();
  }
});
