/**
 * The cloudflare-durable Worker serving the example models (examples/*.py).
 * src/generated/ is generated from them; src/models/ holds the method bodies.
 */
export * from "./generated/worker";
export { default } from "./generated/worker";
