import { ItemBase, type ItemMigrations } from "../generated/item";

/** `app.Item` at schema version 2: version 1 called `name` `title`. */
export class Item extends ItemBase {
  override bump(): number {
    this.state.count += 1;
    return this.state.count;
  }

  /** Each takes the state's JSON as that schema version stored it, and returns the next version's. */
  protected override migrations(): ItemMigrations {
    return {
      1: ({ title = "", ...rest }) => ({ ...rest, name: title }),
    };
  }
}
