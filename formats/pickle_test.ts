import assert from "node:assert/strict";
import { TorchStorageType, TorchTensorRef, unpickle, unpickleFrom } from "./pickle.ts";
import { extractZipEntry, readZipDirectory } from "./_zip.ts";
import { readSafetensors } from "./safetensors.ts";
import { fuzzParser } from "../tests/fuzz.ts";

const FIXTURES = new URL("../tests/fixtures/checkpoints/", import.meta.url);
const fixture = (name: string) => Deno.readFileSync(new URL(name, FIXTURES));
const keepPid = (pid: unknown) => pid;

/** The error `fn` throws, checked to be an instance of `cls`. */
function caught<E extends Error>(fn: () => unknown, cls: new (...args: never[]) => E, label = ""): E {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, `${label}: expected ${cls.name}, got ${e}`);
    return e;
  }
  throw new assert.AssertionError({ message: `${label}: expected ${cls.name}, nothing was thrown` });
}

/** The one `<prefix>/data.pkl` record of a torch.save zip. */
function dataPkl(file: string): Uint8Array {
  const bytes = fixture(file);
  const entries = readZipDirectory(bytes, file);
  const key = [...entries.keys()].find((k) => k.endsWith("/data.pkl"))!;
  return extractZipEntry(bytes, entries.get(key)!, file, { inflateBytesLeft: 0 }).slice();
}

/** A value with tuples, lists and dicts made explicit, so deepStrictEqual can tell them apart. */
function shapeOf(v: unknown): unknown {
  if (Array.isArray(v)) return Object.isFrozen(v) ? { tuple: v.map(shapeOf) } : { list: v.map(shapeOf) };
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [shapeOf(k), shapeOf(x)]) };
  return v;
}

/**
 * The same form from the oracle's tagged JSON (tests/torch/fixtures_checkpoints.py): ints become
 * numbers, or bigints beyond 2^53, and floats numbers, as unpickle() maps them.
 */
function fromOracle(e: unknown): unknown {
  if (e === null || typeof e !== "object") return e;
  const [[tag, x]] = Object.entries(e as Record<string, unknown>);
  switch (tag) {
    case "int": {
      const big = BigInt(x as string);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(big)
        : big;
    }
    case "float":
      return Number(x);
    case "bytes":
      return new Uint8Array(x as number[]);
    case "dict":
      return { dict: (x as unknown[][]).map(([k, v]) => [fromOracle(k), fromOracle(v)]) };
    default: // tuple, list
      return { [tag]: (x as unknown[]).map(fromOracle) };
  }
}

for (const protocol of [2, 4, 5]) {
  Deno.test(`unpickle() reads Python's protocol ${protocol} pickle of plain values exactly`, () => {
    const expected = JSON.parse(new TextDecoder().decode(fixture("values.json")))[protocol];
    const value = unpickle(fixture(`values_p${protocol}.pkl`), `values_p${protocol}.pkl`, keepPid);
    assert.deepStrictEqual(shapeOf(value), fromOracle(expected));
    // The list pickled twice is one object, as in Python (memo).
    const shared = ((value as Map<string, Map<string, unknown[]>>).get("nested")!.get("a"))!;
    assert.ok(shared[0] === shared[1]);
  });
}

Deno.test("unpickle() turns torch.save's state_dict pickle into tensor descriptors matching torch's shapes", async () => {
  const twin = await readSafetensors(new URL("bert_tiny.safetensors", FIXTURES).pathname);
  const dtypes = JSON.parse(twin.metadata.dtypes);
  const pids: unknown[] = [];
  const root = unpickle(dataPkl("bert_tiny.bin"), "bert_tiny.bin", (pid) => {
    pids.push(pid);
    return pid;
  });
  assert.ok(root instanceof Map);
  assert.deepEqual([...root.keys()], [...twin.tensors.keys()]);
  for (const [name, ref] of root) {
    assert.ok(ref instanceof TorchTensorRef);
    const [tag, type, , location, numel] = ref.storage as unknown[];
    assert.deepEqual([tag, location], ["storage", "cpu"]);
    assert.ok(type instanceof TorchStorageType);
    assert.deepEqual(type.dtype, dtypes[name], name);
    const shape = twin.tensors.get(name)!.shape;
    assert.deepEqual(ref.size, shape, name);
    assert.ok(typeof numel === "number" && numel >= shape.reduce((a, b) => a * b, 1), name);
  }
  assert.deepEqual(pids.length, root.size);
});

Deno.test("unpickle() reads protocols 4 and 5 (FRAME, MEMOIZE, STACK_GLOBAL) the same as protocol 2", () => {
  const describe = (file: string) => {
    const root = unpickle(dataPkl(file), file, keepPid) as Map<string, TorchTensorRef>;
    return [...root].map(([k, t]) => {
      const [, type, key, , numel] = t.storage as unknown[];
      return [
        k,
        (type as TorchStorageType).name,
        key,
        numel,
        t.storageOffset,
        t.size,
        t.stride,
        t.requiresGrad,
      ];
    });
  };
  const p2 = describe("tensors.bin");
  assert.deepEqual(describe("tensors_p4.bin"), p2);
  assert.deepEqual(describe("tensors_p5.bin"), p2);
  // The nn.Parameter entry keeps its requires_grad; views keep offsets and strides.
  const byName = new Map(p2.map((row) => [row[0], row]));
  assert.deepEqual(byName.get("param")![7], true);
  assert.deepEqual(byName.get("window")!.slice(4, 7), [8, [3, 3], [6, 1]]);
});

Deno.test("unpickleFrom() reads pickles written back to back and reports where each ends", () => {
  const a = fixture("values_p2.pkl");
  const b = fixture("values_p4.pkl");
  const both = new Uint8Array([...a, ...b]);
  const first = unpickleFrom(both, 0, "both.pkl", keepPid);
  assert.deepEqual(first.end, a.length);
  const second = unpickleFrom(both, first.end, "both.pkl", keepPid);
  assert.deepEqual(second.end, both.length);
  assert.deepStrictEqual(shapeOf(first.value), shapeOf(unpickle(a, "a.pkl", keepPid)));
  assert.deepStrictEqual(shapeOf(second.value), shapeOf(unpickle(b, "b.pkl", keepPid)));
});

// ---- refusing code execution ----

const enc = (s: string) => new TextEncoder().encode(s);
const bytesOf = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === "string" ? [...enc(p)] : p)));

/** Pickles that run a shell command (or equivalent) when Python loads them, each touching `marker`. */
function payloads(marker: string): [string, Uint8Array][] {
  const cmd = `touch ${marker}`;
  const short = (s: string) => [0x8c, enc(s).length, ...enc(s)];
  return [
    // protocol 0/2 GLOBAL: os.system('touch marker')
    ["os.system", bytesOf("cos\nsystem\n(S'", cmd, "'\ntR.")],
    ["posix.system", bytesOf([0x80, 2], "cposix\nsystem\n(X", u32(cmd.length), cmd, "tR.")],
    ["builtins.eval", bytesOf('cbuiltins\neval\n(S\'__import__("os").system("', cmd, "\")'\ntR.")],
    ["subprocess.Popen", bytesOf("csubprocess\nPopen\n((S'touch'\nS'", marker, "'\nltR.")],
    // protocol 4 STACK_GLOBAL, hidden inside an otherwise ordinary OrderedDict
    [
      "os.system",
      bytesOf(
        [0x80, 4],
        short("collections"),
        short("OrderedDict"),
        [0x93, 0x29, 0x52, 0x28],
        short("k"),
        short("os"),
        short("system"),
        [0x93],
        short(cmd),
        [0x85, 0x52, 0x75, 0x2e],
      ),
    ],
  ];
}

function u32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
}

Deno.test("unpickle() refuses os.system, builtins.eval, subprocess.Popen and posix.system, and runs nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const marker = `${dir}/pwned`;
    for (const [global, bytes] of payloads(marker)) {
      const err = caught(() => unpickle(bytes, "evil.pkl", keepPid), SyntaxError);
      assert.ok(err.message.includes(`refusing global "${global}"`), err.message);
      assert.ok(err.message.includes('"evil.pkl"'), err.message);
    }
    assert.deepEqual(await exists(marker), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const python = "/usr/bin/python3";
Deno.test({
  name: "unpickle() refusal test's payloads do run a command under Python's own pickle (control)",
  ignore: !(await exists(python)),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      for (const [global, bytes] of payloads(`${dir}/pwned`).slice(0, 4)) {
        await Deno.writeFile(`${dir}/p.pkl`, bytes);
        const run = new Deno.Command(python, {
          args: ["-c", "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())", `${dir}/p.pkl`],
          stdout: "null",
          stderr: "null",
        });
        await run.output();
        assert.ok(await exists(`${dir}/pwned`), `${global} payload did not run under Python`);
        await Deno.remove(`${dir}/pwned`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("unpickle() refuses globals outside the allow-list even under torch or collections", () => {
  for (
    const global of ["torch.load", "torch._utils._rebuild_qtensor", "collections.defaultdict", "torch.Tensor"]
  ) {
    const [module, name] = [
      global.slice(0, global.lastIndexOf(".")),
      global.slice(global.lastIndexOf(".") + 1),
    ];
    const err = caught(() => unpickle(bytesOf(`c${module}\n${name}\n.`), "x.pkl", keepPid), SyntaxError);
    assert.ok(err.message.includes(`refusing global "${global}"`), err.message);
  }
});

// ---- malformed input ----

Deno.test("unpickle() rejects malformed pickles with a SyntaxError naming the file", () => {
  const cases: [string, Uint8Array, string][] = [
    ["empty", bytesOf(""), "data ends"],
    ["no STOP", bytesOf([0x80, 2, 0x4b, 1]), "data ends"],
    ["stack underflow", bytesOf([0x80, 2, 0x2e]), "stack underflow"],
    ["unknown opcode", bytesOf([0x80, 2, 0x69, 0x2e]), "unsupported opcode 0x69"],
    ["future protocol", bytesOf([0x80, 6, 0x4e, 0x2e]), "protocol 6"],
    ["empty memo slot", bytesOf([0x80, 2, 0x68, 3, 0x2e]), "memo slot 3"],
    ["string past end", bytesOf([0x80, 2, 0x58], u32(1000), "abc"), "data ends"],
    ["bad UTF-8", bytesOf([0x80, 2, 0x8c, 2, 0xc3, 0x28, 0x2e]), "UTF-8"],
    ["TUPLE without MARK", bytesOf([0x80, 2, 0x4e, 0x74, 0x2e]), "no MARK"],
    ["APPEND to a tuple", bytesOf([0x80, 2, 0x29, 0x4e, 0x61, 0x2e]), "not a list"],
    ["SETITEM on a list", bytesOf([0x80, 2, 0x5d, 0x4e, 0x4e, 0x73, 0x2e]), "not a dict"],
    ["REDUCE of a string", bytesOf([0x80, 2, 0x8c, 1], "a", [0x29, 0x52, 0x2e]), "not an allowed global"],
    ["REDUCE with a list", bytesOf("ccollections\nOrderedDict\n", [0x5d, 0x52, 0x2e]), "needs a tuple"],
    ["trailing bytes", bytesOf([0x80, 2, 0x4e, 0x2e, 0x4e]), "1 bytes follow"],
    [
      "FRAME past end",
      bytesOf([0x80, 4, 0x95], [0xff, 0xff, 0, 0, 0, 0, 0, 0], [0x4e, 0x2e]),
      "exceeds the data",
    ],
    ["deep MARKs", new Uint8Array([0x80, 2, ...new Array(1001).fill(0x28), 0x2e]), "nest deeper than 1000"],
  ];
  for (const [label, bytes, why] of cases) {
    const err = caught(() => unpickle(bytes, `${label}.pkl`, keepPid), SyntaxError, label);
    assert.ok(
      err.message.includes(`"${label}.pkl"`) && err.message.includes(why),
      `${label}: ${err.message}`,
    );
  }
});

Deno.test("unpickle() survives mutated torch pickles: it parses them or throws an error naming the file", () => {
  const seeds = [
    dataPkl("tensors.bin"),
    dataPkl("tensors_p4.bin"),
    dataPkl("bert_tiny.bin"),
    fixture("values_p2.pkl"),
  ];
  const report = fuzzParser("data.pkl", seeds, (bytes, name) => unpickle(bytes, name, keepPid), {
    cases: 3000,
    seed: 11,
    timeLimitMs: 200,
  });
  assert.deepEqual(report.cases, 3000);
  // Not every mutation breaks a pickle, and most do: both outcomes must occur.
  assert.ok(report.parsed > 0 && report.parsed < report.cases, JSON.stringify(report));
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
