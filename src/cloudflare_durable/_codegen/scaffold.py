"""``durable init worker``: a Cloudflare Worker project for the models of a Python module.

The project holds the TypeScript library (``vendor/cloudflare-durable``, copied
from this Python package), code generated from the models (``src/generated``),
one implementation file per model with remote methods (``src/models``, stubs
at first, then the user's), and the usual Cloudflare configuration. Only the
library and ``src/generated`` are ever rewritten (``npm run generate``).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Final

from .library import library_dir
from .typescript import Naming, namings, stub

__all__ = ["COMPATIBILITY_DATE", "VENDOR", "copy_library", "scaffold", "toolchain", "write_stubs"]

#: Where a project keeps its copy of the TypeScript library.
VENDOR: Final = "vendor/cloudflare-durable"
COMPATIBILITY_DATE: Final = "2026-04-01"


def toolchain() -> dict[str, str]:
    """The pinned npm toolchain a Worker project needs (the library's ``devDependencies``)."""
    manifest = json.loads((library_dir() / "package.json").read_text(encoding="utf-8"))
    pins: dict[str, str] = manifest["devDependencies"]
    return pins


def copy_library(target: Path) -> None:
    """Put a fresh copy of the TypeScript library at ``target`` (replacing an older copy)."""
    if target.exists():
        manifest = target / "package.json"
        name = (
            json.loads(manifest.read_text(encoding="utf-8")).get("name")
            if manifest.is_file()
            else None
        )
        if name != "cloudflare-durable":
            raise FileExistsError(
                f"{target} exists and is not a copy of the cloudflare-durable library"
            )
        shutil.rmtree(target)
    shutil.copytree(library_dir(), target, ignore=shutil.ignore_patterns("node_modules", ".*"))
    guard = target / "scripts" / "workerd-guard.sh"
    if guard.exists():
        guard.chmod(0o755)


def write_stubs(models_dir: Path, document: dict[str, Any]) -> list[Path]:
    """A stub implementation for each model with methods that has none yet (never overwrites)."""
    written: list[Path] = []
    for naming in namings(document):
        path = models_dir / f"{naming.module}.ts"
        if naming.needs_code and not path.exists():
            models_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(
                stub(naming, document["models"][naming.wire], document), encoding="utf-8"
            )
            written.append(path)
    return written


def project_name(directory: Path) -> str:
    """A Worker name from a folder name: lowercase letters, digits and dashes."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")
    return name or "durable-worker"


def scaffold(directory: Path, document: dict[str, Any], generate_command: str) -> list[Path]:
    """Write a new project into ``directory`` (which must be empty or absent)."""
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty")
    directory.mkdir(parents=True, exist_ok=True)
    name = project_name(directory)
    models = namings(document)
    files = {
        "package.json": _package_json(name, generate_command),
        "wrangler.jsonc": wrangler_config(name, models),
        "tsconfig.json": _TSCONFIG,
        "vitest.config.ts": _VITEST_CONFIG,
        "src/index.ts": _INDEX,
        "src/env.d.ts": _ENV,
        "test/worker.test.ts": _TEST,
        ".gitignore": "node_modules/\n.wrangler/\n.dev.vars\n*.log\n",
        "README.md": _readme(name, generate_command, models),
    }
    written: list[Path] = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    copy_library(directory / VENDOR)
    written.append(directory / VENDOR)
    return written


def _package_json(name: str, generate_command: str) -> str:
    manifest = {
        "name": name,
        "version": "0.1.0",
        "private": True,
        "type": "module",
        "engines": {"node": ">=20.19.0"},
        "scripts": {
            "generate": generate_command,
            "dev": "node node_modules/cloudflare-durable/scripts/dev.mjs",
            "serve": "node node_modules/cloudflare-durable/scripts/serve.mjs",
            "typecheck": "tsc --noEmit",
            "test": "WRANGLER_SEND_METRICS=false vitest run",
            "deploy": "WRANGLER_SEND_METRICS=false wrangler deploy",
        },
        "dependencies": {"cloudflare-durable": f"file:{VENDOR}"},
        "devDependencies": toolchain(),
    }
    return json.dumps(manifest, indent=2) + "\n"


#: The index of each model's objects (listing), a Durable Object class of the library.
INDEX_CLASS: Final = "DurableIndex"
INDEX_BINDING: Final = "DURABLE_INDEX"


def wrangler_config(name: str, models: list[Naming]) -> str:
    """wrangler.jsonc: a Durable Object binding and a SQLite migration for each model,
    and for the index of the models' objects."""
    bindings = ",\n".join(
        [f'      {{ "name": "{m.binding}", "class_name": "{m.cls}" }}' for m in models]
        + [f'      {{ "name": "{INDEX_BINDING}", "class_name": "{INDEX_CLASS}" }}']
    )
    classes = ", ".join([f'"{m.cls}"' for m in models] + [f'"{INDEX_CLASS}"'])
    served = ", ".join(m.wire for m in models)
    return f"""// The Worker serving {served} (made by `durable init worker`; yours to edit).
// A model added later needs a binding below and a migration with a new tag.
{{
  "$schema": "node_modules/wrangler/config-schema.json",
  "name": "{name}",
  "main": "src/index.ts",
  "compatibility_date": "{COMPATIBILITY_DATE}",
  "durable_objects": {{
    "bindings": [
{bindings}
    ]
  }},
  "migrations": [
    {{ "tag": "v1", "new_sqlite_classes": [{classes}] }}
  ],
  "observability": {{ "enabled": true }},
  "send_metrics": false
}}
"""


def missing_bindings(config_text: str, models: list[Naming]) -> list[str]:
    """What wrangler.jsonc lacks for ``models`` (and the index of their objects): one line
    per missing binding or migration."""
    problems: list[str] = []
    if not re.search(rf'"name"\s*:\s*"{INDEX_BINDING}"', config_text):
        problems.append(
            f'the index of objects (listing): add {{ "name": "{INDEX_BINDING}", '
            f'"class_name": "{INDEX_CLASS}" }} to durable_objects.bindings'
        )
    if not re.search(rf'"new_sqlite_classes"\s*:\s*\[[^\]]*"{INDEX_CLASS}"', config_text):
        problems.append(
            f'the index of objects (listing): add a migration {{ "tag": "<new tag>", '
            f'"new_sqlite_classes": ["{INDEX_CLASS}"] }}'
        )
    for model in models:
        if not re.search(rf'"class_name"\s*:\s*"{re.escape(model.cls)}"', config_text):
            problems.append(
                f'{model.wire}: add {{ "name": "{model.binding}", "class_name": "{model.cls}" }} '
                "to durable_objects.bindings"
            )
        if not re.search(
            rf'"new_sqlite_classes"\s*:\s*\[[^\]]*"{re.escape(model.cls)}"', config_text
        ):
            problems.append(
                f'{model.wire}: add a migration {{ "tag": "<new tag>", "new_sqlite_classes": '
                f'["{model.cls}"] }}'
            )
    return problems


def _readme(name: str, generate_command: str, models: list[Naming]) -> str:
    table = "\n".join(
        f"| `{m.wire}` | `{m.cls}` | "
        + (f"`src/models/{m.module}.ts`" if m.needs_code else "none (state only)")
        + " |"
        for m in models
    )
    return f"""# {name}

A Cloudflare Worker serving Python `DurableModel`s on Durable Objects, made by
`durable init worker`. The Python models are the source of truth: everything
but the method bodies is generated from them.

| model | class | method bodies |
| --- | --- | --- |
{table}

```sh
npm install
npm run generate    # after changing the Python models: {generate_command}
npm run typecheck   # names every method, parameter, field or event that drifted
npm run dev         # wrangler dev on 127.0.0.1:8787 (PORT, API_TOKEN)
npm test
npm run deploy      # wrangler deploy (set the API_TOKEN secret first)
```

`src/generated/` and `vendor/cloudflare-durable/` are rewritten by
`npm run generate`; never edit them. `src/models/` is yours.
"""


_TSCONFIG: Final = """{
  "compilerOptions": {
    "target": "es2024",
    "lib": ["es2024"],
    "module": "es2022",
    "moduleResolution": "bundler",
    "types": ["@cloudflare/workers-types/latest", "@cloudflare/vitest-pool-workers/types"],
    "strict": true,
    "noUncheckedIndexedAccess": true,
    "noImplicitOverride": true,
    "noFallthroughCasesInSwitch": true,
    "isolatedModules": true,
    "resolveJsonModule": true,
    "skipLibCheck": true,
    "noEmit": true
  },
  "include": ["src/**/*.ts", "test/**/*.ts", "vitest.config.ts"]
}
"""

_VITEST_CONFIG: Final = """import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.jsonc" },
      miniflare: { bindings: { API_TOKEN: "test-token" } },
    }),
  ],
  test: { include: ["test/**/*.test.ts"], testTimeout: 20_000 },
});
"""

_INDEX: Final = """/**
 * The Worker's entry: every model's Durable Object class and the router
 * (both generated). Add routes or middleware here if you need them.
 */
export * from "./generated/worker";
export { default } from "./generated/worker";
"""

_ENV: Final = """// Secrets are not in wrangler.jsonc, so `wrangler types` cannot see them.
declare namespace Cloudflare {
  interface Env {
    /** The bearer token clients must send (`wrangler secret put API_TOKEN`). */
    API_TOKEN?: string;
  }
}
"""

_TEST: Final = """import { SELF } from "cloudflare:test";
import { expect, it } from "vitest";
import { SCHEMA_DOCUMENT } from "../src/generated/schema";

const headers = { Authorization: "Bearer test-token" };

it("serves the schema of the Python models", async () => {
  const res = await SELF.fetch("http://worker.test/v1/models", { headers });
  expect(res.status).toBe(200);
  expect(await res.text()).toBe(SCHEMA_DOCUMENT);
});

it("serves every model", async () => {
  for (const model of Object.keys(JSON.parse(SCHEMA_DOCUMENT).models)) {
    const res = await SELF.fetch(`http://worker.test/v1/objects/${model}/smoke-test`, { headers });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ version: 0, state: null });
  }
});
"""
