/**
 * The base class of a model generated from Python (`durable codegen
 * typescript`): its declaration comes from the generated `ModelSpec` and its
 * state is typed by the generated interface.
 */
import { DurableModelObject } from "./object";
import type { ModelSpec } from "./schema";

/** A base class for the model declared by `spec`, with state `S`: `class CounterBase extends ModelBase<CounterState>(spec) { ... }`. */
export function ModelBase<S extends object>(spec: ModelSpec) {
  abstract class Model extends DurableModelObject<S> {
    static override readonly spec = spec;
  }
  return Model;
}
