/**
 * An object's durable record in its SQLite storage: its version, its state one
 * row per field (a change writes only the fields it changed), and what a repeat
 * of each recent request id needs (its operation's digest, status, version and
 * result; never the state). A change, its version and its request id are
 * written in one transaction. Objects stored by earlier versions of this
 * library (the whole state as one JSON text) are split into rows when loaded.
 */
import type { JsonObject } from "./json";
import { textsOf } from "./state";

/** How many request ids an object remembers, for how long, and how many bytes of results. */
export interface Retention {
  /** Request ids kept per object; older ones beyond this count are forgotten. */
  maxEntries: number;
  /** Age after which a request id is forgotten, in milliseconds. */
  maxAgeMs: number;
  /** Bytes of remembered results kept per object; the oldest records go first beyond it. */
  maxResultBytes: number;
}

export const DEFAULT_RETENTION: Retention = { maxEntries: 10_000, maxAgeMs: 3_600_000, maxResultBytes: 16_777_216 };

/** The stored state: each field's JSON text (null when the object has no stored state), and the version. */
export interface Stored {
  version: number;
  fields: Map<string, string> | null;
}

/**
 * A change to store: the new version, and the texts of the fields it wrote.
 * `replace` says the state was replaced whole (every field is in `fields`), or
 * removed when `fields` is null; otherwise `fields` holds only those that changed.
 */
export interface Commit {
  version: number;
  fields: ReadonlyMap<string, string> | null;
  replace: boolean;
}

export type ChangeKind = "call" | "create" | "update" | "delete";

/** What a repeat of a request id gets back, and what it must match. */
export interface Remembered {
  requestId: string;
  /** SHA-256 (hex) of the operation's canonical JSON; null for records kept from before digests. */
  digest: string | null;
  kind: ChangeKind;
  status: number;
  version: number;
  /** The call's result as JSON text (null for other kinds). */
  result: string | null;
}

const REQUESTS = `
CREATE TABLE IF NOT EXISTS durable_requests (
  seq INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL UNIQUE,
  digest TEXT,
  kind TEXT NOT NULL,
  status INTEGER NOT NULL,
  version INTEGER NOT NULL,
  result TEXT,
  size INTEGER NOT NULL,
  stored_at INTEGER NOT NULL
);
`;

/**
 * Format 2: the object's version, whether it has state, and its id (as the
 * router named it), in one row; the state one row per field, so that a change
 * writes only the fields it changed.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS durable_object (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
  version INTEGER NOT NULL,
  present INTEGER NOT NULL,
  object_id TEXT
);
CREATE TABLE IF NOT EXISTS durable_fields (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
${REQUESTS}
`;

/**
 * Records written before digests kept the whole reply in `body`: keep what a
 * repeat needs (their digest is unknown, so they match any operation).
 */
const MIGRATE_REPLY_BODIES = `
ALTER TABLE durable_requests RENAME TO durable_requests_bodies;
${REQUESTS}
INSERT INTO durable_requests (seq, request_id, digest, kind, status, version, result, size, stored_at)
  SELECT seq, request_id, NULL,
    CASE WHEN json_type(body, '$.result') IS NOT NULL THEN 'call'
         WHEN json_type(body, '$.deleted') IS NOT NULL THEN 'delete'
         WHEN status = 201 THEN 'create' ELSE 'update' END,
    status, json_extract(body, '$.version'), body -> '$.result', coalesce(length(CAST(body -> '$.result' AS BLOB)), 0), stored_at
  FROM durable_requests_bodies;
DROP TABLE durable_requests_bodies;
`;

type ObjectRow = { version: number; present: number; object_id: string | null };
type RecordRow = { digest: string | null; kind: string; status: number; version: number; result: string | null };

const encoder = new TextEncoder();

export class ObjectStore {
  /** Bytes of results the object remembers (kept in step with the table). */
  #resultBytes: number;

  constructor(
    private readonly storage: DurableObjectStorage,
    readonly retention: Retention = DEFAULT_RETENTION,
    private readonly now: () => number = Date.now,
  ) {
    const tables = new Map(
      storage.sql.exec<{ name: string; sql: string }>("SELECT name, sql FROM sqlite_master WHERE type = 'table'").toArray().map((t) => [t.name, t.sql]),
    );
    storage.transactionSync(() => {
      if (tables.get("durable_requests")?.includes("body TEXT")) storage.sql.exec(MIGRATE_REPLY_BODIES);
      storage.sql.exec(SCHEMA);
      if (tables.has("durable_state")) this.#migrateFormat1();
    });
    this.#resultBytes = storage.sql.exec<{ n: number }>("SELECT total(size) AS n FROM durable_requests").one().n;
  }

  private get sql(): SqlStorage {
    return this.storage.sql;
  }

  /** Format 1 kept the whole state as one JSON text: split it into one row per field, once. */
  #migrateFormat1(): void {
    const row = this.sql.exec<{ version: number; state: string | null }>("SELECT version, state FROM durable_state WHERE singleton = 0").toArray()[0];
    if (row !== undefined) {
      const state: unknown = row.state === null ? null : JSON.parse(row.state);
      const fields = state !== null && typeof state === "object" && !Array.isArray(state) ? textsOf(state as JsonObject) : null;
      this.#writeObject(row.version, fields !== null);
      for (const [name, text] of fields ?? []) this.sql.exec("INSERT INTO durable_fields (name, value) VALUES (?, ?)", name, text);
    }
    this.sql.exec("DROP TABLE durable_state");
  }

  #writeObject(version: number, present: boolean): void {
    this.sql.exec(
      "INSERT INTO durable_object (singleton, version, present) VALUES (0, ?, ?) " +
        "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, present = excluded.present",
      version,
      present ? 1 : 0,
    );
  }

  /** The stored state and version (version 0, no state, if never written). */
  read(): Stored {
    const row = this.sql.exec<ObjectRow>("SELECT version, present, object_id FROM durable_object WHERE singleton = 0").toArray()[0];
    if (row === undefined || row.present === 0) return { version: row?.version ?? 0, fields: null };
    const fields = new Map<string, string>();
    for (const field of this.sql.exec<{ name: string; value: string }>("SELECT name, value FROM durable_fields")) {
      fields.set(field.name, field.value);
    }
    return { version: row.version, fields };
  }

  /** The object's id, once the router told it (null before). */
  objectId(): string | null {
    return this.sql.exec<{ object_id: string | null }>("SELECT object_id FROM durable_object WHERE singleton = 0").toArray()[0]?.object_id ?? null;
  }

  /** Keeps the object's id, for what the object does on its own (alarms). */
  rememberObjectId(objectId: string): void {
    this.sql.exec(
      "INSERT INTO durable_object (singleton, version, present, object_id) VALUES (0, 0, 0, ?) " +
        "ON CONFLICT (singleton) DO UPDATE SET object_id = excluded.object_id",
      objectId,
    );
  }

  /** The record of `requestId`, if it is recent enough. */
  recall(requestId: string): Remembered | null {
    const cutoff = this.now() - this.retention.maxAgeMs;
    const rows = this.sql
      .exec<RecordRow>(
        "SELECT digest, kind, status, version, result FROM durable_requests WHERE request_id = ? AND stored_at > ?",
        requestId,
        cutoff,
      )
      .toArray();
    const row = rows[0];
    return row === undefined ? null : { requestId, ...row, kind: row.kind as ChangeKind };
  }

  /** Writes a change (only the fields it wrote) and the record of its request id, atomically. */
  commit(change: Commit, remembered: Remembered | null): void {
    this.storage.transactionSync(() => {
      this.#writeObject(change.version, change.fields !== null);
      if (change.replace || change.fields === null) this.sql.exec("DELETE FROM durable_fields");
      for (const [name, text] of change.fields ?? []) {
        this.sql.exec(
          "INSERT INTO durable_fields (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
          name,
          text,
        );
      }
      if (remembered !== null) this.remember(remembered);
    });
  }

  private remember(record: Remembered): void {
    // An expired record of the same id may still be there: it goes first.
    this.forget("DELETE FROM durable_requests WHERE request_id = ? RETURNING size", record.requestId);
    const size = record.result === null ? 0 : encoder.encode(record.result).byteLength;
    const row = this.sql
      .exec<{ seq: number }>(
        "INSERT INTO durable_requests (request_id, digest, kind, status, version, result, size, stored_at) " +
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        record.requestId,
        record.digest,
        record.kind,
        record.status,
        record.version,
        record.result,
        size,
        this.now(),
      )
      .one();
    this.#resultBytes += size;
    // Keep only the newest `maxEntries` (sequence numbers only grow), and within the byte budget.
    this.forget("DELETE FROM durable_requests WHERE seq <= ? RETURNING size", row.seq - this.retention.maxEntries);
    if (this.#resultBytes > this.retention.maxResultBytes) {
      this.forget(
        "DELETE FROM durable_requests WHERE seq <= (SELECT seq FROM (SELECT seq, sum(size) OVER (ORDER BY seq DESC) AS kept " +
          "FROM durable_requests) WHERE kept > ? ORDER BY seq DESC LIMIT 1) RETURNING size",
        this.retention.maxResultBytes,
      );
    }
  }

  /** Runs a `DELETE ... RETURNING size` and keeps the byte count in step. */
  private forget(query: string, ...bindings: unknown[]): void {
    for (const row of this.sql.exec<{ size: number }>(query, ...bindings)) this.#resultBytes -= row.size;
  }

  /** Forgets expired request ids; returns when the oldest remaining one expires, or null. */
  pruneExpired(): number | null {
    const cutoff = this.now() - this.retention.maxAgeMs;
    this.forget("DELETE FROM durable_requests WHERE stored_at <= ? RETURNING size", cutoff);
    const oldest = this.sql.exec<{ oldest: number | null }>("SELECT min(stored_at) AS oldest FROM durable_requests").one();
    return oldest.oldest === null ? null : oldest.oldest + this.retention.maxAgeMs;
  }

  /** How many request ids are remembered (for tests and diagnostics). */
  rememberedCount(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM durable_requests").one().n;
  }

  /** Bytes of results remembered (for tests and diagnostics). */
  rememberedResultBytes(): number {
    return this.#resultBytes;
  }
}
