/**
 * Test-only assertions for errors: the class and a fragment of the message, so a test proves the
 * message a user reads.
 * @module
 */

import assert from "node:assert/strict";

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

function check(error: unknown, errorClass: ErrorClass, fragments: readonly string[]): void {
  assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${String(error)}`);
  for (const f of fragments) {
    assert.ok(
      error.message.includes(f),
      `message ${JSON.stringify(error.message)} lacks ${JSON.stringify(f)}`,
    );
  }
}

/** Asserts that `fn` throws an `errorClass` whose message contains every fragment. */
export function assertThrowsWith(fn: () => unknown, errorClass: ErrorClass, ...fragments: string[]): void {
  let thrown: unknown = undefined;
  try {
    fn();
  } catch (error) {
    thrown = error ?? new Error("null thrown");
  }
  assert.ok(thrown !== undefined, `expected ${errorClass.name} to be thrown`);
  check(thrown, errorClass, fragments);
}

/** Asserts that `fn` rejects with an `errorClass` whose message contains every fragment. */
export async function assertRejectsWith(
  fn: () => Promise<unknown>,
  errorClass: ErrorClass,
  ...fragments: string[]
): Promise<void> {
  let thrown: unknown = undefined;
  try {
    await fn();
  } catch (error) {
    thrown = error ?? new Error("null thrown");
  }
  assert.ok(thrown !== undefined, `expected ${errorClass.name} to be thrown`);
  check(thrown, errorClass, fragments);
}
