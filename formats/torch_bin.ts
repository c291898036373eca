/**
 * PyTorch `pytorch_model.bin` (what `torch.save(model.state_dict())` writes), read without executing
 * anything. Two layouts exist:
 * - the zip format (PyTorch >= 1.6): `<prefix>/data.pkl` (the pickled dict), `<prefix>/data/<key>`
 *   (each storage's raw little-endian bytes), `<prefix>/version`, and in newer files `<prefix>/byteorder`;
 * - the legacy format (`_use_new_zipfile_serialization=False`): pickles of the magic number, the
 *   protocol version and sys_info, then the dict, then the list of storage keys, then each storage as
 *   an int64 element count followed by its bytes.
 * Tensors are views into storages (offset, size, stride), so a storage may back several tensors and a
 * tensor may be non-contiguous; each tensor is copied out into its own row-major array.
 * @module
 */

import { decodeTensorBytes, dtypeByteSize, type StoredTensor } from "./safetensors.ts";
import { extractZipEntry, looksLikeZip, readZipDirectory, type ZipBudget } from "./_zip.ts";
import { TorchStorageType, TorchTensorRef, unpickle, unpickleFrom } from "./pickle.ts";

/** Options for {@linkcode parseTorchBin}. */
export interface TorchBinOptions {
  /**
   * Most bytes that DEFLATE-compressed records may inflate to in total (PyTorch writes STORED records,
   * which need no budget); guards against compression bombs.
   * @default 4294967296 (4 GiB)
   */
  maxInflatedBytes?: number;
}

/** A storage named by a persistent id: which record holds it, its dtype and element count. */
interface StorageRef {
  key: string;
  dtype: string;
  numel: number;
}

/** Most dimensions a tensor may have (PyTorch's own limit is 64). */
const MAX_DIMS = 64;
/** Legacy files start with this number, pickled. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function fail(name: string, why: string): never {
  throw new SyntaxError(`Cannot read PyTorch checkpoint "${name}": ${why}`);
}

function outOfRange(name: string, why: string): never {
  throw new RangeError(`Cannot read PyTorch checkpoint "${name}": ${why}`);
}

/**
 * Parses a `torch.save(state_dict)` file (zip or legacy format) into its tensors, in the dict's order.
 * Float storages (F32, F16, BF16) become Float32Array, F64 stays Float64Array, int64 BigInt64Array,
 * as {@linkcode parseSafetensors} does; `dtype` keeps the stored dtype's safetensors name.
 * @param name the file name used in every error message.
 * @throws {SyntaxError} for a malformed archive or pickle, or a refused pickle global.
 * @throws {RangeError} for out-of-range offsets, sizes, strides or budgets.
 * @throws {TypeError} when the pickle is not a flat dict of tensors.
 * @example
 * ```ts
 * import { parseTorchBin } from "./torch_bin.ts";
 * const bytes = await Deno.readFile("tests/fixtures/checkpoints/bert_tiny.bin");
 * const tensors = parseTorchBin(bytes, "bert_tiny.bin");
 * console.assert(tensors.get("classifier.bias")?.shape[0] === 2);
 * ```
 */
export function parseTorchBin(
  bytes: Uint8Array,
  name: string,
  options: TorchBinOptions = {},
): Map<string, StoredTensor> {
  const budget: ZipBudget = { inflateBytesLeft: options.maxInflatedBytes ?? 2 ** 32 };
  if (looksLikeZip(bytes)) return parseZipFormat(bytes, name, budget);
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] === 2) return parseLegacyFormat(bytes, name);
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar") {
    fail(name, "the tar-based format of PyTorch before 0.4 is not supported; re-save it with a recent torch");
  }
  return fail(name, "it is neither a zip archive nor a legacy pickle (wrong file, or truncated)");
}

/** Reads and parses a `pytorch_model.bin`; see {@linkcode parseTorchBin}. */
export async function readTorchBin(
  path: string,
  options?: TorchBinOptions,
): Promise<Map<string, StoredTensor>> {
  return parseTorchBin(await Deno.readFile(path), path, options);
}

function parseZipFormat(bytes: Uint8Array, name: string, budget: ZipBudget): Map<string, StoredTensor> {
  const entries = readZipDirectory(bytes, name);
  const pickles = [...entries.keys()].filter((k) => /^[^/]*\/data\.pkl$/.test(k));
  if (pickles.length !== 1) {
    fail(name, `expected one "<prefix>/data.pkl" record, found ${pickles.length}`);
  }
  const pklName = pickles[0];
  const prefix = pklName.slice(0, -"data.pkl".length);
  if (entries.has(prefix + "constants.pkl")) {
    fail(
      name,
      "it is a TorchScript archive (torch.jit.save); save model.state_dict() with torch.save instead",
    );
  }
  const record = (key: string) => {
    const entry = entries.get(key);
    if (!entry) fail(name, `record "${key}" is missing`);
    return extractZipEntry(bytes, entry, name, budget);
  };
  if (entries.has(prefix + "byteorder")) {
    const order = new TextDecoder().decode(record(prefix + "byteorder"));
    if (order !== "little") outOfRange(name, `byte order "${order}" is not supported; only "little" is`);
  }
  const refs = new Map<string, StorageRef>();
  const root = unpickle(record(pklName), `${name}" record "${pklName}`, (pid) => {
    // ('storage', storage_type, key, location, numel)
    if (!isTuple(pid) || pid.length !== 5 || pid[0] !== "storage") {
      fail(name, "a persistent id is not ('storage', type, key, location, numel)");
    }
    return storageRef(refs, pid[1], pid[2], pid[4], name);
  });
  return collectTensors(root, refs, name, (ref) => {
    const raw = record(`${prefix}data/${ref.key}`);
    const width = dtypeByteSize(ref.dtype)!;
    if (raw.length !== ref.numel * width) {
      fail(
        name,
        `storage "${ref.key}" has ${raw.length} bytes, but ${ref.numel} ${ref.dtype} need ${
          ref.numel * width
        }`,
      );
    }
    return decodeTensorBytes(ref.dtype, raw, ref.numel);
  });
}

function parseLegacyFormat(bytes: Uint8Array, name: string): Map<string, StoredTensor> {
  const noPersistentIds = () => fail(name, "a header pickle holds a persistent id");
  const magic = unpickleFrom(bytes, 0, name, noPersistentIds);
  if (magic.value !== LEGACY_MAGIC) fail(name, "it starts with a pickle but not with PyTorch's magic number");
  const protocol = unpickleFrom(bytes, magic.end, name, noPersistentIds);
  if (protocol.value !== LEGACY_PROTOCOL) {
    fail(name, `legacy protocol version ${String(protocol.value)} is not ${LEGACY_PROTOCOL}`);
  }
  const sysInfo = unpickleFrom(bytes, protocol.end, name, noPersistentIds);
  if (sysInfo.value instanceof Map && sysInfo.value.get("little_endian") === false) {
    outOfRange(name, "it was written on a big-endian machine, which is not supported");
  }
  const refs = new Map<string, StorageRef>();
  const main = unpickleFrom(bytes, sysInfo.end, name, (pid) => {
    // ('storage', storage_type, root_key, location, numel, view_metadata)
    if (!isTuple(pid) || pid[0] !== "storage") {
      fail(
        name,
        "a persistent id is not a storage (whole-module pickles are not supported; save a state_dict)",
      );
    }
    if (pid.length !== 6) fail(name, "a legacy persistent id does not have 6 fields");
    if (pid[5] !== null) fail(name, "storage views of pre-1.0 files are not supported");
    return storageRef(refs, pid[1], pid[2], pid[4], name);
  });
  const keyList = unpickleFrom(bytes, main.end, name, noPersistentIds);
  if (!Array.isArray(keyList.value) || !keyList.value.every((k) => typeof k === "string")) {
    fail(name, "the storage key list is not a list of strings");
  }
  // Storages follow back to back: int64 element count, then the bytes.
  const raw = new Map<string, Uint8Array>();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = keyList.end;
  for (const key of keyList.value as string[]) {
    const ref = refs.get(key);
    if (!ref) fail(name, `storage "${key}" is listed but no tensor uses it`);
    if (at + 8 > bytes.length) fail(name, `storage "${key}" is cut off`);
    const count = dv.getBigInt64(at, true);
    if (count !== BigInt(ref.numel)) fail(name, `storage "${key}" holds ${count} elements, not ${ref.numel}`);
    const size = ref.numel * dtypeByteSize(ref.dtype)!;
    if (at + 8 + size > bytes.length) fail(name, `storage "${key}" runs past the end of the file`);
    raw.set(key, bytes.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return collectTensors(main.value, refs, name, (ref) => {
    const data = raw.get(ref.key);
    if (!data) fail(name, `storage "${ref.key}" is used but not stored`);
    return decodeTensorBytes(ref.dtype, data, ref.numel);
  });
}

function isTuple(v: unknown): v is readonly unknown[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

/** Validates a persistent id's fields; one key always maps to the same storage. */
function storageRef(
  refs: Map<string, StorageRef>,
  type: unknown,
  key: unknown,
  numel: unknown,
  name: string,
): StorageRef {
  if (!(type instanceof TorchStorageType)) fail(name, "a persistent id does not name a torch storage type");
  if (typeof key !== "string") fail(name, "a storage key is not a string");
  if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0) {
    outOfRange(name, `storage "${key}" has an invalid element count ${String(numel)}`);
  }
  const seen = refs.get(key);
  if (seen) {
    if (seen.dtype !== type.dtype || seen.numel !== numel) {
      fail(name, `storage "${key}" is named as both ${seen.numel} ${seen.dtype} and ${numel} ${type.dtype}`);
    }
    return seen;
  }
  const ref = { key, dtype: type.dtype, numel };
  refs.set(key, ref);
  return ref;
}

type TensorData = StoredTensor["data"];

/**
 * Turns the unpickled dict into tensors. Every storage a persistent id named is loaded first (as
 * torch.load does), so that the work is bounded by what the file really holds: all tensors together
 * may have at most 16x the stored elements (plus 2^20), which real files never approach (tied weights
 * repeat a storage once or twice) but which stops a few stride-0 sizes from asking for terabytes.
 */
function collectTensors(
  root: unknown,
  refs: Map<string, StorageRef>,
  name: string,
  load: (ref: StorageRef) => TensorData,
): Map<string, StoredTensor> {
  if (!(root instanceof Map)) {
    throw new TypeError(`Cannot read PyTorch checkpoint "${name}": it is not a dict of tensors`);
  }
  const storages = new Map<unknown, TensorData>();
  let stored = 0;
  for (const ref of refs.values()) {
    const data = load(ref);
    storages.set(ref, data);
    stored += data.length;
  }
  let elementsLeft = 16 * stored + 2 ** 20;
  const out = new Map<string, StoredTensor>();
  for (const [key, value] of root) {
    if (typeof key !== "string") {
      throw new TypeError(
        `Cannot read PyTorch checkpoint "${name}": a dict key is ${typeof key}, not a string`,
      );
    }
    const data = value instanceof TorchTensorRef ? storages.get(value.storage) : undefined;
    if (!data) {
      throw new TypeError(
        `Cannot read PyTorch checkpoint "${name}": entry "${key}" is not a tensor; expected a flat state_dict`,
      );
    }
    const tensor = value as TorchTensorRef;
    const ref = tensor.storage as StorageRef;
    const { offset, size, stride, numel } = checkView(tensor, key, name);
    if (numel > elementsLeft) {
      outOfRange(
        name,
        `tensor "${key}" of shape [${size}] takes the tensors past 16x the ${stored} stored elements`,
      );
    }
    elementsLeft -= numel;
    if (numel > 0 && offset + size.reduce((s, n, d) => s + (n - 1) * stride[d], 0) >= data.length) {
      outOfRange(
        name,
        `tensor "${key}" (offset ${offset}, shape [${size}], stride [${stride}]) reaches past its ` +
          `${data.length}-element storage "${ref.key}"`,
      );
    }
    out.set(key, { dtype: ref.dtype, shape: size, data: gather(data, offset, size, stride, numel) });
  }
  return out;
}

function checkView(t: TorchTensorRef, key: string, name: string) {
  const isIndex = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  const { storageOffset: offset, size, stride } = t;
  if (!isIndex(offset)) outOfRange(name, `tensor "${key}" has an invalid storage offset ${String(offset)}`);
  if (!Array.isArray(size) || size.length > MAX_DIMS || !size.every(isIndex)) {
    outOfRange(name, `tensor "${key}" has an invalid size ${String(size)}`);
  }
  if (!Array.isArray(stride) || stride.length !== size.length || !stride.every(isIndex)) {
    outOfRange(name, `tensor "${key}" has an invalid stride ${String(stride)} for size [${size}]`);
  }
  let numel = 1;
  for (const n of size) numel *= n; // exact while small; huge products fail the budget check anyway
  return { offset, size: [...size] as number[], stride: [...stride] as number[], numel };
}

type Indexable = { [i: number]: number | bigint };

/** Copies a (possibly strided) view into a new row-major array of the storage's type. */
function gather(
  src: TensorData,
  offset: number,
  size: number[],
  stride: number[],
  numel: number,
): TensorData {
  const make = src.constructor as new (n: number) => TensorData;
  let contiguous = true;
  for (let d = size.length - 1, expect = 1; d >= 0; expect *= size[d], d--) {
    if (size[d] !== 1 && stride[d] !== expect) contiguous = false;
  }
  if (contiguous || numel === 0) return src.slice(offset, offset + numel);
  const out = new make(numel) as unknown as Indexable;
  const from = src as unknown as Indexable;
  const nd = size.length;
  const inner = size[nd - 1];
  const innerStride = stride[nd - 1];
  const index = new Array<number>(nd).fill(0);
  let base = offset;
  for (let o = 0; o < numel; o += inner) {
    for (let j = 0; j < inner; j++) out[o + j] = from[base + j * innerStride];
    // Odometer over the outer dimensions.
    for (let d = nd - 2; d >= 0; d--) {
      base += stride[d];
      if (++index[d] < size[d]) break;
      base -= stride[d] * size[d];
      index[d] = 0;
    }
  }
  return out as unknown as TensorData;
}
