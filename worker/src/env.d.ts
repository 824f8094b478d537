// Secrets and local-only settings are not in wrangler.jsonc, so `wrangler types` cannot see them.
declare namespace Cloudflare {
  interface Env {
    /** The bearer token clients must send. Unset or empty: every request but /v1/health is refused... */
    API_TOKEN?: string;
    /** ...unless this is "true": then the Worker serves without a token, to loopback Host names only. */
    ALLOW_ANONYMOUS?: string;
    /** Origins allowed besides the request's own, comma-separated (e.g. "https://app.example.com"). */
    ALLOWED_ORIGINS?: string;
  }
}
