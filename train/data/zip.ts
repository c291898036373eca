/**
 * A small zip reader: the central directory is parsed here (so sizes and CRC-32s are known and
 * checked), members are inflated with fflate. Stored (0) and deflated (8) members; no ZIP64, no
 * encryption. Every error names the zip, and the member where one is at fault.
 * @module
 */

import { inflateSync } from "npm:fflate@0.8.3";

/** One entry of a zip's central directory. */
export interface ZipMember {
  /** Path inside the zip, `/`-separated; folders end in `/`. */
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  /** CRC-32 of the uncompressed bytes. */
  crc32: number;
  compressedSize: number;
  size: number;
  /** Offset of the member's local header. */
  localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;

function corrupt(zipName: string, why: string): never {
  throw new SyntaxError(
    `Cannot read zip "${zipName}": ${why}; the file is corrupt or not a zip, fetch it again`,
  );
}

/**
 * Lists a zip's members from its central directory.
 * @throws {SyntaxError} when the bytes are not a readable zip, naming `zipName`.
 * @example
 * ```ts
 * import { listZipMembers } from "./zip.ts";
 * const zip = Deno.readFileSync(new URL("../../../shared/data/cola_public_1.1.zip", import.meta.url));
 * listZipMembers(zip, "cola_public_1.1.zip").some((m) => m.name === "cola_public/README"); // true
 * ```
 */
export function listZipMembers(bytes: Uint8Array, zipName = "<bytes>"): ZipMember[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end-of-central-directory record sits in the last 22 + (comment <= 65535) bytes.
  let eocd = -1;
  for (let i = bytes.length - EOCD_SIZE; i >= Math.max(0, bytes.length - EOCD_SIZE - 0xffff); i--) {
    if (dv.getUint32(i, true) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) corrupt(zipName, `no end-of-central-directory record in ${bytes.length} bytes`);
  const count = dv.getUint16(eocd + 10, true);
  const dirSize = dv.getUint32(eocd + 12, true);
  const dirOffset = dv.getUint32(eocd + 16, true);
  if (count === 0xffff || dirOffset === 0xffffffff) corrupt(zipName, "ZIP64 archives are not supported");
  if (dirOffset + dirSize > eocd) {
    corrupt(zipName, `central directory [${dirOffset}, ${dirOffset + dirSize}) overlaps its end record`);
  }
  const members: ZipMember[] = [];
  let p = dirOffset;
  for (let k = 0; k < count; k++) {
    if (p + 46 > eocd || dv.getUint32(p, true) !== CENTRAL_SIGNATURE) {
      corrupt(zipName, `central directory entry ${k} at offset ${p} is malformed`);
    }
    const nameLength = dv.getUint16(p + 28, true);
    const extraLength = dv.getUint16(p + 30, true);
    const commentLength = dv.getUint16(p + 32, true);
    if (p + 46 + nameLength > eocd) corrupt(zipName, `central directory entry ${k} runs past its end`);
    // Names are UTF-8 (flag bit 11) or CP437; ASCII, the common case, reads the same either way.
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength));
    if (dv.getUint16(p + 8, true) & 1) {
      corrupt(zipName, `member "${name}" is encrypted, which is not supported`);
    }
    members.push({
      name,
      method: dv.getUint16(p + 10, true),
      crc32: dv.getUint32(p + 16, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localHeaderOffset: dv.getUint32(p + 42, true),
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return members;
}

/**
 * Extracts one member's bytes, checking its size and CRC-32.
 * @throws {Deno.errors.NotFound} when the zip has no such member (the message names both).
 * @throws {SyntaxError} when the zip or the member's data is corrupt.
 * @example
 * ```ts
 * import { readZipMember } from "./zip.ts";
 * const zip = Deno.readFileSync(new URL("../../../shared/data/cola_public_1.1.zip", import.meta.url));
 * readZipMember(zip, "cola_public/README", "cola_public_1.1.zip").length; // 6570
 * ```
 */
export function readZipMember(bytes: Uint8Array, member: string, zipName = "<bytes>"): Uint8Array {
  const members = listZipMembers(bytes, zipName);
  const entry = members.find((m) => m.name === member);
  if (!entry) {
    const files = members.filter((m) => !m.name.endsWith("/")).map((m) => m.name);
    const shown = files.slice(0, 10).join(", ") + (files.length > 10 ? `, ... (${files.length} files)` : "");
    throw new Deno.errors.NotFound(
      `Zip "${zipName}" has no member "${member}"; it holds: ${
        shown || "nothing"
      }. Check that it is the right file`,
    );
  }
  const where = `member "${member}"`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = entry.localHeaderOffset;
  if (h + 30 > bytes.length || dv.getUint32(h, true) !== LOCAL_SIGNATURE) {
    corrupt(zipName, `${where} has no local header at offset ${h}`);
  }
  const start = h + 30 + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.length) {
    corrupt(zipName, `${where} data [${start}, ${end}) runs past the end (${bytes.length})`);
  }
  const raw = bytes.subarray(start, end);
  let data: Uint8Array;
  if (entry.method === 0) {
    data = raw.slice();
  } else if (entry.method === 8) {
    try {
      data = inflateSync(raw, { out: new Uint8Array(entry.size) });
    } catch (error) {
      corrupt(zipName, `${where} does not inflate (${(error as Error).message})`);
    }
  } else {
    throw new RangeError(
      `Cannot read zip "${zipName}": ${where} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported, re-zip it with deflate`,
    );
  }
  if (data.length !== entry.size) {
    corrupt(zipName, `${where} inflates to ${data.length} bytes, expected ${entry.size}`);
  }
  const crc = crc32(data);
  if (crc !== entry.crc32) {
    corrupt(zipName, `${where} has CRC-32 ${hex(crc)}, expected ${hex(entry.crc32)}`);
  }
  return data;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

let crcTable: Uint32Array | null = null;

/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) as zip stores it, unsigned.
 * @example
 * ```ts
 * import { crc32 } from "./zip.ts";
 * crc32(new TextEncoder().encode("123456789")); // 0xcbf43926
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
