/**
 * The matching rules of the golden cases (docs/protocol.md, "Golden cases"):
 * every member of an expected object must be present with a matching value,
 * arrays and scalars compare exactly, "<any>" matches anything, and a member
 * expected as "<absent>" must not be there.
 */

export const ANY = "<any>";
export const ABSENT = "<absent>";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A description of the first mismatch, or null when `actual` matches `expected`. */
export function mismatch(expected: unknown, actual: unknown, at = "$"): string | null {
  if (expected === ANY) return null;
  if (isObject(expected)) return objectMismatch(expected, actual, at);
  if (Array.isArray(expected)) return arrayMismatch(expected, actual, at);
  return Object.is(expected, actual) ? null : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

function objectMismatch(expected: Record<string, unknown>, actual: unknown, at: string): string | null {
  if (!isObject(actual)) return `${at}: expected an object, got ${JSON.stringify(actual)}`;
  for (const [key, value] of Object.entries(expected)) {
    if (value === ABSENT) {
      if (Object.hasOwn(actual, key)) return `${at}.${key}: expected no such member, got ${JSON.stringify(actual[key])}`;
      continue;
    }
    if (!Object.hasOwn(actual, key)) return `${at}.${key}: missing`;
    const problem = mismatch(value, actual[key], `${at}.${key}`);
    if (problem !== null) return problem;
  }
  return null;
}

/** Arrays match exactly: same length, and members equal (objects inside must have no extra members). */
function arrayMismatch(expected: unknown[], actual: unknown, at: string): string | null {
  if (!Array.isArray(actual) || actual.length !== expected.length) {
    return `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
  }
  for (let index = 0; index < expected.length; index++) {
    const problem = exactMismatch(expected[index], actual[index], `${at}[${index}]`);
    if (problem !== null) return problem;
  }
  return null;
}

function exactMismatch(expected: unknown, actual: unknown, at: string): string | null {
  if (isObject(expected) && isObject(actual)) {
    const extra = Object.keys(actual).find((key) => !Object.hasOwn(expected, key));
    if (extra !== undefined) return `${at}.${extra}: unexpected member`;
  }
  return mismatch(expected, actual, at);
}
