// @ts-check
/**
 * cloudflare-durable in the browser: read, call and watch durable objects.
 *
 * ```js
 * import { connect } from "/durable/v1/client.js";
 *
 * const durable = connect({
 *   url: "/durable",                                    // the host: same origin, or a Worker's URL
 *   ticket: (model, id) => fetch(`/tickets/${id}`, { method: "POST" }).then((r) => r.text()),
 * });
 * const { version, state } = await durable.get("Auction", "a1");
 * const count = await durable.call("Auction", "a1", "bid", { bidder: "ann", amount: 12 });
 * for await (const item of durable.subscribe("Auction", "a1", { events: true })) {
 *   if (item.type === "snapshot") render(item.state);
 * }
 * ```
 *
 * Everything goes over WebSockets (protocol version 1), so a page may talk to a
 * host on another origin without CORS. A browser cannot set the Authorization
 * header on a WebSocket, and a page must not hold the server's token: it
 * presents a short-lived ticket, signed by the application for one object and a
 * few operations, as the subprotocol `durable.ticket.<ticket>` beside
 * `durable.v1` (never in the URL, where it would reach logs and history).
 * `ticket` is asked again before every connection and reconnection.
 *
 * Subscriptions resume by version: after a disconnect they reconnect with a
 * jittered, capped backoff and continue from the last snapshot's version, so
 * versions only go up and none repeats. Calls carry a request id and are resent
 * with it after a reconnect, so a call is never applied twice.
 */

/** The WebSocket subprotocol of wire protocol version 1. */
export const SUBPROTOCOL = "durable.v1";
const TICKET_PREFIX = "durable.ticket.";
const CLOSE_LAGGING = 4008;

/**
 * A JSON value.
 * @typedef {null | boolean | number | string | JsonArray | JsonObject} Json
 * @typedef {Json[]} JsonArray
 * @typedef {{ [key: string]: Json }} JsonObject
 */

/**
 * @typedef {object} Options
 * @property {string} url The host's base URL: absolute, or relative to the page (`"/durable"`).
 * @property {(model: string, id: string) => string | null | Promise<string | null>} [ticket]
 *   A fresh ticket for the object, asked before each connection (omit for a host without a token).
 * @property {number} [timeout] Milliseconds `get` and `call` wait in all (default 30000).
 * @property {number} [reconnectDelay] First reconnect delay in milliseconds (default 250), doubling.
 * @property {number} [maxReconnectDelay] Cap of the reconnect delay in milliseconds (default 5000).
 */

/**
 * @typedef {{ type: "snapshot", version: number, state: JsonObject | null }} SnapshotItem
 * @typedef {{ type: "event", version: number, name: string, data: JsonObject }} EventItem
 * @typedef {SnapshotItem | EventItem} Item
 * @typedef {"connecting" | "live" | "reconnecting" | "closed"} Status
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {number | null} [since] Only what comes after this version (default: the current snapshot first).
 * @property {boolean} [snapshots] Yield snapshots (default true).
 * @property {boolean} [events] Yield events (default false).
 * @property {(status: Status) => void} [onStatus] Told when the connection goes live, drops, or ends.
 */

/** An error the host answered with (`code` is the protocol's error code). */
export class DurableError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {boolean} [retryable]
   * @param {JsonObject} [details]
   */
  constructor(code, message, retryable = false, details = {}) {
    super(message);
    this.name = "DurableError";
    /** The protocol's error code: `unauthorized`, `validation_error`, `remote_error`... */
    this.code = code;
    /** Whether trying again may work. */
    this.retryable = retryable;
    /** @type {JsonObject} */
    this.details = details;
  }
}

/**
 * A client for one host.
 * @param {Options} options
 * @returns {Durable}
 */
export function connect(options) {
  return new Durable(options);
}

export class Durable {
  /** @param {Options} options */
  constructor(options) {
    const base = new URL(options.url, globalThis.location?.href);
    base.protocol = base.protocol === "https:" || base.protocol === "wss:" ? "wss:" : "ws:";
    /** @readonly */
    this.base = base.href.replace(/\/+$/, "");
    /** @private */
    this.options = options;
    /** @private @type {Map<string, Channel>} */
    this.channels = new Map();
  }

  /**
   * The object's current state and version.
   * @param {string} model
   * @param {string} id
   * @returns {Promise<{ version: number, state: JsonObject | null }>}
   */
  async get(model, id) {
    const subscription = this.subscribe(model, id);
    const timer = setTimeout(() => subscription.fail(new DurableError("timeout", "get timed out", true)), this.timeout);
    try {
      const first = await subscription.next();
      if (first.done || first.value.type !== "snapshot") throw new DurableError("connection_lost", "no snapshot", true);
      return { version: first.value.version, state: first.value.state };
    } finally {
      clearTimeout(timer);
      subscription.close();
    }
  }

  /**
   * Call a remote method; resolves to its result.
   * @param {string} model
   * @param {string} id
   * @param {string} method
   * @param {JsonObject} [args]
   * @returns {Promise<Json>}
   */
  call(model, id, method, args = {}) {
    const key = JSON.stringify([model, id]);
    let channel = this.channels.get(key);
    if (channel === undefined) {
      channel = new Channel(this, model, id);
      this.channels.set(key, channel);
    }
    return channel.call(method, args);
  }

  /**
   * Snapshots (and, with `events: true`, events) of the object, as they happen.
   * @param {string} model
   * @param {string} id
   * @param {SubscribeOptions} [options]
   * @returns {Subscription}
   */
  subscribe(model, id, options = {}) {
    return new Subscription(this, model, id, options);
  }

  /** Close every connection this client opened for calls. */
  close() {
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }

  /** Milliseconds `get` and `call` wait in all. */
  get timeout() {
    return this.options.timeout ?? 30000;
  }

  /**
   * Open a WebSocket to the object, presenting a fresh ticket.
   * @param {string} model
   * @param {string} id
   * @returns {Promise<WebSocket>}
   */
  async open(model, id) {
    const ticket = this.options.ticket === undefined ? null : await this.options.ticket(model, id);
    const protocols = ticket ? [SUBPROTOCOL, TICKET_PREFIX + ticket] : [SUBPROTOCOL];
    const path = `/v1/objects/${encodeURIComponent(model)}/${encodeURIComponent(id)}/ws`;
    const socket = new WebSocket(this.base + path, protocols);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onclose = () => reject(new DurableError("connect_error", "cannot open the WebSocket", true));
    });
    return socket;
  }

  /**
   * Milliseconds to wait before reconnect attempt `attempt` (0, 1, ...): jittered, capped.
   * @param {number} attempt
   */
  backoff(attempt) {
    const first = this.options.reconnectDelay ?? 250;
    const cap = this.options.maxReconnectDelay ?? 5000;
    return Math.min(cap, first * 2 ** attempt) * (0.5 + Math.random() / 2);
  }
}

/**
 * @param {string} text
 * @returns {{ [key: string]: any }}
 */
function parse(text) {
  const frame = JSON.parse(text);
  if (typeof frame !== "object" || frame === null) throw new DurableError("protocol_error", "a frame is not an object");
  return frame;
}

/** @param {{ [key: string]: any }} frame */
function failure(frame) {
  const error = frame.error ?? {};
  return new DurableError(error.code ?? "protocol_error", error.message ?? "error", error.retryable === true, error.details ?? {});
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A live view of one object: an async iterator of its snapshots (and events)
 * that survives disconnects. `break` out of `for await`, or `close()`, to end it.
 * @implements {AsyncIterableIterator<Item>}
 */
export class Subscription {
  /**
   * @param {Durable} durable
   * @param {string} model
   * @param {string} id
   * @param {SubscribeOptions} options
   */
  constructor(durable, model, id, options) {
    /** @private */ this.durable = durable;
    /** @private */ this.model = model;
    /** @private */ this.id = id;
    /** @private */ this.options = options;
    /** The version of the last snapshot yielded (null before the first). */
    this.version = options.since ?? null;
    /** @private @type {Item[]} */ this.queue = [];
    /** @private @type {((result: IteratorResult<Item>) => void) | null} */ this.waiting = null;
    /** @private @type {((error: Error) => void) | null} */ this.failWaiting = null;
    /** @private @type {Error | null} */ this.error = null;
    /** @private */ this.closed = false;
    /** @private @type {WebSocket | null} */ this.socket = null;
    this.run();
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /** @returns {Promise<IteratorResult<Item>>} */
  next() {
    const item = this.queue.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.error !== null) return Promise.reject(this.error);
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  /** @returns {Promise<IteratorResult<Item>>} */
  async return() {
    this.close();
    return { value: undefined, done: true };
  }

  /** Stop and close the connection. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.socket?.close(1000);
    this.status("closed");
    this.settle({ value: undefined, done: true });
  }

  /**
   * End the subscription with `error` (what `for await` then throws).
   * @param {Error} error
   */
  fail(error) {
    if (this.closed) return;
    this.error = error;
    this.closed = true;
    this.socket?.close(1000);
    this.status("closed");
    const reject = this.failWaiting;
    this.waiting = this.failWaiting = null;
    reject?.(error);
  }

  /** @private @param {Status} status */
  status(status) {
    this.options.onStatus?.(status);
  }

  /** @private @param {IteratorResult<Item>} result */
  settle(result) {
    const resolve = this.waiting;
    this.waiting = this.failWaiting = null;
    resolve?.(result);
  }

  /** @private @param {Item} item */
  push(item) {
    if (this.waiting !== null) this.settle({ value: item, done: false });
    else this.queue.push(item);
  }

  /** @private */
  async run() {
    for (let attempt = 0; !this.closed; ) {
      this.status(attempt === 0 ? "connecting" : "reconnecting");
      let lagging = false;
      try {
        const socket = await this.durable.open(this.model, this.id);
        if (this.closed) {
          socket.close(1000);
          return;
        }
        this.socket = socket;
        lagging = await this.stream(socket, () => {
          attempt = 0;
        });
      } catch (error) {
        if (error instanceof DurableError && !error.retryable) return this.fail(error);
      }
      this.socket = null;
      if (!this.closed && !lagging) await sleep(this.durable.backoff(attempt++));
    }
  }

  /**
   * Read one connection until it closes; true when the host closed it because we fell behind.
   * @private
   * @param {WebSocket} socket
   * @param {() => void} live
   * @returns {Promise<boolean>}
   */
  stream(socket, live) {
    const { snapshots = true, events = false } = this.options;
    socket.send(JSON.stringify({ type: "subscribe", since: this.version, snapshots, events }));
    this.status("live");
    live();
    return new Promise((resolve, reject) => {
      socket.onmessage = (message) => {
        const frame = parse(String(message.data));
        if (frame.type === "snapshot") {
          if (this.version !== null && frame.version <= this.version) return;
          this.version = frame.version;
          this.push({ type: "snapshot", version: frame.version, state: frame.state });
        } else if (frame.type === "event") {
          this.push({ type: "event", version: frame.version, name: frame.name, data: frame.data });
        } else if (frame.type === "error") {
          reject(failure(frame));
        }
      };
      socket.onclose = (event) => resolve(event.code === CLOSE_LAGGING);
    });
  }
}

/** One WebSocket for the calls to one object, reopened when it drops. */
class Channel {
  /**
   * @param {Durable} durable
   * @param {string} model
   * @param {string} id
   */
  constructor(durable, model, id) {
    this.durable = durable;
    this.model = model;
    this.id = id;
    /** @type {Promise<WebSocket> | null} */ this.socket = null;
    /** @type {Map<number, { frame: string, resolve: (value: Json) => void, reject: (error: Error) => void }>} */
    this.pending = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.closed = false;
  }

  /**
   * @param {string} method
   * @param {JsonObject} args
   * @returns {Promise<Json>}
   */
  call(method, args) {
    const id = this.nextId++;
    const frame = JSON.stringify({ type: "call", id, method, args, request_id: crypto.randomUUID() });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DurableError("timeout", `${method} timed out`, true));
      }, this.durable.timeout);
      this.pending.set(id, {
        frame,
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      this.connected().then((socket) => socket.send(frame), () => {});
    });
  }

  /** @returns {Promise<WebSocket>} */
  connected() {
    if (this.socket === null) {
      this.socket = this.durable.open(this.model, this.id).then((socket) => this.attach(socket));
      this.socket.catch(() => this.reconnect());
    }
    return this.socket;
  }

  /** @param {WebSocket} socket */
  attach(socket) {
    this.attempt = 0;
    socket.onmessage = (message) => {
      const frame = parse(String(message.data));
      const call = typeof frame.id === "number" ? this.pending.get(frame.id) : undefined;
      if (call === undefined) return;
      this.pending.delete(frame.id);
      if (frame.type === "result") call.resolve(frame.result);
      else if (frame.type === "error") call.reject(failure(frame));
    };
    socket.onclose = () => this.reconnect();
    return socket;
  }

  /** Reopen and resend what is unanswered (with the same request ids: applied once). */
  async reconnect() {
    this.socket = null;
    if (this.closed || this.pending.size === 0) return;
    await sleep(this.durable.backoff(this.attempt++));
    if (this.closed || this.pending.size === 0) return;
    const socket = await this.connected().catch(() => null);
    for (const call of this.pending.values()) socket?.send(call.frame);
  }

  close() {
    this.closed = true;
    this.socket?.then((socket) => socket.close(1000), () => {});
    for (const call of this.pending.values()) call.reject(new DurableError("closed", "the client was closed"));
    this.pending.clear();
  }
}
