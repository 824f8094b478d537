import { DurableModel, PermissionError, remote, t, ValueError } from "cloudflare-durable";

/** `Document`: shared content edited by joined editors, one version at a time. */
export class Document extends DurableModel("Document", {
  content: t.str.default(""),
  version: t.int.default(0),
  editors: t.dict(t.str).default({}),
}) {
  /** Adds an editor, emits `Joined`, and returns the editor ids in join order. */
  join = remote({ editor_id: t.str, name: t.str }, t.list(t.str), ({ editor_id, name }) => {
    this.state.editors[editor_id] = name;
    this.emit("Joined", { editor_id, name });
    return Object.keys(this.state.editors);
  });

  /** Replaces the content; `version` must be the next one. Emits `Edited`. */
  edit = remote({ editor_id: t.str, content: t.str, version: t.int }, t.int, ({ editor_id, content, version }) => {
    if (!Object.hasOwn(this.state.editors, editor_id)) {
      throw new PermissionError(`${editor_id} has not joined this document`);
    }
    if (version !== this.state.version + 1) {
      throw new ValueError(`expected version ${this.state.version + 1}, got ${version}`);
    }
    this.state.content = content;
    this.state.version = version;
    this.emit("Edited", { editor_id, version });
    return version;
  });

  /** Removes an editor, emitting `Left` if it was there; returns whether it was. */
  leave = remote({ editor_id: t.str }, t.bool, ({ editor_id }) => {
    if (!Object.hasOwn(this.state.editors, editor_id)) return false;
    delete this.state.editors[editor_id];
    this.emit("Left", { editor_id });
    return true;
  });
}
