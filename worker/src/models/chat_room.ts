import { ValueError } from "cloudflare-durable";
import { ChatRoomBase } from "../generated/chat_room";
import type { Message } from "../generated/types";

/** How many messages a room keeps (`HISTORY` in examples/chat_room.py). */
export const MAX_MESSAGES = 100;

/** `ChatRoom` (examples/chat_room.py) on the Worker: the last 100 messages. */
export class ChatRoom extends ChatRoomBase {
  override post(author: string, text: string): number {
    if (text.trim() === "") throw new ValueError("a message needs some text");
    this.state.messages = [...this.state.messages, { author, text }].slice(-MAX_MESSAGES);
    this.emit("Posted", { author, text });
    return this.state.messages.length;
  }

  override recent(limit: number): Message[] {
    return limit > 0 ? this.state.messages.slice(-limit) : [];
  }
}
