/**
 * The cloudflare-durable Worker: serves the example models over protocol
 * version 1. Add your own model class here and bind it in wrangler.jsonc.
 */
import { createRouter } from "cloudflare-durable";
import { ChatRoom } from "./models/chat_room";
import { Counter } from "./models/counter";
import { Document } from "./models/document";

export { ChatRoom, Counter, Document };

export default createRouter({ COUNTER: Counter, DOCUMENT: Document, CHAT_ROOM: ChatRoom });
