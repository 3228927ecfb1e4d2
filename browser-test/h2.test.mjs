// HTTP/2 in Debian's headless Chromium: a page served by `ssecast serve --tls-cert` over
// HTTPS opens more EventSources than the six HTTP/1.1 connections Chromium allows per host,
// and every one of them gets its events, over one h2 connection. Run by scripts/test.sh
// (`node --test browser-test/`). The certificate is self-signed, made here with openssl.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = fileURLToPath(new URL("..", import.meta.url));
const serverBin = join(root, "target/debug/ssecast");
// The bound of every wait: conditions are waited for, never a time.
const WAIT = 30_000;
const STREAMS = 10;

let dir;
let server;
let browser;

before(async () => {
  execFileSync("cargo", ["build", "--quiet", "-p", "ssecast-server"], { cwd: root, stdio: "inherit" });
  dir = mkdtempSync(join(tmpdir(), "ssecast-h2-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
    "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext", "basicConstraints=critical,CA:FALSE",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
  writeFileSync(join(dir, "index.html"), "<!doctype html><link rel=\"icon\" href=\"data:,\"><title>h2</title><p>h2 test page</p>\n");
  server = await start(["--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem"),
    "--www", dir, "--tick", "0"]);
});

after(async () => {
  await browser?.close();
  if (server) {
    server.child.kill("SIGTERM");
    await server.exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts `ssecast serve` on a free port; resolves with its URL once it printed it. */
function start(args) {
  const child = spawn(serverBin, ["serve", "--addr", "127.0.0.1:0", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("no URL")), WAIT);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /^listening on (https:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, exited, url: m[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`ssecast exited with ${code}`)));
  });
}

test(`${STREAMS} EventSources of one page share one HTTP/2 connection`, async () => {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // The certificate is self-signed.
      "--ignore-certificate-errors"],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`${server.url}/`);
  const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  assert.equal(protocol, "h2");
  // More streams than HTTP/1.1's six connections per host: over HTTP/1.1 the seventh
  // would never open. Each waits for its first event, published once all are open.
  const received = page.evaluate(({ n, wait }) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not every stream got its event: ${JSON.stringify(got)}`)), wait);
    const got = {};
    let open = 0;
    for (let i = 0; i < n; i++) {
      const source = new EventSource(`/events?topic=page-${i}`);
      source.onopen = () => {
        open += 1;
        if (open === n) {
          for (let j = 0; j < n; j++) {
            fetch(`/publish?topic=page-${j}`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: `hello ${j}` });
          }
        }
      };
      source.onmessage = (e) => {
        got[i] = e.data;
        source.close();
        if (Object.keys(got).length === n) {
          clearTimeout(timer);
          resolve(got);
        }
      };
    }
  }), { n: STREAMS, wait: WAIT });
  const got = await received;
  for (let i = 0; i < STREAMS; i++) assert.equal(got[i], `hello ${i}`);
  const metrics = await (await page.evaluate(async () => (await fetch("/metrics")).text()));
  const sample = (name) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics)[1]);
  assert.equal(sample("ssecast_subscriptions_total"), STREAMS);
  assert.equal(sample("ssecast_published_total"), STREAMS);
  // One connection for the page, its streams, its publishes and this request (Chromium may
  // open a second one speculatively; never one per stream).
  assert.ok(sample("ssecast_connections_accepted_total") <= 2, metrics);
  assert.deepEqual(errors, []);
});
