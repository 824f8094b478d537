import { PermissionError, ValueError } from "cloudflare-durable";
import { DocumentBase } from "../generated/document";

/** `Document` (examples/collaborative_document.py) on the Worker: editors join, edit in turn, and leave. */
export class Document extends DocumentBase {
  override join(editor_id: string, name: string): string[] {
    this.state.editors[editor_id] = name;
    this.emit("Joined", { editor_id, name });
    return Object.keys(this.state.editors);
  }

  override edit(editor_id: string, content: string, version: number): number {
    if (!Object.hasOwn(this.state.editors, editor_id)) {
      throw new PermissionError(`${editor_id} has not joined this document`);
    }
    if (version !== this.state.version + 1) {
      throw new ValueError(`stale edit: document is at version ${this.state.version}, got ${version}`);
    }
    this.state.content = content;
    this.state.version = version;
    this.emit("Edited", { editor_id, version });
    return version;
  }

  override leave(editor_id: string): boolean {
    if (!Object.hasOwn(this.state.editors, editor_id)) return false;
    delete this.state.editors[editor_id];
    this.emit("Left", { editor_id });
    return true;
  }
}
