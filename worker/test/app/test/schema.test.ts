/** Schema versions on the Worker: state stored by an older version is migrated when loaded, by a newer one refused. */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, call, connect, freshId, objectPath } from "../../support/client";

const items = (env as unknown as { ITEM: DurableObjectNamespace }).ITEM;

/** Rewrites the object's storage as `write` says, then resets it: the next request loads it afresh. */
async function storeThenReload(id: string, write: (sql: SqlStorage) => void): Promise<void> {
  const stub = items.get(items.idFromName(id));
  await runInDurableObject(stub, (_instance, state) => write(state.storage.sql));
  // Writes not yet confirmed when an object is reset are lost: reset it once they are.
  await expect(runInDurableObject(stub, (_instance, state) => state.abort("reload"))).rejects.toThrow();
}

/** The object's state as schema version 1 stored it: `title` for `name`. */
const asVersion1 = (title: unknown) => (sql: SqlStorage) => {
  sql.exec("UPDATE durable_object SET schema_version = 1");
  sql.exec("DELETE FROM durable_fields WHERE name = 'name'");
  sql.exec("INSERT INTO durable_fields (name, value) VALUES ('title', ?)", JSON.stringify(title));
};

describe("schema versions", () => {
  it("migrate state stored by an older version when it is loaded, and store it whole with the next change", async () => {
    const id = freshId("item");
    const path = objectPath("app.Item", id);
    expect((await api("PUT", path, { state: { name: "new", count: 3 } })).status).toBe(201);
    await storeThenReload(id, asVersion1("old"));
    expect((await api("GET", path)).body).toEqual({ version: 1, state: { name: "old", count: 3 } });
    expect((await call("app.Item", id, "bump")).body).toMatchObject({ result: 4, version: 2, state: { name: "old", count: 4 } });
    const stored = await runInDurableObject(items.get(items.idFromName(id)), (_instance, state) => ({
      version: state.storage.sql.exec("SELECT schema_version FROM durable_object").one().schema_version,
      fields: state.storage.sql.exec("SELECT name, value FROM durable_fields ORDER BY name").toArray(),
    }));
    expect(stored).toEqual({ version: 2, fields: [{ name: "count", value: "4" }, { name: "name", value: '"old"' }] });
  });

  it("refuse state stored by a newer version, for every operation but a delete", async () => {
    const id = freshId("item");
    const path = objectPath("app.Item", id);
    await api("PUT", path, { state: { name: "n" } });
    await storeThenReload(id, (sql) => sql.exec("UPDATE durable_object SET schema_version = 3"));
    const message = `app.Item '${id}' is stored by schema version 3, this code knows up to 2`;
    const read = await api("GET", path);
    expect([read.status, read.body.error]).toEqual([
      422,
      { code: "validation_error", message, retryable: false, details: { errors: [{ loc: [], msg: message, type: "schema_version_newer" }] } },
    ]);
    expect((await call("app.Item", id, "bump")).body.error.code).toBe("validation_error");
    expect((await api("PATCH", path, { fields: { count: 1 } })).body.error.details.errors[0].type).toBe("schema_version_newer");
    const ws = await connect("app.Item", id);
    ws.send('{"type":"subscribe"}');
    expect(await ws.next()).toMatchObject({ type: "error", id: null, error: { code: "validation_error" } });
    ws.close();
    expect((await api("DELETE", path)).body).toEqual({ deleted: true, version: 2, state: null });
    expect((await api("PUT", path, { state: { name: "again" } })).body).toEqual({ version: 3, state: { name: "again", count: 0 } });
  });

  it("refuse state whose migration leaves what the fields reject", async () => {
    const id = freshId("item");
    await api("PUT", objectPath("app.Item", id), { state: {} });
    await storeThenReload(id, asVersion1(5));
    const read = await api("GET", objectPath("app.Item", id));
    expect(read.status).toBe(422);
    expect(read.body.error.message).toContain(`app.Item '${id}' stored by schema version 1 does not validate after its migrations to 2`);
    expect(read.body.error.details.errors).toEqual([{ loc: ["name"], msg: "Input should be a valid string", type: "string_type" }]);
  });
});
