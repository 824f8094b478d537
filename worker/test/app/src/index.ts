/** The test Worker: re-exports the generated Worker of app_models.py. */
export * from "./generated/worker";
export { default } from "./generated/worker";
