/**
 * Atomic file writes: write a temporary file beside the target, flush it to disk, then rename it
 * over the target, so a crash leaves either the old file or the new one, never half of either.
 * @module
 */

import { dirname } from "node:path";

/** Writes `data` to `path` atomically (temporary file, fsync, rename). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    await file.syncData();
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  file.close();
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Checks that `dir` can be created and written, before any long work starts.
 * @throws {Error} naming the folder when it cannot be written.
 */
export async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = `${dir}/.write-test-${Deno.pid}`;
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (e) {
    throw new Error(
      `Output folder "${dir}" is not writable (${(e as Error).message}): choose another with --output`,
    );
  }
}

/** The folder of a file path. */
export function parentDir(path: string): string {
  return dirname(path);
}
