// The demo page: the default topic through EventSource and through fetch + the wasm decoder,
// a publish box, a frame playground and the server's counters. The SSE wire format is never
// handled here: the browser and the wasm module do that.

import { DEFAULT_RETRY_MS, subscribe } from "./ssecast-client.js";

const $ = (selector, root = document) => root.querySelector(selector);

/** Events kept on screen per feed, so a page left open does not grow without bound. */
const FEED_MAX = 200;
/** The event type ssecast sends a resuming client whose Last-Event-ID is too old. */
const MISSED = "ssecast.missed";

function feedView(root) {
  const list = $(".feed", root);
  const dot = $(".dot", root);
  const state = $(".state", root);
  const lastId = $(".last-id", root);
  return {
    add({ type, data, lastEventId }) {
      const item = document.createElement("li");
      item.dataset.id = lastEventId;
      item.dataset.type = type;
      const id = document.createElement("span");
      id.className = "id";
      id.textContent = lastEventId === "" ? "–" : `#${lastEventId}`;
      item.append(id);
      if (type !== "message") {
        const tag = document.createElement("span");
        tag.className = "type";
        tag.textContent = type;
        item.append(tag);
      }
      const body = document.createElement("span");
      body.className = "data";
      body.textContent = data;
      if (type === MISSED) {
        item.classList.add("missed");
        body.title = "The server's history no longer reaches back to this id: events were missed";
      }
      item.append(body);
      list.prepend(item);
      while (list.childElementCount > FEED_MAX) list.lastElementChild.remove();
      lastId.textContent = lastEventId === "" ? "none" : lastEventId;
    },
    status(name, text = name) {
      dot.dataset.state = name;
      state.textContent = text;
    },
  };
}

// --- The browser's own EventSource: needs nothing built.

const esView = feedView($("#es"));
const source = new EventSource("/events");
const listened = new Set();
// EventSource delivers only the event types it listens for, by name.
function listen(type) {
  if (type === "" || listened.has(type)) return;
  listened.add(type);
  source.addEventListener(type, (e) =>
    esView.add({ type: e.type, data: e.data, lastEventId: e.lastEventId }));
}
listen("message");
listen(MISSED);
source.addEventListener("open", () => esView.status("open"));
source.addEventListener("error", () => {
  if (source.readyState === EventSource.CONNECTING) esView.status("reconnecting");
  else esView.status("closed");
});

// --- Publishing.

const publishForm = $("#publish");
const publishResult = $("#publish-result");
publishForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const fields = publishForm.elements;
  const event = fields.event.value.trim();
  const topic = fields.topic.value.trim() || "default";
  // Before publishing, so the EventSource is listening when the event arrives.
  listen(event);
  const body = { data: fields.data.value, topic };
  if (event !== "") body.event = event;
  publishResult.className = "";
  publishResult.textContent = "publishing…";
  try {
    const response = await fetch("/publish", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error((await response.text()).trim() || `HTTP ${response.status}`);
    const { id } = await response.json();
    publishResult.className = "ok";
    publishResult.textContent = `published to ${topic} as id ${id}`;
    publishResult.dataset.id = id;
  } catch (error) {
    publishResult.className = "error";
    publishResult.textContent = error.message;
  }
});

// --- Counters from /metrics (Prometheus text).

const counters = {
  ssecast_subscribers: $("#m-subscribers"),
  ssecast_published_total: $("#m-published"),
  ssecast_dropped_total: $("#m-dropped"),
};
async function refreshMetrics() {
  try {
    const response = await fetch("/metrics", { cache: "no-store" });
    if (!response.ok) return;
    for (const line of (await response.text()).split("\n")) {
      const [name, value] = line.split(" ");
      if (name in counters) counters[name].textContent = Number(value).toLocaleString("en");
    }
  } catch {
    // The server is restarting; the next refresh will tell.
  }
}
refreshMetrics();
setInterval(refreshMetrics, 1000);

// --- Everything below needs the wasm package.

let wasm;
try {
  wasm = await import("./pkg/ssecast_wasm.js");
  await wasm.default();
} catch (error) {
  $("#wasm-error").textContent = error.message;
  $("#wasm-missing").hidden = false;
  document.body.classList.add("no-wasm");
  $("#wasm .state").textContent = "needs the wasm package";
  console.info("wasm package unavailable:", error.message);
}

if (wasm) {
  startWasmFeed(wasm.Decoder);
  startPlayground(wasm);
}

function startWasmFeed(Decoder) {
  const view = feedView($("#wasm"));
  const decoder = new Decoder();
  const retry = $("#wasm .retry");
  const interrupt = $("#interrupt");
  const showRetry = () => {
    retry.textContent = decoder.retry === undefined
      ? `${DEFAULT_RETRY_MS} ms until the server sets one`
      : `${decoder.retry} ms`;
  };
  showRetry();
  const stream = subscribe("/events", {
    decoder,
    headers: { Authorization: "Bearer demo" },
    onEvent: (event) => {
      view.add(event);
      showRetry();
    },
    onStatus: ({ state, delay }) => {
      showRetry();
      interrupt.disabled = state !== "open";
      view.status(state, state === "reconnecting" ? `reconnecting in ${delay} ms` : state);
    },
    onError: (error) => view.add({ type: "error", data: error.message, lastEventId: decoder.lastEventId }),
  });
  interrupt.addEventListener("click", () => stream.interrupt());
  window.addEventListener("pagehide", () => stream.close());
}

// --- The frame playground.

// Text with escapes (\r \n \0 \\ \xHH) into parts: strings, and single bytes for \xHH.
function unescape(text) {
  const parts = [];
  let plain = "";
  for (let i = 0; i < text.length; i++) {
    const next = text[i + 1];
    if (text[i] !== "\\" || next === undefined) {
      plain += text[i];
      continue;
    }
    const simple = { r: "\r", n: "\n", 0: "\0", "\\": "\\" }[next];
    if (simple !== undefined) {
      plain += simple;
      i += 1;
    } else if (next === "x" && /^[0-9a-f]{2}$/i.test(text.slice(i + 2, i + 4))) {
      parts.push(plain, parseInt(text.slice(i + 2, i + 4), 16));
      plain = "";
      i += 3;
    } else {
      plain += "\\";
    }
  }
  parts.push(plain);
  return parts;
}

// A field's string: \xHH is the code point U+00HH.
function unescapeText(text) {
  return unescape(text).map((p) => (typeof p === "number" ? String.fromCharCode(p) : p)).join("");
}

// Raw bytes: \xHH is that byte, the rest is UTF-8.
function unescapeBytes(text) {
  const utf8 = new TextEncoder();
  const chunks = unescape(text).map((p) => (typeof p === "number" ? [p] : [...utf8.encode(p)]));
  return new Uint8Array(chunks.flat());
}

// Bytes back into the escaped text `unescapeBytes` reads; LF stays a real line break.
function escapeBytes(bytes) {
  const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
  return text.replace(/[\\\r\0]|[\x01-\x08\x0b-\x1f\x7f\ufeff]/g, (c) =>
    ({ "\\": "\\\\", "\r": "\\r", "\0": "\\0", "\ufeff": "\\xEF\\xBB\\xBF" })[c] ??
      `\\x${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`);
}

// Bytes as text with every line ending and NUL shown as its escape (\n, \r, \0).
function showWire(pre, bytes) {
  pre.replaceChildren();
  const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
  const names = { "\n": "\\n", "\r": "\\r", "\0": "\\0" };
  let plain = "";
  for (const c of text) {
    if (!(c in names)) {
      plain += c;
      continue;
    }
    const span = document.createElement("span");
    span.className = "eol";
    span.textContent = names[c];
    pre.append(plain, span);
    plain = c === "\n" ? "\n" : "";
  }
  pre.append(plain);
}

function hex(bytes) {
  const rows = [];
  for (let i = 0; i < bytes.length; i += 16) {
    rows.push([...bytes.subarray(i, i + 16)].map((b) => b.toString(16).padStart(2, "0")).join(" "));
  }
  return rows.join("\n");
}

function startPlayground({ Decoder, encode }) {
  const encodeForm = $("#encode");
  const decodeForm = $("#decode");
  const wire = $("#wire");
  const encodeError = $("#encode-error");
  let bytes = new Uint8Array();

  function runEncode() {
    const f = encodeForm.elements;
    const event = { data: unescapeText(f.data.value) };
    if (f.event.value !== "") event.event = unescapeText(f.event.value);
    if (f.id.value !== "") event.id = unescapeText(f.id.value);
    if (f.retry.value.trim() !== "") event.retry = Number(f.retry.value);
    try {
      bytes = encode(event);
      encodeError.hidden = true;
      encodeForm.classList.remove("refused");
    } catch (error) {
      bytes = new Uint8Array();
      encodeError.textContent = `Refused: ${error.message}`;
      encodeError.hidden = false;
      encodeForm.classList.add("refused");
    }
    showWire(wire, bytes);
    $("#wire-len").textContent = `${bytes.length} bytes`;
    $("#wire-hex").textContent = hex(bytes);
    $("#to-decoder").disabled = bytes.length === 0;
  }

  function runDecode() {
    const decoder = new Decoder();
    let events;
    let problem = "";
    try {
      events = decoder.feed(unescapeBytes(decodeForm.elements.raw.value));
    } catch (error) {
      events = error.events ?? [];
      problem = ` · ${error.message}`;
    }
    const rows = events.map(({ type, data, lastEventId }) => {
      const row = document.createElement("tr");
      for (const value of [type, data, lastEventId]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    });
    if (rows.length === 0) {
      const row = document.createElement("tr");
      row.className = "empty";
      row.innerHTML = '<td colspan="3">no event dispatched yet: an event ends with a blank line</td>';
      rows.push(row);
    }
    $("#decoded tbody").replaceChildren(...rows);
    const retry = decoder.retry === undefined ? "none" : `${decoder.retry} ms`;
    $("#decoder-state").textContent = `${events.length} event${events.length === 1 ? "" : "s"}` +
      ` · lastEventId "${decoder.lastEventId}" · retry ${retry}${problem}`;
    decoder.free();
  }

  encodeForm.addEventListener("input", runEncode);
  encodeForm.addEventListener("submit", (e) => e.preventDefault());
  decodeForm.addEventListener("input", runDecode);
  decodeForm.addEventListener("submit", (e) => e.preventDefault());
  $("#to-decoder").addEventListener("click", () => {
    decodeForm.elements.raw.value = escapeBytes(bytes);
    runDecode();
    decodeForm.scrollIntoView({ behavior: "smooth", block: "nearest" });
  });
  runEncode();
  runDecode();
}
