/** Bearer-token authentication, compared in constant time. */

const encoder = new TextEncoder();
const digests = new Map<string, Promise<ArrayBuffer>>();

function sha256(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

/** The digest of the configured token, computed once per token value. */
function expectedDigest(token: string): Promise<ArrayBuffer> {
  let digest = digests.get(token);
  if (digest === undefined) {
    digest = sha256(token);
    digests.set(token, digest);
  }
  return digest;
}

/**
 * The token of an `Authorization: Bearer <token>` header, or null for anything
 * else: the scheme in any case, one or more spaces, then the token with
 * surrounding spaces and tabs removed.
 */
export function bearerToken(header: string | null): string | null {
  if (header === null) return null;
  const match = /^bearer +([^]*)$/i.exec(header);
  const token = match === null ? "" : match[1]!.replace(/^[ \t]+|[ \t]+$/g, "");
  return token === "" ? null : token;
}

/**
 * Whether `header` carries `token`. Both sides are hashed first, so the
 * comparison takes the same time whatever the length or content presented.
 */
export async function authorized(header: string | null, token: string): Promise<boolean> {
  const presented = bearerToken(header) ?? "";
  const [expected, actual] = await Promise.all([expectedDigest(token), sha256(presented)]);
  const equal = crypto.subtle.timingSafeEqual(expected, actual);
  return equal && presented !== "";
}
