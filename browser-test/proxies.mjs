// The README's proxy recipes, run as written, against real nginx and Caddy: ssecast behind
// each, a Chromium page's EventSource and the Node `eventsource` package through it,
// ssecast stopped for a few seconds and started again on the same --data-dir; both clients
// must come back by themselves and get every event once, in order. Only names, ports and
// certificate paths of the recipes are substituted. Run by scripts/proxies.sh (which
// installs nginx and caddy), not by the directory scan of `node --test browser-test/`.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { EventSource } from "eventsource";

// The proxies' certificates are self-signed (nginx) or from Caddy's own local CA.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

const root = fileURLToPath(new URL("..", import.meta.url));
const serverBin = join(root, "target/debug/ssecast");
// The bound of every wait: conditions are waited for, never a time, except the downtime.
const WAIT = 30_000;
// How long ssecast stays down behind the proxy: the scenario, not a wait for a condition.
const DOWNTIME = 2_000;

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** The fenced block after `<!-- recipe:NAME -->` in README.md. */
function recipe(name) {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const m = new RegExp(`<!-- recipe:${name} -->\\s*\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `no ${name} recipe in README.md`);
  return m[1];
}

/** Replaces `from` in `text`, which must hold it. */
function substitute(text, from, to) {
  assert.ok(text.includes(from), `the recipe has no ${JSON.stringify(from)}`);
  return text.split(from).join(to);
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what, cond) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A process killed at the end whatever happened; `stop()` ends it and waits. */
function run(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  let log = "";
  child.stdout.on("data", (d) => { log += d; });
  child.stderr.on("data", (d) => { log += d; });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const proc = {
    child,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  cleanups.push(() => proc.stop());
  return proc;
}

function startSsecast(port, dataDir, www) {
  return run(serverBin, ["serve", "--addr", `127.0.0.1:${port}`, "--tick", "0", "--retry", "500ms",
    "--data-dir", dataDir, "--www", www]);
}

async function publish(port, data) {
  const res = await fetch(`http://127.0.0.1:${port}/publish?topic=proxied`, {
    method: "POST", headers: { "Content-Type": "text/plain" }, body: data,
  });
  assert.equal(res.status, 200);
  return (await res.json()).id;
}

/** What `url` answers through the proxy: a status, or "dropped" when the connection is. */
async function answer(url) {
  try {
    const res = await fetch(url);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return "dropped";
  }
}

/** One proxy's run: `start(ssecastPort)` starts it and returns its https:// base URL. */
async function throughProxy(name, start) {
  const dir = mkdtempSync(join(tmpdir(), `ssecast-${name}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const www = join(dir, "www");
  mkdirSync(www);
  writeFileSync(join(www, "index.html"), "<!doctype html><link rel=\"icon\" href=\"data:,\"><title>proxied</title>\n");
  const port = await freePort();
  const dataDir = join(dir, "data");
  let ssecast = startSsecast(port, dataDir, www);
  await waitFor("ssecast", async () => (await answer(`http://127.0.0.1:${port}/healthz`)) === 200);
  const base = await start(port, dir);
  await waitFor(`${name} in front of ssecast`, async () => (await answer(`${base}/healthz`)) === 200);

  // A Chromium page's EventSource, through the proxy.
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--ignore-certificate-errors"],
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${base}/`);
  await page.evaluate(() => {
    window.got = [];
    window.source = new EventSource("/events?topic=proxied");
    window.source.onmessage = (e) => window.got.push(e.lastEventId);
  });
  // The Node client, the same way.
  const nodeGot = [];
  const node = new EventSource(`${base}/events?topic=proxied`);
  cleanups.push(() => node.close());
  node.onmessage = (e) => nodeGot.push(e.lastEventId);
  const pageGot = () => page.evaluate(() => window.got.slice());
  const state = async () => [await page.evaluate(() => window.source.readyState), node.readyState];

  await waitFor("both clients open", async () => (await state()).every((s) => s === 1));
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await publish(port, `before ${i}`));
  await waitFor("the first events", async () => (await pageGot()).length === 3 && nodeGot.length === 3);

  // ssecast stops; while it is down the proxy drops connections, never answers 502.
  await ssecast.stop();
  assert.equal(await answer(`${base}/events?topic=proxied`), "dropped", `${name} answered instead of dropping`);
  await new Promise((r) => setTimeout(r, DOWNTIME));
  assert.equal(await answer(`${base}/healthz`), "dropped");
  ssecast = startSsecast(port, dataDir, www);
  await waitFor("ssecast again", async () => (await answer(`http://127.0.0.1:${port}/healthz`)) === 200);
  // The clients come back by themselves, resume after their last id and miss nothing.
  await waitFor("both clients back", async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return /^ssecast_subscribers 2$/m.test(metrics);
  });
  for (let i = 0; i < 3; i++) ids.push(await publish(port, `after ${i}`));
  await waitFor(`every event through ${name}`, async () =>
    (await pageGot()).length >= ids.length && nodeGot.length >= ids.length);
  assert.deepEqual(await pageGot(), ids, "Chromium");
  assert.deepEqual(nodeGot, ids, "Node");
  assert.deepEqual(await state(), [1, 1]);
  assert.deepEqual(pageErrors, []);
}

test("the nginx recipe keeps EventSources through a restart of ssecast", async () => {
  await throughProxy("nginx", async (upstream, dir) => {
    const port = await freePort();
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
      "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
    let server = recipe("nginx");
    server = substitute(server, "listen 443 ssl http2;", `listen 127.0.0.1:${port} ssl http2;`);
    server = substitute(server, "events.example.com;", "localhost;");
    server = substitute(server, "/etc/letsencrypt/live/events.example.com/fullchain.pem", join(dir, "cert.pem"));
    server = substitute(server, "/etc/letsencrypt/live/events.example.com/privkey.pem", join(dir, "key.pem"));
    server = substitute(server, "127.0.0.1:8080", `127.0.0.1:${upstream}`);
    // The recipe is a server block; what surrounds it is an ordinary nginx.conf's.
    const prefix = join(dir, "nginx");
    mkdirSync(prefix);
    writeFileSync(join(prefix, "nginx.conf"), `
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events {}
http {
    access_log off;
    client_body_temp_path ${prefix}/body;
    proxy_temp_path ${prefix}/proxy;
    fastcgi_temp_path ${prefix}/fastcgi;
    uwsgi_temp_path ${prefix}/uwsgi;
    scgi_temp_path ${prefix}/scgi;
${server}
}
`);
    run("nginx", ["-p", prefix, "-c", join(prefix, "nginx.conf"), "-g", "daemon off;"]);
    return `https://localhost:${port}`;
  });
});

test("the Caddy recipe keeps EventSources through a restart of ssecast", async () => {
  await throughProxy("caddy", async (upstream, dir) => {
    const port = await freePort();
    let site = recipe("caddy");
    site = substitute(site, "events.example.com {", `localhost:${port} {`);
    site = substitute(site, "127.0.0.1:8080", `127.0.0.1:${upstream}`);
    // Global options for a test: no admin endpoint, no plain-HTTP redirect port, nothing
    // installed into the system's trust store ("localhost" gets Caddy's local CA).
    const file = join(dir, "Caddyfile");
    writeFileSync(file, `{\n\tadmin off\n\tauto_https disable_redirects\n\tskip_install_trust\n}\n${site}`);
    const env = { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, "data-home"), XDG_CONFIG_HOME: join(dir, "config-home") };
    run("caddy", ["run", "--config", file, "--adapter", "caddyfile"], { env });
    return `https://localhost:${port}`;
  });
});
