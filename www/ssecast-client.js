// A fetch-based Server-Sent Events client: what the browser's EventSource cannot do, such as
// sending an Authorization header. The wasm Decoder parses the stream and keeps the last event
// ID and the server's `retry:` across connections; this module only moves bytes and schedules
// reconnections.
//
//   import init, { Decoder } from "./pkg/ssecast_wasm.js";
//   import { subscribe } from "./ssecast-client.js";
//   await init();
//   const stream = subscribe("/events", {
//     decoder: new Decoder(),
//     headers: { Authorization: "Bearer secret" },
//     onEvent: (e) => console.log(e.type, e.data, e.lastEventId),
//   });
//   stream.close();

/** The reconnection delay until the server sends `retry:`, as browsers use. */
export const DEFAULT_RETRY_MS = 3000;

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Subscribes to `url` and keeps the subscription alive until `close()`.
 *
 * After the stream ends or fails (network error, server gone, HTTP 5xx) it waits the
 * server's `retry:` time (or `retry`; at least a 5xx's `Retry-After`) and reconnects with
 * `Last-Event-ID`. An answer that is
 * not an event stream (HTTP 204, 4xx, another content type) closes it for good, as it does
 * an EventSource.
 *
 * @param {string | URL} url
 * @param {object} options
 * @param {import("./pkg/ssecast_wasm.js").Decoder} options.decoder a fresh wasm Decoder
 * @param {(event: {type: string, data: string, lastEventId: string}) => void} options.onEvent
 * @param {HeadersInit} [options.headers] sent with every request
 * @param {(status: {state: "connecting" | "open" | "reconnecting" | "closed",
 *   delay?: number, reason?: string}) => void} [options.onStatus]
 * @param {(error: Error) => void} [options.onError] a limit was hit: the event was dropped
 * @param {number} [options.retry] milliseconds until the server sends `retry:`
 */
export function subscribe(url, options) {
  return new EventStream(url, options);
}

class EventStream {
  #url;
  #decoder;
  #headers;
  #onEvent;
  #onStatus;
  #onError;
  #retry;
  #closed = new AbortController();
  #attempt = null;

  constructor(url, { decoder, onEvent, headers = {}, onStatus = () => {}, onError = () => {},
    retry = DEFAULT_RETRY_MS }) {
    this.#url = url;
    this.#decoder = decoder;
    this.#headers = headers;
    this.#onEvent = onEvent;
    this.#onStatus = onStatus;
    this.#onError = onError;
    this.#retry = retry;
    this.#run();
  }

  /** The last event ID received: what the next connection sends as `Last-Event-ID`. */
  get lastEventId() {
    return this.#decoder.lastEventId;
  }

  /** Ends the current connection as a network failure would: the stream reconnects. */
  interrupt() {
    this.#attempt?.abort(new Error("interrupted"));
  }

  /** Ends the subscription for good. */
  close() {
    this.#closed.abort();
    this.#attempt?.abort();
  }

  async #run() {
    const closed = this.#closed.signal;
    while (!closed.aborted) {
      const outcome = await this.#connect();
      if (closed.aborted) break;
      if (outcome.fatal) {
        this.#closed.abort();
        this.#onStatus({ state: "closed", reason: outcome.fatal });
        return;
      }
      // Keeps the last event ID and retry time, forgets the partial event.
      this.#decoder.reconnect();
      // Timers fire at once past 2^31 - 1 ms, and `retry:` may be any number of digits.
      const delay = Math.min(Math.max(this.#decoder.retry ?? this.#retry, outcome.retryAfter ?? 0),
        MAX_TIMER_MS);
      this.#onStatus({ state: "reconnecting", delay, reason: outcome.reason });
      await sleep(delay, closed);
    }
    this.#onStatus({ state: "closed", reason: "closed" });
  }

  // One connection, until it ends. Returns why it ended; `fatal` means do not reconnect.
  async #connect() {
    this.#attempt = new AbortController();
    const headers = new Headers(this.#headers);
    headers.set("Accept", "text/event-stream");
    const lastEventId = this.#decoder.lastEventId;
    if (lastEventId !== "") headers.set("Last-Event-ID", lastEventId);
    this.#onStatus({ state: "connecting" });
    try {
      const response = await fetch(this.#url, {
        headers,
        cache: "no-store",
        signal: this.#attempt.signal,
      });
      const type = response.headers.get("Content-Type") ?? "";
      if (response.status >= 500) {
        await response.body?.cancel();
        // A 503 at the subscriber limit says when to come back, in seconds.
        const seconds = Number(response.headers.get("Retry-After"));
        return { reason: `HTTP ${response.status}`, retryAfter: seconds > 0 ? seconds * 1000 : 0 };
      }
      if (response.status !== 200 || !/^text\/event-stream\s*(;|$)/i.test(type)) {
        await response.body?.cancel();
        return { fatal: `HTTP ${response.status} ${type}`.trim() };
      }
      this.#onStatus({ state: "open" });
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return { reason: "the stream ended" };
        this.#deliver(value);
      }
    } catch (error) {
      return { reason: error?.message ?? String(error) };
    }
  }

  #deliver(chunk) {
    let events;
    try {
      events = this.#decoder.feed(chunk);
    } catch (error) {
      // A limit: the offending event is dropped, the others come with the error.
      events = error.events ?? [];
      this.#onError(error);
    }
    for (const event of events) this.#onEvent(event);
  }
}

// Resolves after `ms`, or at once when `signal` aborts.
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
