// Secrets are not in wrangler.jsonc, so `wrangler types` cannot see them.
declare namespace Cloudflare {
  interface Env {
    /** The bearer token clients must send; unset or empty serves without authentication. */
    API_TOKEN?: string;
  }
}
