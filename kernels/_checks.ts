/**
 * Argument checks every dispatcher shares: counts and buffer sizes, each failing with a RangeError
 * that names the op, the argument and the fix.
 * @module
 */

/** Throws unless `value` is a positive integer. */
export function checkCount(op: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${op}: ${name} must be a positive integer, got ${value}`);
  }
}

/** Throws unless `buf` holds at least `bytes` bytes; `shape` says what needs them. */
export function checkBuffer(op: string, name: string, buf: GPUBuffer, bytes: number, shape: string): void {
  if (buf.size < bytes) {
    throw new RangeError(
      `${op}: buffer "${name}" has ${buf.size} bytes but ${shape} needs ${bytes}; allocate a larger buffer`,
    );
  }
}
