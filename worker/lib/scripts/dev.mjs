#!/usr/bin/env node
// `npm run dev`: wrangler dev on 127.0.0.1, offline, persisting to .wrangler/state,
// for the project in the current directory.
//   PORT             port to listen on (default 8787)
//   API_TOKEN        bearer token to require (default: none, and ALLOW_ANONYMOUS=true:
//                    only Host names localhost, 127.0.0.1 and [::1] are served)
//   ALLOWED_ORIGINS  Origins allowed besides the server's own, comma-separated
import { spawn } from "node:child_process";
import { projectRequire } from "./config.mjs";

const dir = process.cwd();
const wrangler = projectRequire(dir).resolve("wrangler/bin/wrangler.js");
const port = process.env.PORT || "8787";
const args = [
  wrangler,
  "dev",
  "--ip",
  "127.0.0.1",
  "--port",
  port,
  "--persist-to",
  ".wrangler/state",
  "--log-level",
  "warn",
  "--show-interactive-dev-session=false",
];
if (process.env.API_TOKEN) args.push("--var", `API_TOKEN:${process.env.API_TOKEN}`);
else args.push("--var", "ALLOW_ANONYMOUS:true");
if (process.env.ALLOWED_ORIGINS) args.push("--var", `ALLOWED_ORIGINS:${process.env.ALLOWED_ORIGINS}`);

const child = spawn(process.execPath, args, {
  cwd: dir,
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
