import assert from "node:assert/strict";
import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
import { fuzzParser } from "../tests/fuzz.ts";

const FIXTURES = new URL("../tests/fixtures/checkpoints/", import.meta.url);
const fixture = (name: string) => Deno.readFileSync(new URL(name, FIXTURES));

/** A safetensors file with the given JSON header and `dataBytes` zero bytes of data. */
function withHeader(header: unknown, dataBytes = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function rejects(bytes: Uint8Array, ...parts: string[]): void {
  assert.throws(() => parseSafetensors(bytes, "bad.safetensors"), (e: Error) => {
    assert.ok(e instanceof SyntaxError, String(e));
    for (const p of ['"bad.safetensors"', ...parts]) {
      assert.ok(e.message.includes(p), `"${p}" not in: ${e.message}`);
    }
    return true;
  });
}

Deno.test("parseSafetensors() round-trips serializeSafetensors() output", () => {
  const tensors: [string, { shape: number[]; data: Float32Array | Int32Array | BigInt64Array }][] = [
    ["w", { shape: [2, 3], data: Float32Array.from([1.5, -2, 3, 0, 1e-8, -0]) }],
    ["ids", { shape: [2], data: BigInt64Array.from([-1n, 2n ** 62n]) }],
    ["n", { shape: [], data: Int32Array.from([-7]) }],
  ];
  const file = parseSafetensors(serializeSafetensors(tensors, { note: "x" }), "rt.safetensors");
  assert.deepEqual(file.metadata, { note: "x" });
  for (const [name, t] of tensors) {
    assert.deepEqual(file.tensors.get(name)!.shape, t.shape);
    assert.deepStrictEqual(file.tensors.get(name)!.data, t.data);
  }
});

Deno.test("parseSafetensors() rejects dtypes that are only inherited object keys", () => {
  // "constructor" is `in` every object; the dtype table must not accept it.
  rejects(
    withHeader({ w: { dtype: "constructor", shape: [1], data_offsets: [0, 4] } }, 4),
    "unsupported dtype",
  );
  rejects(withHeader({ w: { dtype: "toString", shape: [1], data_offsets: [0, 4] } }, 4), "unsupported dtype");
});

Deno.test("parseSafetensors() tells an oversized header from a truncated file", () => {
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 200_000_000n, true);
  rejects(huge, "exceeds the 100000000-byte limit");
  const cut = withHeader({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, 4).subarray(0, 12);
  rejects(cut, "runs past the end");
});

Deno.test("parseSafetensors() rejects bad offsets, shapes and overlaps, naming the file", () => {
  rejects(withHeader({ w: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, 8), "needs 8");
  rejects(withHeader({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4), "invalid shape");
  rejects(
    withHeader({ w: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 4),
    "outside the 4 data bytes",
  );
  rejects(
    withHeader({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    }, 8),
    "overlap",
  );
});

Deno.test("parseSafetensors() survives mutated files: it parses them or throws an error naming the file", () => {
  const seeds = [fixture("tensors.safetensors"), fixture("bert_tiny.safetensors")];
  const report = fuzzParser("model.safetensors", seeds, parseSafetensors, {
    cases: 3000,
    seed: 3,
    timeLimitMs: 200,
  });
  assert.equal(report.cases, 3000);
  assert.ok(report.parsed > 0 && report.parsed < report.cases, JSON.stringify(report));
});
