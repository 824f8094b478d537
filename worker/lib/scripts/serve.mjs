#!/usr/bin/env node
// Serves a Worker project on workerd through Miniflare, for tests and benchmarks.
//
//   node serve.mjs [--dir DIR] [--port N] [--persist DIR] [--token T]
//
// --dir DIR      the project: its wrangler.jsonc and node_modules (default: the current directory)
// --port N       port on 127.0.0.1 (default 0: a free port)
// --persist DIR  keep Durable Object storage in DIR across restarts (default: in memory)
// --token T      require "Authorization: Bearer T" (default: no authentication)
//
// When ready it prints one line of JSON to stdout, {"url": "http://127.0.0.1:PORT"},
// and nothing else there (logs go to stderr). It stops on SIGTERM or SIGINT, or
// when its standard input is a pipe and that pipe closes.
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
 * holding the port and the storage.
 */
function guardRuntime(require) {
  if (process.platform !== "linux" || process.env.MINIFLARE_WORKERD_PATH) return;
  const guard = new URL("./workerd-guard.sh", import.meta.url).pathname;
  try {
    execFileSync("setpriv", ["--help"], { stdio: "ignore" });
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
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0 to 65535, not ${values.port}`);
  const persist = values.persist === undefined ? undefined : resolve(values.persist);
  return { dir: resolve(values.dir), port, persist, token: values.token };
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

async function start({ dir, port, persist, token }) {
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
    bindings: token === undefined ? {} : { API_TOKEN: token },
    host: "127.0.0.1",
    port,
    cf: false,
    log: stderrLog(miniflare),
    handleRuntimeStdio(stdout, stderr) {
      stdout.pipe(process.stderr);
      stderr.pipe(process.stderr);
    },
  });
  const url = await mf.ready;
  return { mf, url };
}

function stdinIsPipe() {
  try {
    const stat = fstatSync(0);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

function stopOnExit(mf) {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
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
  const { mf, url } = await start(options());
  stopOnExit(mf);
  process.stdout.write(`${JSON.stringify({ url: url.origin }).replace('":"', '": "')}\n`);
} catch (error) {
  process.stderr.write(`serve.mjs: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
