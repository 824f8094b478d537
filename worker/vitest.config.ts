import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      {
        // Unit and golden tests, inside workerd.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.jsonc" },
            // The golden cases run with this token.
            miniflare: { bindings: { API_TOKEN: "golden-token" } },
          }),
        ],
        test: { name: "workerd", include: ["test/*.test.ts"], testTimeout: 20_000 },
      },
      {
        // The test Worker (test/app): schedules, schema versions, objects calling each other.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./test/app/wrangler.jsonc" },
            miniflare: { bindings: { API_TOKEN: "golden-token" } },
          }),
        ],
        test: { name: "workerd-app", include: ["test/app/test/**/*.test.ts"], testTimeout: 20_000 },
      },
      {
        // The local server script, as a real Node process.
        test: { name: "node", include: ["test/node/**/*.test.mjs"], environment: "node", testTimeout: 20_000 },
      },
    ],
  },
});
