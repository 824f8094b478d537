import { DurableModel, remote, t, ValueError } from "cloudflare-durable";

/** How many messages a room keeps. */
export const MAX_MESSAGES = 100;

const Message = t.object({ author: t.str, text: t.str }, "Message");

/** `ChatRoom`: the last 100 messages. */
export class ChatRoom extends DurableModel("ChatRoom", { messages: t.list(Message).default([]) }) {
  /** Appends a message (not empty or blank), emits `Posted`, returns how many are kept. */
  post = remote({ author: t.str, text: t.str }, t.int, ({ author, text }) => {
    if (text.trim() === "") throw new ValueError("a message needs some text");
    this.state.messages.push({ author, text });
    this.state.messages = this.state.messages.slice(-MAX_MESSAGES);
    this.emit("Posted", { author, text });
    return this.state.messages.length;
  });

  /** The last `limit` messages; changes nothing. */
  recent = remote({ limit: t.int.default(20) }, t.list(Message), ({ limit }) => {
    return limit > 0 ? this.state.messages.slice(-limit) : [];
  });
}
