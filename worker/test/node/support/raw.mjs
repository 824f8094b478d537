// Raw HTTP/1.1 and WebSocket over node:net, for what fetch() would fix up on the
// way: paths with dot segments or bad escapes, handshakes offering extensions,
// chunked bodies cut off, close frames.
import { randomBytes } from "node:crypto";
import { connect } from "node:net";

/** Opens a TCP connection to `url` (http://127.0.0.1:PORT). */
export function open(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** An HTTP/1.1 request head (Host 127.0.0.1 unless given); `Content-Length` is added unless a header sets the framing. */
export function head(method, path, headers = {}, body = Buffer.alloc(0)) {
  const names = Object.keys(headers).map((name) => name.toLowerCase());
  const lines = [`${method} ${path} HTTP/1.1`, ...(names.includes("host") ? [] : ["Host: 127.0.0.1"])];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (!names.includes("content-length") && !names.includes("transfer-encoding")) lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), body]);
}

/** Reads one reply (Content-Length bodies) from `socket`; rejects after `timeoutMs`. */
export function readReply(socket, timeoutMs = 5_000) {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error, reply) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve(reply);
    };
    const onClose = () => finish(null, null);
    const onData = (chunk) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return;
      const lines = data.subarray(0, end).toString("latin1").split("\r\n");
      const headers = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = Number(lines[0].split(" ")[1]);
      const length = status === 101 ? 0 : Number(headers["content-length"] ?? 0);
      if (data.length < end + 4 + length) return;
      const body = data.subarray(end + 4, end + 4 + length).toString("utf8");
      const rest = data.subarray(end + 4 + length);
      finish(null, { status, headers, body, json: () => JSON.parse(body), rest });
    };
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}

/** Sends one request on a new connection and reads its reply (null if the server closed first). */
export async function request(url, method, path, headers = {}, body = Buffer.alloc(0), timeoutMs = 5_000) {
  const socket = await open(url);
  try {
    socket.write(head(method, path, headers, body));
    return await readReply(socket, timeoutMs);
  } finally {
    socket.destroy();
  }
}

/** A masked client frame. */
export function frame(opcode, payload) {
  const data = Buffer.from(payload);
  const length = data.length < 126 ? Buffer.from([0x80 | data.length]) : data.length < 65536 ? Buffer.from([0x80 | 126, data.length >> 8, data.length & 255]) : null;
  if (length === null) throw new Error("frame too long for this helper");
  const mask = randomBytes(4);
  const masked = Buffer.from(data.map((byte, index) => byte ^ mask[index % 4]));
  return Buffer.concat([Buffer.from([0x80 | opcode]), length, mask, masked]);
}

/**
 * A WebSocket client: `frames` yields `{text}` for text frames and `{close: code}`
 * for the server's close frame, `{gone: true}` when the connection ends without one.
 */
export async function websocket(url, path, headers = {}) {
  const socket = await open(url);
  const key = randomBytes(16).toString("base64");
  socket.write(head("GET", path, { Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", ...headers }));
  const reply = await readReply(socket);
  if (reply === null || reply.status !== 101) return { reply, socket };
  let buffer = reply.rest;
  const queue = [];
  const waiters = [];
  const push = (item) => (waiters.length > 0 ? waiters.shift()(item) : queue.push(item));
  let ended = false;
  socket.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (buffer.length < 2) return;
      let length = buffer[1] & 127;
      let offset = 2;
      if (length === 126) [length, offset] = [buffer.readUInt16BE(2), 4];
      else if (length === 127) [length, offset] = [Number(buffer.readBigUInt64BE(2)), 10];
      if (buffer.length < offset + length) return;
      const opcode = buffer[0] & 15;
      const payload = buffer.subarray(offset, offset + length);
      buffer = buffer.subarray(offset + length);
      if (opcode === 1) push({ text: payload.toString("utf8") });
      if (opcode === 8) push({ close: payload.length >= 2 ? payload.readUInt16BE(0) : 1005 });
    }
  });
  socket.on("close", () => {
    if (!ended) push({ gone: true });
    ended = true;
  });
  socket.on("error", () => {});
  return {
    reply,
    socket,
    send: (text) => socket.write(frame(1, text)),
    next: (timeoutMs = 5_000) =>
      queue.length > 0
        ? Promise.resolve(queue.shift())
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), timeoutMs);
            waiters.push((item) => {
              clearTimeout(timer);
              resolve(item);
            });
          }),
    close: () => socket.destroy(),
  };
}
