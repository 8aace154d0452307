// Tiny assertion helpers for the tests and benches (no jsr: dependency): deep equality comes
// from node:assert's strict mode.
import nodeAssert from "node:assert/strict";

/** Fails unless `actual` and `expected` are deeply and strictly equal (prototypes included). */
export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Fails unless `actual === expected` (Object.is). */
export function assertStrictEquals<T>(actual: unknown, expected: T, message?: string): void {
  nodeAssert.strictEqual(actual, expected, message);
}

/** Fails unless `condition` is truthy. */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new nodeAssert.AssertionError({ message });
}

/** Fails unless `a` and `b` hold the same bytes; reports the first difference, not a dump. */
export function assertBytesEqual(a: Uint8Array, b: Uint8Array, message = "bytes differ"): void {
  if (a.length !== b.length) {
    throw new nodeAssert.AssertionError({
      message: `${message}: length ${a.length} !== ${b.length}`,
    });
  }
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      throw new nodeAssert.AssertionError({
        message: `${message}: first difference at byte ${i}: ${a[i]} !== ${b[i]}`,
      });
    }
  }
}

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/** Fails unless `fn` throws an instance of `cls`; returns the error for further checks. */
export function assertThrows<E extends Error>(fn: () => unknown, cls: ErrorClass<E>): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new nodeAssert.AssertionError({
      message: `expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : e}`,
    });
  }
  throw new nodeAssert.AssertionError({ message: `expected ${cls.name}, nothing was thrown` });
}

/** Fails unless the promise rejects with an instance of `cls`; returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: ErrorClass<E>,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new nodeAssert.AssertionError({
      message: `expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : e}`,
    });
  }
  throw new nodeAssert.AssertionError({ message: `expected ${cls.name}, nothing was thrown` });
}
