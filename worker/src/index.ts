/**
 * The cloudflare-durable Worker: serves the example models over protocol
 * version 1. Add your own model class here and bind it in wrangler.jsonc.
 */
import { createRouter, DurableShutdown } from "./lib";
import { ChatRoom } from "./models/chat_room";
import { Counter } from "./models/counter";
import { Document } from "./models/document";

// DurableShutdown: lets scripts/serve.mjs close every WebSocket with 1001 when it stops.
export { ChatRoom, Counter, Document, DurableShutdown };

export default createRouter({ COUNTER: Counter, DOCUMENT: Document, CHAT_ROOM: ChatRoom });
