// Reads a project's wrangler.jsonc, so local servers use the same bindings as a deployment.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";

/** JSON with comments and trailing commas, as wrangler.jsonc allows, to plain JSON text. */
export function stripJsonc(text) {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = endOfString(text, i);
      out += text.slice(i, end);
      i = end - 1;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      i = text.indexOf("*/", i + 2) + 1;
      if (i === 0) throw new Error("unterminated comment in wrangler.jsonc");
    } else {
      out += c;
    }
  }
  return out.replace(/,(\s*[}\]])/g, "$1");
}

function endOfString(text, start) {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i + 1;
  }
  throw new Error("unterminated string in wrangler.jsonc");
}

/** The Worker's name, main module, compatibility date and Durable Object bindings. */
export function readWorkerConfig(path) {
  const config = JSON.parse(stripJsonc(readFileSync(path, "utf8")));
  const sqlite = new Set(config.migrations?.flatMap((m) => m.new_sqlite_classes ?? []) ?? []);
  const durableObjects = {};
  for (const binding of config.durable_objects?.bindings ?? []) {
    durableObjects[binding.name] = { className: binding.class_name, useSQLite: sqlite.has(binding.class_name) };
  }
  return {
    name: config.name,
    main: resolve(dirname(path), config.main),
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags ?? [],
    durableObjects,
  };
}

/**
 * `require` as seen from the project in `dir`: the toolchain (wrangler, miniflare,
 * esbuild, workerd) is the project's, wherever this library was copied or installed.
 */
export function projectRequire(dir) {
  return createRequire(resolve(dir, "package.json"));
}
