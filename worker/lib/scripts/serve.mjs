#!/usr/bin/env node
// Serves a Worker project on workerd through Miniflare, for tests and benchmarks.
//
//   node serve.mjs [--dir DIR] [--port N] [--persist DIR] [--token T] [--allow-origin URL]...
//
// --dir DIR           the project: its wrangler.jsonc and node_modules (default: the current directory)
// --port N            port on 127.0.0.1 (default 0: a free port)
// --persist DIR       keep Durable Object storage in DIR across restarts (default: in memory)
// --token T           require "Authorization: Bearer T" (default: none, ALLOW_ANONYMOUS=true:
//                     only Host names localhost, 127.0.0.1 and [::1] are served)
// --allow-origin URL  an Origin allowed besides the server's own (repeatable; default: the
//                     ALLOWED_ORIGINS environment variable, comma-separated)
//
// The port is workerd's own socket for the Worker, not Miniflare's entry worker,
// so requests reach the Worker as workerd parses them, as on Cloudflare.
//
// When ready it prints one line of JSON to stdout, {"url": "http://127.0.0.1:PORT"},
// and nothing else there (logs go to stderr). It stops on SIGTERM or SIGINT, or
// when its standard input is a pipe and that pipe closes; before it stops, every
// WebSocket is closed with 1001 (going away).
//
// The toolchain (esbuild, miniflare, workerd) is loaded from the project's
// node_modules, so this script runs from wherever the library lives.
import { execFileSync } from "node:child_process";
import { accessSync, constants, fstatSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { projectRequire, readWorkerConfig } from "./config.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

/**
 * On Linux, start workerd through setpriv so that it gets SIGKILL when this
 * process dies, however it dies: a killed serve.mjs must not leave workerd
 * holding the port and the storage. And in a session of its own (setsid), so
 * that a signal to the terminal's process group reaches serve.mjs alone.
 */
function guardRuntime(require) {
  if (process.platform !== "linux" || process.env.MINIFLARE_WORKERD_PATH) return;
  const guard = new URL("./workerd-guard.sh", import.meta.url).pathname;
  try {
    execFileSync("setpriv", ["--help"], { stdio: "ignore" });
    execFileSync("setsid", ["--help"], { stdio: "ignore" });
    accessSync(guard, constants.X_OK);
  } catch {
    return;
  }
  const workerd = require("workerd");
  // The package is CommonJS: its path is its `default` export.
  process.env.WORKERD_BINARY = typeof workerd === "string" ? workerd : workerd.default;
  process.env.MINIFLARE_WORKERD_PATH = guard;
}

/** Miniflare's log, written to stderr so stdout carries only the ready line. */
function stderrLog({ Log, LogLevel }) {
  class StderrLog extends Log {
    log(message) {
      process.stderr.write(`${message}\n`);
    }
  }
  return new StderrLog(LogLevel.WARN);
}

function options() {
  const { values } = parseArgs({
    options: {
      dir: { type: "string", default: "." },
      port: { type: "string", default: "0" },
      persist: { type: "string" },
      token: { type: "string" },
      "allow-origin": { type: "string", multiple: true },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0 to 65535, not ${values.port}`);
  if (values.token === "") throw new Error("--token must not be empty (leave it out to serve without a token)");
  const origins = values["allow-origin"] ?? (process.env.ALLOWED_ORIGINS ?? "").split(",");
  return {
    dir: resolve(values.dir),
    port,
    persist: values.persist === undefined ? undefined : resolve(values.persist),
    token: values.token,
    origins: origins.map((origin) => origin.trim()).filter((origin) => origin !== ""),
  };
}

/** The Worker's settings: its token, or anonymous mode for loopback use; the allowed Origins. */
function bindings({ token, origins }) {
  const settings = token === undefined ? { ALLOW_ANONYMOUS: "true" } : { API_TOKEN: token };
  if (origins.length > 0) settings.ALLOWED_ORIGINS = origins.join(",");
  return settings;
}

/** Bundles the TypeScript Worker into one ES module, in memory. */
async function bundle(esbuild, main) {
  const result = await esbuild.build({
    entryPoints: [main],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*"],
    write: false,
    logLevel: "warning",
  });
  await esbuild.stop();
  return result.outputFiles[0].text;
}

/** The entrypoint that closes every WebSocket with 1001 before the runtime stops (lib/src/router.ts). */
const SHUTDOWN_ENTRYPOINT = "DurableShutdown";

async function start({ dir, port, persist, token, origins }) {
  const require = projectRequire(dir);
  guardRuntime(require);
  const miniflare = require("miniflare");
  const config = readWorkerConfig(resolve(dir, "wrangler.jsonc"));
  const script = await bundle(require("esbuild"), config.main);
  if (persist !== undefined) await mkdir(persist, { recursive: true });
  const mf = new miniflare.Miniflare({
    name: config.name,
    modules: true,
    script,
    scriptPath: resolve(config.main, "..", "index.mjs"),
    modulesRoot: dir,
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
    durableObjects: config.durableObjects,
    durableObjectsPersist: persist ?? false,
    bindings: bindings({ token, origins }),
    // Miniflare's entry worker rebuilds every URL (removing %2E%2E segments):
    // clients use workerd's own socket for the Worker instead.
    host: "127.0.0.1",
    port: 0,
    unsafeDirectSockets: [
      { host: "127.0.0.1", port },
      { host: "127.0.0.1", port: 0, entrypoint: SHUTDOWN_ENTRYPOINT },
    ],
    cf: false,
    log: stderrLog(miniflare),
    handleRuntimeStdio(stdout, stderr) {
      stdout.pipe(process.stderr);
      stderr.pipe(process.stderr);
    },
  });
  await mf.ready;
  const url = await mf.unsafeGetDirectURL();
  const shutdown = await mf.unsafeGetDirectURL(undefined, SHUTDOWN_ENTRYPOINT);
  return { mf, url, shutdown };
}

/** Asks the Worker to close its WebSockets with 1001; a server that cannot is stopped anyway. */
async function goAway(shutdown) {
  try {
    const res = await fetch(shutdown, { method: "POST", signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    // The close frames leave with the runtime's next writes; give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 50));
  } catch (error) {
    process.stderr.write(`serve.mjs: could not close WebSockets: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

function stdinIsPipe() {
  try {
    const stat = fstatSync(0);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

function stopOnExit(mf, shutdown) {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await goAway(shutdown);
      await mf.dispose();
    } finally {
      process.exit(0);
    }
  };
  // Miniflare's own signal hooks exit at once with 128+signal; dispose first, then exit 0.
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.removeAllListeners(signal);
    process.on(signal, stop);
  }
  if (stdinIsPipe()) {
    process.stdin.on("end", stop);
    process.stdin.on("close", stop);
    process.stdin.resume();
  }
}

try {
  const { mf, url, shutdown } = await start(options());
  stopOnExit(mf, shutdown);
  process.stdout.write(`${JSON.stringify({ url: url.origin }).replace('":"', '": "')}\n`);
} catch (error) {
  process.stderr.write(`serve.mjs: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
