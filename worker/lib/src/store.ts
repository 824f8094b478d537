/**
 * An object's durable record in its SQLite storage: its version, its state one
 * row per field (a change writes only the fields it changed), and what a repeat
 * of each recent request id needs (its operation's digest, status, version and
 * result; never the state). A change, its version and its request id are
 * written in one transaction. Objects stored by earlier versions of this
 * library (the whole state as one JSON text) are split into rows when loaded.
 */
import type { JsonObject } from "./json";
import { EVENT_LOG_BYTES, EVENT_LOG_EVENTS, EVENT_LOG_MS } from "./protocol";
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

/**
 * The stored state: each field's JSON text (null when the object has no stored
 * state), the version, and the schema version of the code that wrote the state.
 */
export interface Stored {
  version: number;
  fields: Map<string, string> | null;
  schemaVersion: number;
}

/** One event of a change, as the object's event log keeps it (`data`: JSON text). */
export interface LoggedEvent {
  version: number;
  index: number;
  count: number;
  name: string;
  data: string;
  /** What it counts for in the log's byte bound: the UTF-8 bytes of its name and data. */
  size: number;
}

/** A call an object made to itself for later. Times in milliseconds since the epoch. */
export type ScheduleRow = {
  id: string;
  /** When it runs next (its time, or the next retry). */
  due: number;
  /** The time it was made for. */
  at: number;
  method: string;
  /** The arguments by parameter name, as JSON text. */
  args: string;
  attempts: number;
  status: "pending" | "failed";
  /** The last failed run's error (the inner object of its envelope), as JSON text. */
  error: string | null;
};

/** What a change, or a schedule's run, does to the object's schedules. */
export type ScheduleOp =
  | { op: "add"; row: ScheduleRow }
  | { op: "remove"; id: string }
  | { op: "clear" }
  | { op: "retry"; id: string; attempts: number; due: number; status: "pending" | "failed"; error: string };

/**
 * A change to store: the new version, and the texts of the fields it wrote.
 * `replace` says the state was replaced whole (every field is in `fields`), or
 * removed when `fields` is null; otherwise `fields` holds only those that changed.
 * With it go its events, what it did to schedules, and the schema version of
 * the code that made it.
 */
export interface Commit {
  version: number;
  fields: ReadonlyMap<string, string> | null;
  replace: boolean;
  schemaVersion?: number;
  events?: readonly LoggedEvent[];
  schedules?: readonly ScheduleOp[];
}

/** The event log's bounds (by default the protocol's). */
export interface LogBounds {
  events: number;
  bytes: number;
  ageMs: number;
}

export const DEFAULT_LOG_BOUNDS: LogBounds = { events: EVENT_LOG_EVENTS, bytes: EVENT_LOG_BYTES, ageMs: EVENT_LOG_MS };

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
 * Format 2. In one row: the object's version, whether it has state, its id (as
 * the router named it), the schema version that wrote the state, the greatest
 * version whose events are no longer logged, and what the index of its model
 * was last told (1: it has state, 0: it has none, null: nothing yet). The state
 * one row per field, so that a change writes only the fields it changed; the
 * event log; the schedules.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS durable_object (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
  version INTEGER NOT NULL,
  present INTEGER NOT NULL,
  object_id TEXT,
  schema_version INTEGER NOT NULL DEFAULT 1,
  events_dropped INTEGER NOT NULL DEFAULT 0,
  indexed INTEGER
);
CREATE TABLE IF NOT EXISTS durable_fields (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
${REQUESTS}
CREATE TABLE IF NOT EXISTS durable_events (
  version INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  count INTEGER NOT NULL,
  name TEXT NOT NULL,
  data TEXT NOT NULL,
  size INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  PRIMARY KEY (version, idx)
);
CREATE TABLE IF NOT EXISTS durable_schedules (
  id TEXT PRIMARY KEY,
  due INTEGER NOT NULL,
  at INTEGER NOT NULL,
  method TEXT NOT NULL,
  args TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'pending',
  error TEXT
);
CREATE INDEX IF NOT EXISTS durable_schedules_due ON durable_schedules (due) WHERE status = 'pending';
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

type ObjectRow = {
  version: number;
  present: number;
  object_id: string | null;
  schema_version: number;
  events_dropped: number;
  indexed: number | null;
};

/** The event log by version, oldest first: enough to keep it within its bounds without reading it. */
interface LogEntry {
  version: number;
  events: number;
  bytes: number;
  storedAt: number;
}
type RecordRow = { digest: string | null; kind: string; status: number; version: number; result: string | null };

const encoder = new TextEncoder();

export class ObjectStore {
  /** Bytes of results the object remembers (kept in step with the table). */
  #resultBytes: number;
  /** The event log's summary, read at the first change that logs events. */
  #log: LogEntry[] | null = null;

  constructor(
    private readonly storage: DurableObjectStorage,
    readonly retention: Retention = DEFAULT_RETENTION,
    private readonly now: () => number = Date.now,
    readonly logBounds: LogBounds = DEFAULT_LOG_BOUNDS,
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
      this.#writeObject(row.version, fields !== null, 1);
      for (const [name, text] of fields ?? []) this.sql.exec("INSERT INTO durable_fields (name, value) VALUES (?, ?)", name, text);
      // No event of the versions written so far was kept: a subscriber resuming from one of them is told so.
      this.sql.exec("UPDATE durable_object SET events_dropped = version");
    }
    this.sql.exec("DROP TABLE durable_state");
  }

  #writeObject(version: number, present: boolean, schemaVersion: number): void {
    this.sql.exec(
      "INSERT INTO durable_object (singleton, version, present, schema_version) VALUES (0, ?, ?, ?) " +
        "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, present = excluded.present, schema_version = excluded.schema_version",
      version,
      present ? 1 : 0,
      schemaVersion,
    );
  }

  #row(): ObjectRow | undefined {
    return this.sql
      .exec<ObjectRow>("SELECT version, present, object_id, schema_version, events_dropped, indexed FROM durable_object WHERE singleton = 0")
      .toArray()[0];
  }

  /** The stored state and version (version 0, no state, if never written). */
  read(): Stored {
    const row = this.#row();
    if (row === undefined || row.present === 0) return { version: row?.version ?? 0, fields: null, schemaVersion: row?.schema_version ?? 1 };
    const fields = new Map<string, string>();
    for (const field of this.sql.exec<{ name: string; value: string }>("SELECT name, value FROM durable_fields")) {
      fields.set(field.name, field.value);
    }
    return { version: row.version, fields, schemaVersion: row.schema_version };
  }

  /** What the index of the object's model was last told: that it has state (true), has none (false), or nothing (null). */
  indexed(): boolean | null {
    const value = this.#row()?.indexed ?? null;
    return value === null ? null : value === 1;
  }

  /** The index acknowledged that the object has state, or has none. */
  setIndexed(present: boolean): void {
    this.sql.exec(
      "INSERT INTO durable_object (singleton, version, present, indexed) VALUES (0, 0, 0, ?) " +
        "ON CONFLICT (singleton) DO UPDATE SET indexed = excluded.indexed",
      present ? 1 : 0,
    );
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

  /**
   * Writes a change (only the fields it wrote), its events (dropping the oldest
   * versions' beyond the log's bounds), what it did to schedules, and the record
   * of its request id, atomically.
   */
  commit(change: Commit, remembered: Remembered | null): void {
    const events = change.events ?? [];
    const now = this.now();
    const added = logEntries(events, now);
    const drop = added.length > 0 ? this.#toDrop(added, now) : null;
    this.storage.transactionSync(() => {
      this.#writeObject(change.version, change.fields !== null, change.schemaVersion ?? 1);
      if (change.replace || change.fields === null) this.sql.exec("DELETE FROM durable_fields");
      for (const [name, text] of change.fields ?? []) {
        this.sql.exec(
          "INSERT INTO durable_fields (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
          name,
          text,
        );
      }
      for (const event of events) {
        this.sql.exec(
          "INSERT INTO durable_events (version, idx, count, name, data, size, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
          event.version,
          event.index,
          event.count,
          event.name,
          event.data,
          event.size,
          now,
        );
      }
      if (drop !== null && drop.through > 0) {
        this.sql.exec("DELETE FROM durable_events WHERE version <= ?", drop.through);
        this.sql.exec("UPDATE durable_object SET events_dropped = max(events_dropped, ?)", drop.through);
      }
      this.#schedule(change.schedules ?? []);
      if (remembered !== null) this.remember(remembered);
    });
    if (drop !== null) {
      this.#log!.push(...added);
      this.#log!.splice(0, drop.versions);
    }
  }

  // --- the event log --------------------------------------------------------

  /** How many of the oldest logged versions to drop once `added` is logged, and the last of them. */
  #toDrop(added: LogEntry[], now: number): { versions: number; through: number } {
    if (this.#log === null) {
      this.#log = this.sql
        .exec<{ version: number; events: number; bytes: number; stored_at: number }>(
          "SELECT version, count(*) AS events, total(size) AS bytes, min(stored_at) AS stored_at FROM durable_events GROUP BY version ORDER BY version",
        )
        .toArray()
        .map((row) => ({ version: row.version, events: row.events, bytes: row.bytes, storedAt: row.stored_at }));
    }
    const bounds = this.logBounds;
    let events = 0;
    let bytes = 0;
    for (const entry of [...this.#log, ...added]) {
      events += entry.events;
      bytes += entry.bytes;
    }
    let versions = 0;
    let through = 0;
    for (const entry of [...this.#log, ...added]) {
      if (events <= bounds.events && bytes <= bounds.bytes && entry.storedAt >= now - bounds.ageMs) break;
      events -= entry.events;
      bytes -= entry.bytes;
      versions += 1;
      through = entry.version;
    }
    return { versions, through };
  }

  /**
   * The logged events of versions `after + 1` to `until` not older than the log's
   * age bound, in order; and the greatest version whose events are gone
   * (dropped, or too old), 0 if none.
   */
  loggedEvents(after: number, until: number): { events: LoggedEvent[]; dropped: number } {
    let dropped = this.#row()?.events_dropped ?? 0;
    const oldest = this.now() - this.logBounds.ageMs;
    const rows = this.sql
      .exec<{ version: number; idx: number; count: number; name: string; data: string; size: number; stored_at: number }>(
        "SELECT version, idx, count, name, data, size, stored_at FROM durable_events WHERE version > ? AND version <= ? ORDER BY version, idx",
        after,
        until,
      )
      .toArray();
    const events: LoggedEvent[] = [];
    for (const row of rows) {
      if (row.stored_at < oldest) dropped = Math.max(dropped, row.version);
      else events.push({ version: row.version, index: row.idx, count: row.count, name: row.name, data: row.data, size: row.size });
    }
    return { events: events.filter((event) => event.version > dropped), dropped };
  }

  // --- schedules --------------------------------------------------------------

  #schedule(ops: readonly ScheduleOp[]): void {
    for (const op of ops) {
      switch (op.op) {
        case "add": {
          const row = op.row;
          this.sql.exec(
            "INSERT INTO durable_schedules (id, due, at, method, args, attempts, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row.id,
            row.due,
            row.at,
            row.method,
            row.args,
            row.attempts,
            row.status,
            row.error,
          );
          break;
        }
        case "remove":
          this.sql.exec("DELETE FROM durable_schedules WHERE id = ?", op.id);
          break;
        case "clear":
          this.sql.exec("DELETE FROM durable_schedules");
          break;
        case "retry":
          this.sql.exec("UPDATE durable_schedules SET attempts = ?, due = ?, status = ?, error = ? WHERE id = ?", op.attempts, op.due, op.status, op.error, op.id);
          break;
      }
    }
  }

  /** Applies what a schedule's run did to schedules, when the run changed nothing else. */
  updateSchedules(ops: readonly ScheduleOp[]): void {
    if (ops.length > 0) this.storage.transactionSync(() => this.#schedule(ops));
  }

  schedule(id: string): ScheduleRow | null {
    return this.sql.exec<ScheduleRow>("SELECT id, due, at, method, args, attempts, status, error FROM durable_schedules WHERE id = ?", id).toArray()[0] ?? null;
  }

  /** The object's schedules, by time, then id. */
  schedules(): ScheduleRow[] {
    return this.sql.exec<ScheduleRow>("SELECT id, due, at, method, args, attempts, status, error FROM durable_schedules ORDER BY at, id").toArray();
  }

  /** The pending schedules due at `now`, earliest first. */
  dueSchedules(now: number, limit: number): ScheduleRow[] {
    return this.sql
      .exec<ScheduleRow>(
        "SELECT id, due, at, method, args, attempts, status, error FROM durable_schedules WHERE status = 'pending' AND due <= ? ORDER BY due, id LIMIT ?",
        now,
        limit,
      )
      .toArray();
  }

  /** When the earliest pending schedule is due, or null. */
  nextDue(): number | null {
    return this.sql.exec<{ due: number | null }>("SELECT min(due) AS due FROM durable_schedules WHERE status = 'pending'").one().due;
  }

  // --- request ids ------------------------------------------------------------

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

  /** When the oldest remembered request id expires, or null. */
  nextExpiry(): number | null {
    const oldest = this.sql.exec<{ oldest: number | null }>("SELECT min(stored_at) AS oldest FROM durable_requests").one();
    return oldest.oldest === null ? null : oldest.oldest + this.retention.maxAgeMs;
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

/** The log entries (by version) of a change's events, logged at `now`. */
function logEntries(events: readonly LoggedEvent[], now: number): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const event of events) {
    const last = entries[entries.length - 1];
    if (last !== undefined && last.version === event.version) {
      last.events += 1;
      last.bytes += event.size;
    } else {
      entries.push({ version: event.version, events: 1, bytes: event.size, storedAt: now });
    }
  }
  return entries;
}
