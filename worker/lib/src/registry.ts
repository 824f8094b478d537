/**
 * Which environment binding serves each model, for every router built in this
 * isolate (`createRouter` fills it in): how the router, a shutdown and objects
 * calling each other find a model's Durable Object namespace.
 */
const BINDINGS = new Map<string, string>();

export function registerModel(model: string, binding: string): void {
  BINDINGS.set(model, binding);
}

/** The binding serving `model`, or undefined when no router serves it. */
export function bindingOf(model: string): string | undefined {
  return BINDINGS.get(model);
}

/** The namespace serving `model` in `env`, or undefined. */
export function namespaceOf(env: object, model: string): DurableObjectNamespace | undefined {
  const binding = BINDINGS.get(model);
  return binding === undefined ? undefined : ((env as Record<string, unknown>)[binding] as DurableObjectNamespace | undefined);
}
