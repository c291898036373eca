/**
 * Atomic file writes: write a temporary file beside the target, flush it to disk, then rename it
 * over the target and flush the folder, so a crash (or a power cut) leaves either the old file or
 * the new one, never half of either, and writes made in order become durable in order.
 *
 * Test hook (off by default): when the environment variable `BERT_WEBGPU_TEST_PAUSE_BEFORE_RENAME`
 * is `<file name>` or `<file name>:<ms>` (e.g. `latest.json:60000`), every atomic write of a file with
 * that base name prints `test hook: paused before renaming "<temporary>" to "<path>"` to stderr and
 * waits that long (default 60 s) between the flushed temporary file and the rename, so a crash test
 * can kill the process inside the write window deterministically (`train/crash_test.ts`). It is
 * read only when the process may read that variable (no permission prompt).
 * @module
 */

import { basename, dirname, join } from "node:path";

/** The test hook's variable; see the module doc. */
export const PAUSE_BEFORE_RENAME_ENV = "BERT_WEBGPU_TEST_PAUSE_BEFORE_RENAME";

/** The test hook's pause before renaming `path`, in ms, or 0 when the hook is off or names another file. */
function pauseBeforeRename(path: string): number {
  const allowed = Deno.permissions.querySync({ name: "env", variable: PAUSE_BEFORE_RENAME_ENV });
  if (allowed.state !== "granted") return 0;
  const value = Deno.env.get(PAUSE_BEFORE_RENAME_ENV);
  if (!value) return 0;
  const [file, ms] = value.split(":");
  return file === basename(path) ? Number(ms ?? 60_000) || 60_000 : 0;
}

/** Writes `data` to `path` atomically (temporary file, fsync, rename, fsync of the folder). */
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
  const pauseMs = pauseBeforeRename(path);
  if (pauseMs > 0) {
    console.error(`test hook: paused before renaming "${tmp}" to "${path}"`);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dirname(path));
}

/**
 * Flushes a folder's entries, so that a rename in it survives a power cut before any later write
 * that depends on it (a checkpoint's files before the latest.json pointer). Best effort: where a
 * folder cannot be opened (Windows), the rename is still atomic, only its durability is the OS's.
 */
async function syncDir(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Not supported here; see above.
  } finally {
    handle?.close();
  }
}

/** What {@linkcode writeFileAtomic} writes before the rename: `<name>.tmp-<pid>-<random>`. */
const TEMP_NAME = /\.tmp-\d+-[a-z0-9]*$/;

/**
 * Deletes the temporary files that writeFileAtomic leaves in `dir` (not its subfolders) when its
 * process is killed before the rename; returns their names. Call it only while no other process
 * writes into `dir`. A missing folder has none.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && TEMP_NAME.test(entry.name)) {
        await Deno.remove(join(dir, entry.name));
        removed.push(entry.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
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
