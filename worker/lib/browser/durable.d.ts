/**
 * A client for one host.
 * @param {Options} options
 * @returns {Durable}
 */
export function connect(options: Options): Durable;
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
export const SUBPROTOCOL: "durable.v1";
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
    constructor(code: string, message: string, retryable?: boolean, details?: JsonObject);
    /** The protocol's error code: `unauthorized`, `validation_error`, `remote_error`... */
    code: string;
    /** Whether trying again may work. */
    retryable: boolean;
    /** @type {JsonObject} */
    details: JsonObject;
}
export class Durable {
    /** @param {Options} options */
    constructor(options: Options);
    /** @readonly */
    readonly base: string;
    /** @private */
    private options;
    /** @private @type {Map<string, Channel>} */
    private channels;
    /**
     * The object's current state and version.
     * @param {string} model
     * @param {string} id
     * @returns {Promise<{ version: number, state: JsonObject | null }>}
     */
    get(model: string, id: string): Promise<{
        version: number;
        state: JsonObject | null;
    }>;
    /**
     * Call a remote method; resolves to its result.
     * @param {string} model
     * @param {string} id
     * @param {string} method
     * @param {JsonObject} [args]
     * @returns {Promise<Json>}
     */
    call(model: string, id: string, method: string, args?: JsonObject): Promise<Json>;
    /**
     * Snapshots (and, with `events: true`, events) of the object, as they happen.
     * @param {string} model
     * @param {string} id
     * @param {SubscribeOptions} [options]
     * @returns {Subscription}
     */
    subscribe(model: string, id: string, options?: SubscribeOptions): Subscription;
    /** Close every connection this client opened for calls. */
    close(): void;
    /** Milliseconds `get` and `call` wait in all. */
    get timeout(): number;
    /**
     * Open a WebSocket to the object, presenting a fresh ticket.
     * @param {string} model
     * @param {string} id
     * @returns {Promise<WebSocket>}
     */
    open(model: string, id: string): Promise<WebSocket>;
    /**
     * Milliseconds to wait before reconnect attempt `attempt` (0, 1, ...): jittered, capped.
     * @param {number} attempt
     */
    backoff(attempt: number): number;
}
/**
 * A live view of one object: an async iterator of its snapshots (and events)
 * that survives disconnects. `break` out of `for await`, or `close()`, to end it.
 * @implements {AsyncIterableIterator<Item>}
 */
export class Subscription implements AsyncIterableIterator<Item> {
    /**
     * @param {Durable} durable
     * @param {string} model
     * @param {string} id
     * @param {SubscribeOptions} options
     */
    constructor(durable: Durable, model: string, id: string, options: SubscribeOptions);
    /** @private */ private durable;
    /** @private */ private model;
    /** @private */ private id;
    /** @private */ private options;
    /** The version of the last snapshot yielded (null before the first). */
    version: number | null;
    /** @private @type {Item[]} */ private queue;
    /** @private @type {((result: IteratorResult<Item>) => void) | null} */ private waiting;
    /** @private @type {((error: Error) => void) | null} */ private failWaiting;
    /** @private @type {Error | null} */ private error;
    /** @private */ private closed;
    /** @private @type {WebSocket | null} */ private socket;
    /** @returns {Promise<IteratorResult<Item>>} */
    next(): Promise<IteratorResult<Item>>;
    /** @returns {Promise<IteratorResult<Item>>} */
    return(): Promise<IteratorResult<Item>>;
    /** Stop and close the connection. */
    close(): void;
    /**
     * End the subscription with `error` (what `for await` then throws).
     * @param {Error} error
     */
    fail(error: Error): void;
    /** @private @param {Status} status */
    private status;
    /** @private @param {IteratorResult<Item>} result */
    private settle;
    /** @private @param {Item} item */
    private push;
    /** @private */
    private run;
    /**
     * Read one connection until it closes; true when the host closed it because we fell behind.
     * @private
     * @param {WebSocket} socket
     * @param {() => void} live
     * @returns {Promise<boolean>}
     */
    private stream;
    [Symbol.asyncIterator](): this;
}
/**
 * A JSON value.
 */
export type Json = null | boolean | number | string | JsonArray | JsonObject;
/**
 * A JSON value.
 */
export type JsonArray = Json[];
/**
 * A JSON value.
 */
export type JsonObject = {
    [key: string]: Json;
};
export type Options = {
    /**
     * The host's base URL: absolute, or relative to the page (`"/durable"`).
     */
    url: string;
    /**
     * A fresh ticket for the object, asked before each connection (omit for a host without a token).
     */
    ticket?: ((model: string, id: string) => string | null | Promise<string | null>) | undefined;
    /**
     * Milliseconds `get` and `call` wait in all (default 30000).
     */
    timeout?: number | undefined;
    /**
     * First reconnect delay in milliseconds (default 250), doubling.
     */
    reconnectDelay?: number | undefined;
    /**
     * Cap of the reconnect delay in milliseconds (default 5000).
     */
    maxReconnectDelay?: number | undefined;
};
export type SnapshotItem = {
    type: "snapshot";
    version: number;
    state: JsonObject | null;
};
export type EventItem = {
    type: "event";
    version: number;
    name: string;
    data: JsonObject;
};
export type Item = SnapshotItem | EventItem;
export type Status = "connecting" | "live" | "reconnecting" | "closed";
export type SubscribeOptions = {
    /**
     * Only what comes after this version (default: the current snapshot first).
     */
    since?: number | null | undefined;
    /**
     * Yield snapshots (default true).
     */
    snapshots?: boolean | undefined;
    /**
     * Yield events (default false).
     */
    events?: boolean | undefined;
    /**
     * Told when the connection goes live, drops, or ends.
     */
    onStatus?: ((status: Status) => void) | undefined;
};
