import assert from "node:assert/strict";
import { zipSync } from "npm:fflate@0.8.3";
import { parseTorchBin, readTorchBin } from "./torch_bin.ts";
import { extractZipEntry, readZipDirectory } from "./_zip.ts";
import { readSafetensors, type StoredTensor } from "./safetensors.ts";
import { fuzzParser } from "../tests/fuzz.ts";

const FIXTURES = new URL("../tests/fixtures/checkpoints/", import.meta.url);
const fixturePath = (name: string) => new URL(name, FIXTURES).pathname;
const fixture = (name: string) => Deno.readFileSync(new URL(name, FIXTURES));

/** The error `fn` throws, checked to be an instance of `cls` and to mention every string in `parts`. */
function caught<E extends Error>(fn: () => unknown, cls: new (...args: never[]) => E, ...parts: string[]): E {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof cls, `expected ${cls.name}, got ${error}`);
  for (const p of parts) assert.ok(error.message.includes(p), `"${p}" not in: ${error.message}`);
  return error;
}

/** Asserts `got` holds exactly the twin's tensors: names in order, stored dtypes, shapes, bit-equal values. */
async function assertMatchesTwin(got: Map<string, StoredTensor>, twinFile: string): Promise<void> {
  const twin = await readSafetensors(fixturePath(twinFile));
  const dtypes: Record<string, string> = JSON.parse(twin.metadata.dtypes);
  assert.deepEqual([...got.keys()], [...twin.tensors.keys()]);
  for (const [name, want] of twin.tensors) {
    const t = got.get(name)!;
    assert.equal(t.dtype, dtypes[name], name);
    assert.deepEqual(t.shape, want.shape, name);
    // F16/BF16 widen to Float32Array, U8/BOOL stay Uint8Array; the twin holds them as F32 / I32.
    const expected = ["U8", "BOOL"].includes(t.dtype) ? Uint8Array.from(want.data as Int32Array) : want.data;
    assert.deepStrictEqual(t.data, expected, name);
  }
}

for (
  const file of [
    "tensors.bin",
    "tensors_p4.bin",
    "tensors_p5.bin",
    "tensors_legacy.bin",
    "tensors_deflate.bin",
  ]
) {
  Deno.test(`parseTorchBin() returns exactly what torch wrote to ${file}: every dtype, view, shared storage`, async () => {
    await assertMatchesTwin(parseTorchBin(fixture(file), file), "tensors.safetensors");
  });
}

Deno.test("parseTorchBin() reads a tiny BERT state_dict (OrderedDict with _metadata) under Hugging Face names", async () => {
  const got = parseTorchBin(fixture("bert_tiny.bin"), "bert_tiny.bin");
  assert.ok(got.has("bert.encoder.layer.0.attention.self.query.weight"));
  assert.equal(got.get("bert.embeddings.position_ids")!.data.constructor, BigInt64Array);
  await assertMatchesTwin(got, "bert_tiny.safetensors");
});

Deno.test("parseTorchBin() gives tensors that share a storage their own copies", () => {
  const got = parseTorchBin(fixture("tensors.bin"), "tensors.bin");
  const base = got.get("base")!.data as Float32Array;
  const row = got.get("row")!.data as Float32Array;
  const tiedA = got.get("tied_a")!.data as Float32Array;
  const tiedB = got.get("tied_b")!.data as Float32Array;
  assert.equal(row[0], base[18]);
  assert.deepStrictEqual(tiedA, tiedB);
  row[0] += 1;
  tiedA[0] += 1;
  assert.notEqual(row[0], base[18]);
  assert.notEqual(tiedA[0], tiedB[0]);
});

Deno.test("readTorchBin() reads a file and names its path in errors", async () => {
  assert.equal((await readTorchBin(fixturePath("bert_tiny.bin"))).size, 12);
  const path = fixturePath("bert_tiny.safetensors");
  await assert.rejects(
    () => readTorchBin(path),
    (e: Error) => e instanceof SyntaxError && e.message.includes(path),
  );
});

// ---- hand-made archives ----

const enc = (s: string) => new TextEncoder().encode(s);

/** A little-endian int64 as LONG1 (fits every size, offset and count a test needs). */
function long(n: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
  return [0x8a, 8, ...b];
}
const str = (s: string) => [0x58, ...new Uint8Array(new Uint32Array([enc(s).length]).buffer), ...enc(s)];
const tuple = (items: number[][]) => [0x28, ...items.flat(), 0x74];

interface View {
  name: string;
  storage?: string;
  key?: string;
  numel: number;
  offset?: number;
  size: number[];
  stride: number[];
}

/** A protocol 2 pickle of OrderedDict{name: _rebuild_tensor_v2(storage pid, offset, size, stride, False, {})}. */
function statePickle(views: View[]): Uint8Array {
  const out = [0x80, 2, ...enc("ccollections\nOrderedDict\n"), 0x29, 0x52, 0x28];
  for (const v of views) {
    const pid = tuple([
      str("storage"),
      [...enc(`ctorch\n${v.storage ?? "FloatStorage"}\n`)],
      str(v.key ?? "0"),
      str("cpu"),
      long(v.numel),
    ]);
    const args = tuple([
      [...pid, 0x51],
      long(v.offset ?? 0),
      tuple(v.size.map(long)),
      tuple(v.stride.map(long)),
      [0x89],
      [...enc("ccollections\nOrderedDict\n"), 0x29, 0x52],
    ]);
    out.push(...str(v.name), ...enc("ctorch._utils\n_rebuild_tensor_v2\n"), ...args, 0x52);
  }
  out.push(0x75, 0x2e);
  return new Uint8Array(out);
}

/** A torch-style zip; level 0 writes STORED records as torch does, level 9 DEFLATE. */
function archive(records: Record<string, Uint8Array>, level: 0 | 9 = 0): Uint8Array {
  return zipSync(
    Object.fromEntries(Object.entries(records).map(([k, v]) => [`archive/${k}`, [v, { level }]])),
  );
}

const floats = (n: number) => new Uint8Array(Float32Array.from({ length: n }, (_, i) => i * 0.5).buffer);

Deno.test("parseTorchBin() reads a hand-made archive of a strided view (checks the test's own pickler)", () => {
  const bytes = archive({
    "data.pkl": statePickle([{ name: "w", numel: 12, offset: 1, size: [2, 3], stride: [1, 4] }]),
    "data/0": floats(12),
  });
  const w = parseTorchBin(bytes, "hand.bin").get("w")!;
  assert.deepEqual(w.shape, [2, 3]);
  // element [i][j] = storage[1 + i + 4j] = (1 + i + 4j) / 2
  assert.deepStrictEqual(w.data, Float32Array.from([0.5, 2.5, 4.5, 1, 3, 5]));
});

Deno.test("parseTorchBin() stops a compression bomb at maxInflatedBytes", () => {
  const numel = 1024 * 1024; // 4 MiB of zeros deflate to ~4 KiB
  const bomb = archive({
    "data.pkl": statePickle([{ name: "w", numel, size: [numel], stride: [1] }]),
    "data/0": new Uint8Array(numel * 4),
  }, 9);
  assert.ok(bomb.length < 64 * 1024);
  caught(
    () => parseTorchBin(bomb, "bomb.bin", { maxInflatedBytes: 1 << 20 }),
    RangeError,
    '"bomb.bin"',
    "budget",
  );
  // Within budget the same archive is valid: the refusal above is the budget, not a broken file.
  assert.equal(parseTorchBin(bomb, "bomb.bin").get("w")!.data.length, numel);
});

/** Rewrites a record's uncompressed size in both its local header and the central directory. */
function withDeclaredSize(bytes: Uint8Array, record: string, size: number): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  const entry = readZipDirectory(out, "x").get(record)!;
  dv.setUint32(entry.localHeaderOffset + 22, size, true);
  for (let p = 0; p + 46 < out.length; p++) {
    if (dv.getUint32(p, true) === 0x02014b50 && dv.getUint32(p + 42, true) === entry.localHeaderOffset) {
      dv.setUint32(p + 24, size, true);
    }
  }
  return out;
}

Deno.test("parseTorchBin() rejects a record that inflates past its declared size", () => {
  const numel = 1024 * 1024; // 4 MiB of zeros
  const bomb = archive({
    "data.pkl": statePickle([{ name: "w", numel: 16, size: [16], stride: [1] }]),
    "data/0": new Uint8Array(numel * 4),
  }, 9);
  const lying = withDeclaredSize(bomb, "archive/data/0", 64);
  caught(
    () => parseTorchBin(lying, "lying.bin"),
    SyntaxError,
    '"lying.bin"',
    "inflates past its declared 64 bytes",
  );
});

Deno.test("parseTorchBin() detects corrupted storage bytes by their CRC-32", () => {
  const bytes = fixture("tensors.bin");
  const entry = readZipDirectory(bytes, "tensors.bin").get("tensors/data/0")!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const dataStart = entry.localHeaderOffset + 30 + dv.getUint16(entry.localHeaderOffset + 26, true) +
    dv.getUint16(entry.localHeaderOffset + 28, true);
  bytes[dataStart + 5] ^= 0x10;
  caught(
    () => parseTorchBin(bytes, "flipped.bin"),
    SyntaxError,
    '"flipped.bin"',
    '"tensors/data/0"',
    "CRC-32",
  );
});

Deno.test("parseTorchBin() names a storage record that is missing or the wrong size", () => {
  const pkl = statePickle([{ name: "w", numel: 4, size: [4], stride: [1] }]);
  caught(
    () => parseTorchBin(archive({ "data.pkl": pkl }), "m.bin"),
    SyntaxError,
    '"m.bin"',
    '"archive/data/0" is missing',
  );
  caught(
    () => parseTorchBin(archive({ "data.pkl": pkl, "data/0": floats(3) }), "m.bin"),
    SyntaxError,
    '"m.bin"',
    "12 bytes, but 4 F32 need 16",
  );
});

Deno.test("parseTorchBin() rejects views outside their storage and expansions past the element budget", () => {
  const load = (view: Partial<View>) =>
    parseTorchBin(
      archive({
        "data.pkl": statePickle([{ name: "w", numel: 6, size: [6], stride: [1], ...view }]),
        "data/0": floats(6),
      }),
      "v.bin",
    );
  caught(() => load({ size: [7] }), RangeError, '"v.bin"', 'tensor "w"', "reaches past");
  caught(() => load({ offset: 4, size: [2, 2], stride: [1, 1] }), RangeError, "reaches past");
  caught(() => load({ size: [2, 3], stride: [3] }), RangeError, "invalid stride");
  caught(() => load({ offset: -1 }), RangeError, "invalid storage offset");
  caught(() => load({ size: [1 << 20, 1 << 20], stride: [0, 0] }), RangeError, "16x the 6 stored elements");
  // Stride 0 (an expand) within budget is fine.
  assert.deepStrictEqual(
    load({ size: [2, 3], stride: [0, 2], offset: 1 }).get("w")!.data,
    Float32Array.from([0.5, 1.5, 2.5, 0.5, 1.5, 2.5]),
  );
});

Deno.test("parseTorchBin() refuses a data.pkl that names os.system, and non-tensor entries", () => {
  const evil = new Uint8Array([...enc("cos\nsystem\n(S'touch /tmp/x'\ntR.")]);
  caught(
    () => parseTorchBin(archive({ "data.pkl": evil }), "evil.bin"),
    SyntaxError,
    '"evil.bin"',
    'refusing global "os.system"',
  );
  const epoch = new Uint8Array([0x80, 2, 0x7d, ...str("epoch"), 0x4b, 3, 0x73, 0x2e]); // {"epoch": 3}
  caught(
    () => parseTorchBin(archive({ "data.pkl": epoch }), "e.bin"),
    TypeError,
    '"e.bin"',
    'entry "epoch" is not a tensor',
  );
});

Deno.test("parseTorchBin() rejects files that are not state_dict checkpoints, naming them", () => {
  caught(() => parseTorchBin(new Uint8Array(), "empty.bin"), SyntaxError, '"empty.bin"');
  caught(() => parseTorchBin(fixture("tensors.safetensors"), "st.bin"), SyntaxError, '"st.bin"', "neither");
  const script = archive({
    "data.pkl": statePickle([]),
    "constants.pkl": new Uint8Array([0x80, 2, 0x29, 0x2e]),
  });
  caught(() => parseTorchBin(script, "jit.bin"), SyntaxError, '"jit.bin"', "TorchScript");
  const zipOnly = zipSync({ "readme.txt": enc("hi") });
  caught(() => parseTorchBin(zipOnly, "other.zip"), SyntaxError, '"other.zip"', "data.pkl");
});

Deno.test("parseTorchBin() survives mutated checkpoints: it parses them or throws an error naming the file", () => {
  const seeds = ["tensors.bin", "bert_tiny.bin", "tensors_legacy.bin", "tensors_deflate.bin"].map(fixture);
  const report = fuzzParser("pytorch_model.bin", seeds, (bytes, name) => parseTorchBin(bytes, name), {
    cases: 3000,
    seed: 5,
    timeLimitMs: 250,
  });
  assert.equal(report.cases, 3000);
  assert.ok(report.parsed > 0 && report.parsed < report.cases, JSON.stringify(report));
});

Deno.test("parseTorchBin() survives a mutated data.pkl inside an otherwise valid archive", () => {
  // Re-zipping each mutation gives it valid CRCs, so the tensor-building code sees every mutated pickle.
  const bytes = fixture("tensors.bin");
  const entries = readZipDirectory(bytes, "tensors.bin");
  const records: Record<string, Uint8Array> = {};
  for (const [name, entry] of entries) {
    records[name.slice("tensors/".length)] = extractZipEntry(bytes, entry, "tensors.bin", {
      inflateBytesLeft: 0,
    });
  }
  const report = fuzzParser("data.pkl", [records["data.pkl"]], (pkl, name) => {
    return parseTorchBin(archive({ ...records, "data.pkl": pkl }), name);
  }, { cases: 1500, seed: 9, timeLimitMs: 250 });
  assert.equal(report.cases, 1500);
  assert.ok(report.parsed > 0 && report.parsed < report.cases, JSON.stringify(report));
});

Deno.test("parseTorchBin() rejects zip records that overlap (the overlapping-entries zip bomb)", () => {
  const pkl = statePickle([{ name: "a", numel: 4, size: [4], stride: [1] }, {
    name: "b",
    key: "1",
    numel: 4,
    size: [4],
    stride: [1],
  }]);
  const bytes = archive({ "data.pkl": pkl, "data/0": floats(4), "data/1": floats(4) });
  assert.equal(parseTorchBin(bytes, "ok.bin").size, 2);
  // Point data/1's directory entry at data/0's local header.
  const entries = readZipDirectory(bytes, "ok.bin");
  const first = entries.get("archive/data/0")!.localHeaderOffset;
  const second = entries.get("archive/data/1")!.localHeaderOffset;
  const dv = new DataView(bytes.buffer);
  for (let p = 0; p + 46 < bytes.length; p++) {
    if (dv.getUint32(p, true) === 0x02014b50 && dv.getUint32(p + 42, true) === second) {
      dv.setUint32(p + 42, first, true);
    }
  }
  caught(() => parseTorchBin(bytes, "overlap.bin"), SyntaxError, '"overlap.bin"', "overlap");
});
