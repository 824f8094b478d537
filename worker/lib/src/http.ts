/** Replies and request bodies for the HTTP side of the protocol. */
import { Failure } from "./errors";
import type { JsonObject, ParsedJson } from "./json";
import { failureReply, FEATURES, FEATURES_HEADER, MAX_BODY_BYTES, parseBody, PROTOCOL_HEADER, PROTOCOL_VERSION, type Reply } from "./protocol";

/** The headers of every reply and handshake: the protocol version and the features beyond it. */
export function protocolHeaders(): Record<string, string> {
  return { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION), [FEATURES_HEADER]: FEATURES };
}

export function replyHeaders(): Record<string, string> {
  return { "Content-Type": "application/json", ...protocolHeaders() };
}

/** An HTTP response carrying an object's reply. */
export function respond(reply: Reply): Response {
  return new Response(reply.body, { status: reply.status, headers: replyHeaders() });
}

export function respondJson(status: number, body: JsonObject): Response {
  return respond({ status, body: JSON.stringify(body) });
}

/** The error envelope response for `failure`. */
export function respondFailure(failure: Failure): Response {
  return respond(failureReply(failure));
}

const tooLarge = () => new Failure("payload_too_large", `body larger than ${MAX_BODY_BYTES} bytes`);

/**
 * Reads the body, refusing more than the limit whatever Content-Length says.
 *
 * Past the limit the reader is released without waiting on `cancel()`: the
 * runtime discards the rest of the body (or closes the connection) once the
 * reply is sent, and a cancellation awaited here would wait on the client.
 */
async function readLimited(request: Request): Promise<Uint8Array> {
  const declared = request.headers.get("Content-Length");
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await readChunk(reader);
    if (done) break;
    total += value.byteLength;
    if (total > MAX_BODY_BYTES) {
      reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concat(chunks, total);
}

/** The next chunk; a body that breaks off (the client went away mid-body) is the client's fault: 400. */
async function readChunk(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<ReadableStreamReadResult<Uint8Array>> {
  try {
    return await reader.read();
  } catch {
    throw new Failure("bad_request", "the body ended before its declared end");
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function isJsonMediaType(contentType: string | null): boolean {
  if (contentType === null) return false;
  return contentType.split(";")[0]!.trim().toLowerCase() === "application/json";
}

/** UTF-8 only; one leading byte order mark is dropped (`ignoreBOM: false`). */
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * The request body: `null` when it is empty (no Content-Type needed), else a
 * JSON object sent as `application/json`, at most 1 MiB, checked for hostile
 * values (`parseBody`).
 */
export async function readJsonBody(request: Request): Promise<ParsedJson | null> {
  const bytes = await readLimited(request);
  if (bytes.byteLength === 0) return null;
  if (!isJsonMediaType(request.headers.get("Content-Type"))) {
    throw new Failure("unsupported_media_type", "send the body as Content-Type: application/json");
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new Failure("bad_request", "the body is not valid UTF-8");
  }
  return parseBody(text);
}
