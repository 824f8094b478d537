/**
 * Listing the objects of a model (`GET /v1/objects/{model}`). A Durable Object
 * cannot enumerate the objects of its namespace, so the Worker keeps an index
 * in Durable Objects of its own: `DurableIndex`, bound as `DURABLE_INDEX`, a
 * few shards per model (an object's shard is a hash of its id). Each object
 * tells its shard when its state appears or disappears, right after the change
 * is stored and before its reply; if the shard cannot be reached, the object
 * tries again from its alarm (after 1 s, doubling up to a minute) until the
 * shard has it. Updates carry the object's version, and a shard keeps the
 * newest it was told, so late or repeated updates never undo newer ones.
 *
 * So the index is eventually consistent: a listing holds every object whose
 * state appeared, and none whose state disappeared, before the reply of that
 * change was sent, except while a shard was unreachable; then it converges
 * within a minute of the shard answering again.
 */
import { DurableObject } from "cloudflare:workers";
import { withTimeout } from "./calls";
import { Failure } from "./errors";
import { LIST_LIMIT, MAX_LIST_LIMIT } from "./protocol";
import type { ObjectStore } from "./store";

/** The binding the index is found under in the Worker's environment. */
export const INDEX_BINDING = "DURABLE_INDEX";
/** Shards of each model's index, unless `createRouter(..., { indexShards })` says otherwise. */
export const DEFAULT_INDEX_SHARDS = 4;

let shards = DEFAULT_INDEX_SHARDS;

/** Sets how many shards each model's index has (every router of the Worker must agree; changing it loses the index). */
export function setIndexShards(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1 || count > 64) throw new TypeError("indexShards must be an integer from 1 to 64");
  shards = count;
}

/** The RPC surface of an index shard. */
interface IndexStub {
  put(objectId: string, version: number, present: boolean): Promise<void>;
  list(prefix: string, after: string | null, limit: number): Promise<string[]>;
}

function indexNamespace(env: object): DurableObjectNamespace | undefined {
  return (env as Record<string, unknown>)[INDEX_BINDING] as DurableObjectNamespace | undefined;
}

function shardStub(namespace: DurableObjectNamespace, model: string, shard: number): IndexStub {
  return namespace.get(namespace.idFromName(`${model}\u0000${shard}`)) as unknown as IndexStub;
}

/** The shard of `objectId`: FNV-1a of its UTF-8 bytes. */
export function shardOf(objectId: string, count = shards): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(objectId)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** Compares strings by code point, which is the order of their UTF-8 bytes (`<` compares UTF-16 units). */
export function byCodePoint(a: string, b: string): number {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const x = left.next();
    const y = right.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const difference = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (difference !== 0) return difference;
  }
}

/** The least string greater than every string starting with `prefix`, in code point order, or null. */
export function prefixEnd(prefix: string): string | null {
  const points = [...prefix].map((char) => char.codePointAt(0)!);
  while (points.length > 0) {
    const last = points.pop()!;
    if (last === 0x10ffff) continue;
    return String.fromCodePoint(...points, last + 1 === 0xd800 ? 0xe000 : last + 1);
  }
  return null;
}

/** What one object last told its index, and when to try again if it could not. */
export class IndexSync {
  /** When the object should try again to tell its index (null: nothing to tell). */
  retryAt: number | null = null;
  #delay = 1_000;
  #indexed: boolean | null;

  constructor(
    private readonly env: object,
    private readonly model: string,
    private readonly store: ObjectStore,
  ) {
    this.#indexed = store.indexed();
  }

  /** Whether the index must be told that the object has (or has no) state. */
  needed(present: boolean): boolean {
    if (indexNamespace(this.env) === undefined) return false;
    return present ? this.#indexed !== true : this.#indexed === true;
  }

  /** Tells the object's shard; on failure, sets when to try again. */
  async sync(objectId: string, version: number, present: boolean): Promise<void> {
    const namespace = indexNamespace(this.env);
    if (namespace === undefined) return;
    try {
      await withTimeout(shardStub(namespace, this.model, shardOf(objectId)).put(objectId, version, present), 5_000, "the index");
      this.store.setIndexed(present);
      this.#indexed = present;
      this.retryAt = null;
      this.#delay = 1_000;
    } catch (error) {
      console.warn(`could not tell the index of ${this.model} about ${JSON.stringify(objectId)}; trying again in ${this.#delay / 1000} s:`, error);
      this.retryAt = Date.now() + this.#delay;
      this.#delay = Math.min(this.#delay * 2, 60_000);
    }
  }
}

/** Tombstones (ids whose state disappeared) are kept this long, so a late update cannot bring them back. */
const TOMBSTONE_MS = 24 * 3_600_000;

/**
 * One shard of one model's index: the ids of the objects with state, each with
 * the version it was last told about (and the ids whose state disappeared, for
 * a day). Export it from the Worker's main module and bind it as `DURABLE_INDEX`.
 */
export class DurableIndex extends DurableObject {
  #puts = 0;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS durable_index (id TEXT PRIMARY KEY, version INTEGER NOT NULL, present INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
    );
  }

  /** The object `objectId` has state (or has none) at `version`; older news is ignored. */
  async put(objectId: string, version: number, present: boolean): Promise<void> {
    const now = Date.now();
    this.ctx.storage.sql.exec(
      "INSERT INTO durable_index (id, version, present, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET " +
        "version = excluded.version, present = excluded.present, updated_at = excluded.updated_at WHERE excluded.version >= durable_index.version",
      objectId,
      version,
      present ? 1 : 0,
      now,
    );
    this.#puts += 1;
    if (this.#puts % 1_000 === 0) this.ctx.storage.sql.exec("DELETE FROM durable_index WHERE present = 0 AND updated_at < ?", now - TOMBSTONE_MS);
  }

  /** Ids with state starting with `prefix`, after `after`, in UTF-8 byte order, at most `limit`. */
  async list(prefix: string, after: string | null, limit: number): Promise<string[]> {
    const clauses = ["present = 1"];
    const bindings: (string | number)[] = [];
    if (after !== null) clauses.push("id > ?"), bindings.push(after);
    if (prefix !== "") {
      clauses.push("id >= ?"), bindings.push(prefix);
      const end = prefixEnd(prefix);
      if (end !== null) clauses.push("id < ?"), bindings.push(end);
    }
    const rows = this.ctx.storage.sql
      .exec<{ id: string }>(`SELECT id FROM durable_index WHERE ${clauses.join(" AND ")} ORDER BY id LIMIT ?`, ...bindings, limit)
      .toArray();
    return rows.map((row) => row.id).filter((id) => id.startsWith(prefix));
  }
}

/** A listing's parameters, from the request's query (first of each name; values decoded once). */
export interface ListQuery {
  prefix: string;
  after: string | null;
  limit: number;
}

/**
 * Reads `?prefix=&after=&limit=`: each value percent-decoded once (`+` is a
 * plus sign; a malformed escape or bytes that are not UTF-8 are `400
 * invalid_id`), the first of each name counting, others ignored; `after` empty
 * means none; `limit` ASCII digits for 1 to 1000, else `400 bad_request`.
 */
export function parseListQuery(query: string): ListQuery {
  const params = new Map<string, string>();
  for (const part of query.split("&")) {
    const equals = part.indexOf("=");
    const name = equals < 0 ? part : part.slice(0, equals);
    if (name !== "" && !params.has(name)) params.set(name, equals < 0 ? "" : part.slice(equals + 1));
  }
  const decode = (value: string) => {
    try {
      return decodeURIComponent(value);
    } catch {
      throw new Failure("invalid_id", "a query parameter holds a malformed percent-escape, or bytes that are not UTF-8");
    }
  };
  const prefix = decode(params.get("prefix") ?? "");
  const after = decode(params.get("after") ?? "") || null;
  let limit = LIST_LIMIT;
  const text = params.get("limit");
  if (text !== undefined) {
    limit = /^[0-9]{1,16}$/.test(text) ? Number(text) : 0;
    if (limit < 1 || limit > MAX_LIST_LIMIT) throw new Failure("bad_request", `'limit' must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  return { prefix, after, limit };
}

/** One page of the ids of `model`'s objects with state: every shard asked, their ids merged in order. */
export async function listObjects(env: object, model: string, query: ListQuery): Promise<{ ids: string[]; next: string | null }> {
  const namespace = indexNamespace(env);
  if (namespace === undefined) {
    throw new Failure("not_found", `this Worker keeps no index of its objects: export DurableIndex and bind it as ${INDEX_BINDING}`);
  }
  const pages = await Promise.all(
    Array.from({ length: shards }, (_, shard) => shardStub(namespace, model, shard).list(query.prefix, query.after, query.limit + 1)),
  );
  const merged = pages.flat().sort(byCodePoint).slice(0, query.limit + 1);
  const ids = merged.slice(0, query.limit);
  return { ids, next: merged.length > query.limit ? ids[ids.length - 1]! : null };
}
