/**
 * Loads the weights of a Hugging Face style model folder, whichever of its usual layouts it has:
 * `model.safetensors`, sharded `model.safetensors.index.json` + shards, `pytorch_model.bin`, or sharded
 * `pytorch_model.bin.index.json` + shards (looked for in that order), or a single such file.
 * @module
 */

import { readSafetensors, type StoredTensor } from "./safetensors.ts";
import { readTorchBin } from "./torch_bin.ts";

/** Tensors by name and where they came from. */
export interface CheckpointTensors {
  /** Tensors in file order (for a sharded checkpoint: the index's weight_map order). */
  tensors: Map<string, StoredTensor>;
  /** The format of the weight files. */
  format: "safetensors" | "pytorch";
  /** Every file read: the weights file, or the index followed by its shards. */
  files: string[];
}

/** Names looked for in a folder, in order of preference. */
export const CHECKPOINT_FILE_NAMES = [
  "model.safetensors",
  "model.safetensors.index.json",
  "pytorch_model.bin",
  "pytorch_model.bin.index.json",
] as const;

/**
 * Loads a checkpoint folder (see the module doc for the files it looks for) or one weights file
 * (`*.safetensors`, `*.bin`/`*.pt`/`*.pth`, or a `*.index.json`).
 * @throws {Deno.errors.NotFound} naming the folder and the files looked for when none exists, or the
 *   missing shard and its index.
 * @throws {SyntaxError} for a malformed index or weights file.
 * @throws {RangeError} when a shard lacks a tensor its index assigns to it.
 * @example
 * ```ts
 * import { loadCheckpointTensors } from "./checkpoint_files.ts";
 * const { tensors, files } = await loadCheckpointTensors("tests/fixtures/checkpoints/bert_tiny.bin");
 * console.assert(files.length === 1 && tensors.has("classifier.weight"));
 * ```
 */
export async function loadCheckpointTensors(folderOrFile: string): Promise<CheckpointTensors> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(folderOrFile);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot load checkpoint "${folderOrFile}": no such file or folder`);
    }
    throw e;
  }
  if (info.isFile) return await loadFile(folderOrFile);
  for (const file of CHECKPOINT_FILE_NAMES) {
    const path = join(folderOrFile, file);
    if (await isFile(path)) return await loadFile(path);
  }
  throw new Deno.errors.NotFound(
    `Cannot load checkpoint "${folderOrFile}": the folder has none of ${CHECKPOINT_FILE_NAMES.join(", ")}`,
  );
}

async function loadFile(path: string): Promise<CheckpointTensors> {
  if (path.endsWith(".index.json")) return await loadSharded(path);
  if (path.endsWith(".safetensors")) {
    return { tensors: (await readSafetensors(path)).tensors, format: "safetensors", files: [path] };
  }
  if (/\.(bin|pt|pth)$/.test(path)) {
    return { tensors: await readTorchBin(path), format: "pytorch", files: [path] };
  }
  throw new TypeError(
    `Cannot load checkpoint "${path}": unknown file type; expected .safetensors, .bin, .pt, .pth or .index.json`,
  );
}

/** `{"metadata": {...}, "weight_map": {tensor: shard file}}`; every listed shard must exist. */
async function loadSharded(indexPath: string): Promise<CheckpointTensors> {
  const bad: (why: string) => never = (why) => {
    throw new SyntaxError(`Cannot load checkpoint index "${indexPath}": ${why}`);
  };
  let index: unknown;
  try {
    index = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (e) {
    if (e instanceof SyntaxError) bad(`not valid JSON (${e.message})`);
    throw e;
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    bad('it has no "weight_map" object');
  }
  const entries = Object.entries(weightMap as Record<string, unknown>);
  if (entries.length === 0) bad('its "weight_map" is empty');
  const shards = new Set<string>();
  for (const [tensor, shard] of entries) {
    // Shard names are plain file names beside the index; anything else could read outside the folder.
    if (typeof shard !== "string" || !/^[^/\\]+$/.test(shard) || shard === "." || shard === "..") {
      bad(`tensor "${tensor}" maps to ${JSON.stringify(shard)}, not a file name beside the index`);
    }
    if (shard.endsWith(".index.json")) bad(`tensor "${tensor}" maps to another index, "${shard}"`);
    shards.add(shard);
  }
  const cut = Math.max(indexPath.lastIndexOf("/"), indexPath.lastIndexOf("\\"));
  const folder = cut >= 0 ? indexPath.slice(0, cut + 1) : "./";
  const paths = new Map([...shards].map((s) => [s, join(folder, s)]));
  for (const [shard, path] of paths) {
    if (!(await isFile(path))) {
      throw new Deno.errors.NotFound(
        `Cannot load checkpoint index "${indexPath}": shard "${shard}" is missing`,
      );
    }
  }
  const loaded = new Map<string, CheckpointTensors>();
  for (const [shard, path] of paths) {
    loaded.set(shard, await loadFile(path));
  }
  const tensors = new Map<string, StoredTensor>();
  for (const [tensor, shard] of entries as [string, string][]) {
    const t = loaded.get(shard)!.tensors.get(tensor);
    if (!t) {
      throw new RangeError(
        `Cannot load checkpoint index "${indexPath}": tensor "${tensor}" is missing from shard "${shard}"`,
      );
    }
    tensors.set(tensor, t);
  }
  const formats = new Set([...loaded.values()].map((l) => l.format));
  if (formats.size !== 1) bad("its shards mix safetensors and PyTorch files");
  return { tensors, format: [...formats][0], files: [indexPath, ...paths.values()] };
}

function join(folder: string, file: string): string {
  return `${folder.replace(/[/\\]+$/, "")}/${file}`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
