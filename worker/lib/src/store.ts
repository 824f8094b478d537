/**
 * An object's durable record in its SQLite storage: the state with its
 * version, and what a repeat of each recent request id needs (its operation's
 * digest, status, version and result; never the state). A change, its version
 * and its request id are written in one transaction.
 */

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

/** The stored state: `stateJson` is null when the object has no stored state. */
export interface Stored {
  version: number;
  stateJson: string | null;
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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS durable_state (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
  version INTEGER NOT NULL,
  state TEXT
);
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
 * Records written before digests kept the whole reply in `body`: keep what a
 * repeat needs (their digest is unknown, so they match any operation).
 */
const MIGRATE_REPLY_BODIES = `
ALTER TABLE durable_requests RENAME TO durable_requests_bodies;
${SCHEMA}
INSERT INTO durable_requests (seq, request_id, digest, kind, status, version, result, size, stored_at)
  SELECT seq, request_id, NULL,
    CASE WHEN json_type(body, '$.result') IS NOT NULL THEN 'call'
         WHEN json_type(body, '$.deleted') IS NOT NULL THEN 'delete'
         WHEN status = 201 THEN 'create' ELSE 'update' END,
    status, json_extract(body, '$.version'), body -> '$.result', coalesce(length(CAST(body -> '$.result' AS BLOB)), 0), stored_at
  FROM durable_requests_bodies;
DROP TABLE durable_requests_bodies;
`;

type StateRow = { version: number; state: string | null };
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
    const old = storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'durable_requests' AND sql LIKE '%body TEXT%'").toArray();
    storage.sql.exec(old.length > 0 ? MIGRATE_REPLY_BODIES : SCHEMA);
    this.#resultBytes = storage.sql.exec<{ n: number }>("SELECT total(size) AS n FROM durable_requests").one().n;
  }

  private get sql(): SqlStorage {
    return this.storage.sql;
  }

  /** The stored state and version (version 0, no state, if never written). */
  read(): Stored {
    const rows = this.sql.exec<StateRow>("SELECT version, state FROM durable_state WHERE singleton = 0").toArray();
    const row = rows[0];
    return row === undefined ? { version: 0, stateJson: null } : { version: row.version, stateJson: row.state };
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

  /** Writes a new state and version, and the record of its request id, atomically. */
  commit(next: Stored, remembered: Remembered | null): void {
    this.storage.transactionSync(() => {
      this.sql.exec(
        "INSERT INTO durable_state (singleton, version, state) VALUES (0, ?, ?) " +
          "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, state = excluded.state",
        next.version,
        next.stateJson,
      );
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
