/**
 * The project's one ZIP reader, for checkpoint archives (PyTorch's `pytorch_model.bin` is a ZIP of
 * STORED records) and data archives (the CoLA zip, DEFLATE). It reads the central directory (ZIP64 included), checks every offset and size before use,
 * extracts STORED and DEFLATE records only, verifies each record's CRC-32, and inflates through
 * fflate's streaming decoder so that no record can inflate past its declared size or a total budget
 * (compression bombs stop after at most one 16 KiB input chunk's worth of output). Every error names
 * the archive, and the record when one is at fault; a missing record names what the archive holds.
 * @module
 */

import { Inflate } from "npm:fflate@0.8.3";

/** One record of the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 = STORED, 8 = DEFLATE (others are refused when listed). */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the record's local header. */
  localHeaderOffset: number;
  /** Offset of the record's (compressed) data, after its local header. */
  dataOffset: number;
}

/** Options for {@linkcode extractZipEntry}. */
export interface ZipBudget {
  /** Bytes that DEFLATE records may still inflate to; decremented by each extraction. */
  inflateBytesLeft: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** Input fed to the inflater per push: bounds the output one push can make to ~16 MiB. */
const INFLATE_CHUNK = 16 * 1024;

function fail(name: string, why: string): never {
  throw new SyntaxError(
    `Cannot read zip archive "${name}": ${why} (corrupt, truncated or not a zip: fetch it again)`,
  );
}

/** What one archive may inflate to by default in {@linkcode readZipMember}: 1 GiB. */
export const DEFAULT_MAX_INFLATED_BYTES = 2 ** 30;

/**
 * Reads one record by name: the directory is checked as in {@linkcode readZipDirectory}, the record
 * as in {@linkcode extractZipEntry} (size, CRC-32, inflation bounded by `maxInflatedBytes`). The
 * result is a copy, safe to mutate.
 * @throws {Deno.errors.NotFound} when the archive has no such record, naming the archive, the record
 *   and the files it does hold.
 * @throws {SyntaxError} for a corrupt archive or record; {@linkcode RangeError} past the budget.
 * @example
 * ```ts
 * import { zipSync } from "npm:fflate@0.8.3";
 * import { readZipMember } from "./_zip.ts";
 * const zip = zipSync({ "data/a.txt": new TextEncoder().encode("hello") });
 * new TextDecoder().decode(readZipMember(zip, "data/a.txt", "a.zip")); // "hello"
 * ```
 */
export function readZipMember(
  bytes: Uint8Array,
  member: string,
  name: string,
  maxInflatedBytes: number = DEFAULT_MAX_INFLATED_BYTES,
): Uint8Array {
  const entries = readZipDirectory(bytes, name);
  const entry = entries.get(member);
  if (!entry) {
    const files = [...entries.keys()].filter((n) => !n.endsWith("/"));
    const shown = files.slice(0, 10).join(", ") + (files.length > 10 ? `, ... (${files.length} files)` : "");
    throw new Deno.errors.NotFound(
      `Zip archive "${name}" has no record "${member}"; it holds: ${
        shown || "nothing"
      }. Check that it is the right file`,
    );
  }
  return extractZipEntry(bytes, entry, name, { inflateBytesLeft: maxInflatedBytes }).slice();
}

/** True when the bytes start like a ZIP local header ("PK\x03\x04"). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4;
}

/**
 * Lists a ZIP archive's records by name (from the central directory, so sizes are known even when a
 * writer used data descriptors).
 * @throws {SyntaxError} for a missing or inconsistent directory, encryption, multi-disk archives.
 */
export function readZipDirectory(bytes: Uint8Array, name: string): Map<string, ZipEntry> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  // The end-of-central-directory record is 22 bytes plus a comment of at most 65535 bytes.
  let eocd = -1;
  for (let p = len - 22; p >= 0 && p >= len - 22 - 65535; p--) {
    if (dv.getUint32(p, true) === EOCD && p + 22 + dv.getUint16(p + 20, true) === len) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail(name, "no end-of-central-directory record (not a zip file, or truncated)");
  if (dv.getUint16(eocd + 4, true) !== 0 || dv.getUint16(eocd + 6, true) !== 0) {
    fail(name, "multi-disk archives are not supported");
  }
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  let cdLimit = eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || dv.getUint32(loc, true) !== ZIP64_LOCATOR) {
      fail(name, "the directory needs ZIP64 fields but the ZIP64 locator is missing");
    }
    const z = safeU64(dv, loc + 8, name, "ZIP64 record offset");
    if (z + 56 > loc || dv.getUint32(z, true) !== ZIP64_EOCD) fail(name, "the ZIP64 record is missing");
    count = safeU64(dv, z + 32, name, "entry count");
    cdSize = safeU64(dv, z + 40, name, "directory size");
    cdOffset = safeU64(dv, z + 48, name, "directory offset");
    cdLimit = z;
  }
  if (cdOffset + cdSize > cdLimit) {
    fail(name, `central directory [${cdOffset}, ${cdOffset + cdSize}) runs past its end record`);
  }
  if (count * 46 > cdSize) fail(name, `${count} entries cannot fit a ${cdSize}-byte directory`);
  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder();
  let p = cdOffset;
  const end = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > end || dv.getUint32(p, true) !== CENTRAL) fail(name, `directory entry ${i} is malformed`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > end) fail(name, `directory entry ${i} runs past the directory`);
    const entryName = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    if (flags & 1) fail(name, `entry "${entryName}" is encrypted`);
    const entry: ZipEntry = {
      name: entryName,
      method,
      crc32: dv.getUint32(p + 16, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localHeaderOffset: dv.getUint32(p + 42, true),
      dataOffset: 0,
    };
    readZip64Extra(dv, p + 46 + nameLen, extraLen, entry, name);
    if (entries.has(entryName)) fail(name, `entry "${entryName}" appears twice`);
    entries.set(entryName, entry);
    p = next;
  }
  locateData(dv, entries, cdOffset, name);
  return entries;
}

/**
 * Finds each record's data from its local header and checks that records lie before the directory
 * and do not overlap: overlapping records would let a small file make every record re-read (and
 * re-inflate) the same bytes, the "overlapping zip bomb".
 */
function locateData(dv: DataView, entries: Map<string, ZipEntry>, cdOffset: number, name: string): void {
  const sorted = [...entries.values()].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  let previousEnd = 0;
  let previous = "";
  for (const e of sorted) {
    const at = e.localHeaderOffset;
    if (at + 30 > cdOffset || dv.getUint32(at, true) !== LOCAL) {
      fail(name, `entry "${e.name}" has no local header`);
    }
    e.dataOffset = at + 30 + dv.getUint16(at + 26, true) + dv.getUint16(at + 28, true);
    const end = e.dataOffset + e.compressedSize;
    if (end > cdOffset) {
      fail(name, `entry "${e.name}" data [${e.dataOffset}, ${end}) runs into the directory`);
    }
    if (at < previousEnd) fail(name, `entries "${previous}" and "${e.name}" overlap`);
    previousEnd = end;
    previous = e.name;
  }
}

/** Replaces saturated 32-bit fields by the ZIP64 extra field's 64-bit values (in their fixed order). */
function readZip64Extra(dv: DataView, start: number, len: number, e: ZipEntry, name: string): void {
  const needed = [e.size === 0xffffffff, e.compressedSize === 0xffffffff, e.localHeaderOffset === 0xffffffff];
  if (!needed.some(Boolean)) return;
  for (let p = start; p + 4 <= start + len;) {
    const id = dv.getUint16(p, true);
    const size = dv.getUint16(p + 2, true);
    if (p + 4 + size > start + len) break;
    if (id === 1) {
      let q = p + 4;
      const take = (what: string): number => {
        if (q + 8 > p + 4 + size) fail(name, `entry "${e.name}" has a short ZIP64 field`);
        const v = safeU64(dv, q, name, what);
        q += 8;
        return v;
      };
      if (needed[0]) e.size = take("size");
      if (needed[1]) e.compressedSize = take("compressed size");
      if (needed[2]) e.localHeaderOffset = take("offset");
      return;
    }
    p += 4 + size;
  }
  fail(name, `entry "${e.name}" needs a ZIP64 extra field but has none`);
}

function safeU64(dv: DataView, at: number, name: string, what: string): number {
  if (at + 8 > dv.byteLength) fail(name, `${what} runs past the end of the file`);
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(name, `${what} ${v} is too large`);
  return Number(v);
}

/**
 * A record's bytes; `entry` must come from {@linkcode readZipDirectory} on the same bytes. STORED
 * records are returned as a view into `bytes` (copy before mutating); DEFLATE records inflate into a
 * new array, never past the declared size nor `budget`.
 * @throws {SyntaxError} for corrupt DEFLATE data or a CRC mismatch.
 * @throws {RangeError} when a record would inflate past the budget.
 */
export function extractZipEntry(
  bytes: Uint8Array,
  entry: ZipEntry,
  name: string,
  budget: ZipBudget,
): Uint8Array {
  const where = `entry "${entry.name}"`;
  const start = entry.dataOffset;
  const stop = start + entry.compressedSize;
  if (start < 30 || stop > bytes.length) fail(name, `${where} data [${start}, ${stop}) is outside the file`);
  const packed = bytes.subarray(start, stop);
  let out: Uint8Array;
  if (entry.method === 0) {
    if (entry.size !== entry.compressedSize) {
      fail(name, `${where} is STORED but its sizes differ (${entry.compressedSize} vs ${entry.size})`);
    }
    out = packed;
  } else if (entry.method === 8) {
    if (entry.size > budget.inflateBytesLeft) {
      throw new RangeError(
        `Cannot read zip archive "${name}": ${where} inflates to ${entry.size} bytes, more than the ` +
          `${budget.inflateBytesLeft} bytes left in the decompression budget (raise maxInflatedBytes if genuine)`,
      );
    }
    out = inflateBounded(packed, entry.size, name, where);
    budget.inflateBytesLeft -= entry.size;
  } else {
    fail(
      name,
      `${where} uses compression method ${entry.method}; only STORED (0) and DEFLATE (8) are supported`,
    );
  }
  const crc = crc32(out);
  if (crc !== entry.crc32) {
    fail(name, `${where} is corrupt: CRC-32 ${hex(crc)} does not match the recorded ${hex(entry.crc32)}`);
  }
  return out;
}

function inflateBounded(packed: Uint8Array, size: number, name: string, where: string): Uint8Array {
  const out = new Uint8Array(size);
  let filled = 0;
  const inflater = new Inflate((chunk: Uint8Array) => {
    if (filled + chunk.length > size) fail(name, `${where} inflates past its declared ${size} bytes`);
    out.set(chunk, filled);
    filled += chunk.length;
  });
  try {
    if (packed.length === 0) inflater.push(new Uint8Array(0), true);
    for (let p = 0; p < packed.length; p += INFLATE_CHUNK) {
      if (filled === size && p > 0) {
        // The output is complete, so what is left can only be the stream's end-of-block code and
        // padding. Pushing it all at once keeps a long tail from being re-buffered chunk by chunk.
        const tail = packed.length - p;
        if (tail > 64) fail(name, `${where} has ${tail} compressed bytes left after its ${size} bytes`);
        inflater.push(packed.subarray(p), true);
        break;
      }
      const before = filled;
      const last = p + INFLATE_CHUNK >= packed.length;
      inflater.push(packed.subarray(p, p + INFLATE_CHUNK), last);
      // A full chunk of real DEFLATE data always yields output; none means the stream has ended
      // early (and fflate would keep re-buffering the rest), so stop here.
      if (!last && filled === before) fail(name, `${where} DEFLATE stream stops before its declared size`);
    }
  } catch (e) {
    if (e instanceof SyntaxError) throw e;
    fail(name, `${where} has corrupt DEFLATE data (${(e as Error).message})`);
  }
  if (filled !== size) fail(name, `${where} inflates to ${filled} bytes, not its declared ${size}`);
  return out;
}

/** CRC-32 lookup tables for slicing-by-4: T[k][b] is the CRC of byte b followed by k zero bytes. */
const CRC_TABLES = (() => {
  const t = new Uint32Array(4 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 4; k++) {
      t[k * 256 + n] = (t[(k - 1) * 256 + n] >>> 8) ^ t[t[(k - 1) * 256 + n] & 0xff];
    }
  }
  return t;
})();

/** CRC-32 (IEEE, as ZIP uses), four bytes per step. */
export function crc32(bytes: Uint8Array): number {
  const t = CRC_TABLES;
  let c = 0xffffffff;
  let i = 0;
  for (const end = bytes.length - 3; i < end; i += 4) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = t[768 + (c & 0xff)] ^ t[512 + ((c >>> 8) & 0xff)] ^ t[256 + ((c >>> 16) & 0xff)] ^ t[c >>> 24];
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function hex(v: number): string {
  return "0x" + v.toString(16).padStart(8, "0");
}
