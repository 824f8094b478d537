// Starts the library's serve.mjs on this Worker as a child process, as the Python tests do.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const SERVE = new URL("../../../lib/scripts/serve.mjs", import.meta.url).pathname;
const WORKER_DIR = new URL("../../..", import.meta.url).pathname;

/** Starts the server; resolves with its URL, the child, its ready line and the time it took. */
export function serve(args) {
  const started = performance.now();
  const child = spawn(process.execPath, [SERVE, "--dir", WORKER_DIR, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => resolvePromise({ child, url: JSON.parse(line).url, line, ms: performance.now() - started }));
    child.once("exit", (code) => reject(new Error(`serve.mjs exited with ${code} before it was ready`)));
  });
}

/** Resolves with the exit code and signal once `child` exits. */
export function stopped(child) {
  return new Promise((resolvePromise) => child.once("exit", (code, signal) => resolvePromise({ code, signal })));
}

/** Stops the server with SIGTERM and waits for it. */
export async function stop(child) {
  const exit = stopped(child);
  child.kill("SIGTERM");
  return exit;
}
