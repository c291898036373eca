import assert from "node:assert/strict";
import { join } from "node:path";
import { zipSync } from "npm:fflate@0.8.3";
import { formatGlueScores, GLUE, GLUE_TASKS, glueScores, glueTask, loadGlue, tsvLines } from "./glue.ts";
import { startTestServer } from "../_test_server.ts";
import { makeBatch } from "./batches.ts";
import { tokenizerFromVocab } from "../../tokenizer/mod.ts";
import { GLUE_LAYOUT as LAYOUT } from "../../tests/glue_layout.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const BOM = "\ufeff";

async function writeFolder(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "glue_test_" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
  return dir;
}

function zipOf(task: string, files: Record<string, string>): Uint8Array<ArrayBuffer> {
  const dir = glueTask(task).dir;
  const entries: Record<string, Uint8Array> = {};
  for (const [name, text] of Object.entries(files)) entries[`${dir}/${name}`] = enc(text);
  return zipSync(entries) as Uint8Array<ArrayBuffer>;
}

Deno.test("loadGlue() reads every task's layout from a folder: labels in GLUE's order, pairs, dev sets", async () => {
  const expected: Record<
    string,
    { train: number; dev: Record<string, number>; first: [string, string?, number?] }
  > = {
    cola: { train: 3, dev: { dev: 2 }, first: ["The cat sat.", undefined, 1] },
    sst2: { train: 2, dev: { dev: 1 }, first: ["a gentle , moving film ", undefined, 1] },
    mrpc: { train: 2, dev: { dev: 1 }, first: ['He said "yes.', "He agreed.", 1] },
    stsb: { train: 2, dev: { dev: 1 }, first: ["A plane is taking off.", "An air plane is taking off.", 5] },
    qqp: { train: 3, dev: { dev: 1 }, first: ['What is "best" coffee?', "Which coffee is best?", 1] },
    mnli: {
      train: 3,
      dev: { dev_matched: 1, dev_mismatched: 1 },
      first: ['"Stop, he said.', "He said nothing.", 2],
    },
    qnli: { train: 2, dev: { dev: 1 }, first: ["Who wrote it?", "It was written by Ann.", 0] },
    rte: { train: 2, dev: { dev: 1 }, first: ["Ann owns a car.", "Ann has a car.", 0] },
    wnli: {
      train: 2,
      dev: { dev: 1 },
      first: ["The cup fell because it was light.", "The cup was light.", 1],
    },
  };
  assert.deepEqual(Object.keys(expected).sort(), [...GLUE_TASKS].sort());
  for (const name of GLUE_TASKS) {
    const dir = await writeFolder(LAYOUT[name]);
    try {
      const g = await loadGlue(name, dir);
      const want = expected[name];
      assert.equal(g.train.examples.length, want.train, name);
      assert.deepEqual(
        Object.fromEntries(Object.entries(g.dev).map(([k, v]) => [k, v.examples.length])),
        want.dev,
      );
      const e = g.train.examples[0];
      assert.deepEqual([e.text, e.textPair, e.label], want.first, name);
      assert.deepEqual(g.train.labels, [...GLUE[name].labels], name);
      assert.equal(e.source, `${join(dir, "train.tsv")}:2`.replace(":2", GLUE[name].header ? ":2" : ":1"));
      for (const ds of [g.train, ...Object.values(g.dev)]) {
        assert.ok(ds.examples.every((x) => (x.textPair !== undefined) === (GLUE[name].pair !== undefined)));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("GLUE label order is Hugging Face's glue: MNLI entailment, neutral, contradiction; WNLI 0 not_entailment", () => {
  assert.deepEqual(GLUE.mnli.labels, ["entailment", "neutral", "contradiction"]);
  assert.deepEqual(GLUE.wnli.labels, ["not_entailment", "entailment"]);
  assert.deepEqual(GLUE.qnli.labels, ["entailment", "not_entailment"]);
  assert.deepEqual(GLUE.stsb.labels, ["score"]);
  assert.ok(GLUE.stsb.regression);
  assert.throws(() => glueTask("squad"), {
    name: "RangeError",
    message: /--task "squad" is unknown; the GLUE tasks are cola, sst2/,
  });
});

Deno.test("GLUE files are read with quoting off: stray quotes stay text and do not swallow rows", async () => {
  const dir = await writeFolder(LAYOUT.qqp);
  try {
    const g = await loadGlue("qqp", dir);
    assert.deepEqual(g.train.examples.map((e) => e.text), [
      'What is "best" coffee?',
      '"Why is the sky blue?',
      "What is tea?",
    ]);
    assert.equal(g.dev.dev.examples[0].text, 'Is it "raining"?');
    // The short row (line 4) is skipped and counted, as GLUE's DictReader drops rows with missing cells.
    assert.deepEqual(g.skipped, [{ file: join(dir, "train.tsv"), lines: [4] }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const mnli = await writeFolder(LAYOUT.mnli);
  try {
    const g = await loadGlue("mnli", mnli);
    assert.equal(g.dev.dev_mismatched.examples[0].text, 'He sang "loud.');
    const dev = await loadGlue("mnli", mnli, { devOnly: true });
    assert.deepEqual([dev.train.examples.length, dev.dev.dev_matched.examples.length], [0, 1]);
    assert.deepEqual(g.train.examples.map((e) => e.label), [2, 1, 0]);
    assert.deepEqual(g.skipped, []);
  } finally {
    await Deno.remove(mnli, { recursive: true });
  }
});

Deno.test("tsvLines() drops MRPC's BOM, splits \\r\\n, \\r and \\n, skips blank lines, names bad UTF-8", () => {
  const lines = [...tsvLines(enc(`${BOM}Quality\t#1 ID\r\n1\t2\r\r\n\n3\t4\r5\t6`), "m.tsv")];
  assert.deepEqual(lines, [
    { line: 1, cells: ["Quality", "#1 ID"] },
    { line: 2, cells: ["1", "2"] },
    { line: 5, cells: ["3", "4"] },
    { line: 6, cells: ["5", "6"] },
  ]);
  const bad = new Uint8Array([...enc("a\tb\nc\t"), 0xff, ...enc("\n")]);
  assert.throws(() => [...tsvLines(bad, "x.tsv")], {
    name: "TypeError",
    message: /"x.tsv" line 2: invalid UTF-8/,
  });
});

Deno.test("loadGlue() names file and line for rows it cannot read, and skips empty class labels", async () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    [
      "cola",
      { ...LAYOUT.cola, "dev.tsv": "gj04\t1\t\tOk.\ngj04\t0\n" },
      /"[^"]*dev\.tsv" line 2: expected 4 tab-separated cells, got 2/,
    ],
    [
      "rte",
      { ...LAYOUT.rte, "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tneutral\n" },
      /dev\.tsv" line 2: label "neutral" is not a GLUE RTE label; expected one of 0 or "entailment", 1 or "not_entailment"/,
    ],
    [
      "wnli",
      { ...LAYOUT.wnli, "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t2\n" },
      /line 2: label "2" is not a GLUE WNLI label/,
    ],
    [
      "stsb",
      { ...LAYOUT.stsb, "dev.tsv": LAYOUT.stsb["dev.tsv"].replace("4.2", "high") },
      /dev\.tsv" line 2: score "high" is not a number/,
    ],
    [
      "sst2",
      { ...LAYOUT.sst2, "train.tsv": "text\tlabel\na\t1\n" },
      /train\.tsv" has no column "sentence" \(GLUE SST-2 layout\); its header names "text", "label"/,
    ],
    ["sst2", { ...LAYOUT.sst2, "dev.tsv": "sentence\tlabel\n" }, /dev\.tsv" has no examples/],
  ];
  for (const [task, files, message] of cases) {
    const dir = await writeFolder(files);
    try {
      await assert.rejects(loadGlue(task, dir), { name: "RangeError", message }, task);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const dir = await writeFolder({ ...LAYOUT.rte, "train.tsv": LAYOUT.rte["train.tsv"] + "2\tx\ty\t\n" });
  try {
    const g = await loadGlue("rte", dir);
    assert.equal(g.train.examples.length, 2);
    assert.deepEqual(g.skipped, [{ file: join(dir, "train.tsv"), lines: [4] }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(loadGlue("rte", "/no/such/glue"), {
    name: "NotFound",
    message: /GLUE RTE data "\/no\/such\/glue" not found/,
  });
});

Deno.test("loadGlue() builds MRPC from msr_paraphrase_train.txt (with its BOM) and the dev ids", async () => {
  const dir = await writeFolder({
    "msr_paraphrase_train.txt": `${BOM}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n` +
      '1\t101\t102\tA cat "sat.\tThe cat sat.\n0\t103\t104\tRain.\tSun.\n1\t105\t106\tHi.\tHello.\n',
    "mrpc_dev_ids.tsv": "103\t104\n",
  });
  try {
    const g = await loadGlue("mrpc", dir);
    assert.deepEqual(g.train.examples.map((e) => [e.text, e.label]), [['A cat "sat.', 1], ["Hi.", 1]]);
    assert.deepEqual(g.dev.dev.examples.map((e) => [e.text, e.textPair, e.label]), [["Rain.", "Sun.", 0]]);
    assert.ok(!("ids" in g.train.examples[0]));
    assert.equal(g.dev.dev.name, "mrpc/dev");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadGlue() reads GLUE's zips, from a path, a folder holding it, or an http URL into the cache", async () => {
  const zip = zipOf("rte", LAYOUT.rte);
  const dir = await Deno.makeTempDir({ prefix: "glue_zip_" });
  const server = startTestServer({ "/glue/data/RTE.zip": { body: zip } });
  try {
    await Deno.writeFile(join(dir, "RTE.zip"), zip);
    for (const source of [join(dir, "RTE.zip"), dir]) {
      const g = await loadGlue("rte", source);
      assert.equal(g.train.examples.length, 2);
      assert.equal(g.train.examples[0].source, "RTE.zip/RTE/train.tsv:2");
    }
    const cacheDir = join(dir, "cache");
    const g = await loadGlue("rte", `${server.origin}/glue/data/RTE.zip`, { cacheDir });
    assert.equal(g.dev.dev.examples[0].text, "It snowed.");
    await loadGlue("rte", `${server.origin}/glue/data/RTE.zip`, { cacheDir });
    assert.equal(server.requests.length, 1, "the second load reads the cache");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadGlue() with no source downloads the task's public zip and checks its published SHA-256", async () => {
  const server = startTestServer({ "/glue/data/RTE.zip": { body: zipOf("rte", LAYOUT.rte) } });
  const cacheDir = await Deno.makeTempDir({ prefix: "glue_cache_" });
  // Requests for the canonical host go to the loopback server, through hub.ts's download path.
  const local: typeof fetch = (input, init) =>
    fetch(String(input).replace("https://dl.fbaipublicfiles.com", server.origin), init);
  try {
    assert.equal(GLUE.rte.url, "https://dl.fbaipublicfiles.com/glue/data/RTE.zip");
    await assert.rejects(loadGlue("rte", undefined, { cacheDir, fetch: local }), {
      name: "DownloadError",
      message: new RegExp(`expected ${GLUE.rte.sha256}; the file was deleted`),
    });
    assert.deepEqual(server.requests.map((r) => r.path), ["/glue/data/RTE.zip"]);
    await assert.rejects(loadGlue("mrpc", undefined, { cacheDir, fetch: local }), {
      name: "DownloadError",
      message: /senteval_data\/msr_paraphrase_train\.txt": HTTP 404/,
    });
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("glueScores() gives each task's metrics with the headline named", () => {
  const mnli = glueScores("mnli", {
    dev_matched: { predictions: [0, 1, 2, 2], gold: [0, 1, 2, 1] },
    dev_mismatched: { predictions: [0, 0], gold: [0, 1] },
  });
  assert.deepEqual(mnli.headline, { metric: "accuracy", set: "dev_matched", value: 0.75 });
  assert.deepEqual(mnli.sets.dev_mismatched, { accuracy: 0.5 });
  const stsb = glueScores("stsb", { dev: { predictions: [1, 2, 3, 4], gold: [1, 3, 2, 4] } });
  assert.deepEqual(Object.keys(stsb.sets.dev), ["pearson", "spearmanr"]);
  assert.equal(stsb.headline.metric, "pearson");
  const mrpc = glueScores("mrpc", { dev: { predictions: [1, 0, 1, 1], gold: [1, 0, 0, 1] } });
  assert.deepEqual(mrpc.sets.dev, { f1: 0.8, accuracy: 0.75 });
  assert.deepEqual(formatGlueScores(mrpc), ["GLUE MRPC dev: F1 0.8000 (headline), accuracy 0.7500"]);
  const cola = glueScores("cola", { dev: { predictions: [1, 0, 1, 0], gold: [1, 0, 1, 0] } });
  assert.deepEqual(cola.sets.dev, { matthews_correlation: 1 });
});

Deno.test("GLUE pairs batch with token_type_ids and Hugging Face's longest-first pair truncation", async () => {
  const dir = await writeFolder({
    "train.tsv":
      "index\tsentence1\tsentence2\tlabel\n0\ta b c d e f\tg h\tentailment\n1\ta\tb c d e f g\tnot_entailment\n",
    "dev.tsv": LAYOUT.rte["dev.tsv"],
  });
  try {
    const g = await loadGlue("rte", dir);
    const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", ..."abcdefgh"]);
    const batch = makeBatch(g.train, [0, 1], tokenizer, { maxLength: 7 });
    const id = (t: string) => ["[PAD]", "[UNK]", "[CLS]", "[SEP]", ..."abcdefgh"].indexOf(t);
    const row = (r: number) => Array.from(batch.inputIds.subarray(r * 7, r * 7 + 7));
    // 4 tokens of room: the longer sequence gives up tokens first (6 + 2 -> 2 + 2; 1 + 6 -> 1 + 3).
    assert.deepEqual(row(0), ["[CLS]", "a", "b", "[SEP]", "g", "h", "[SEP]"].map(id));
    assert.deepEqual(row(1), ["[CLS]", "a", "[SEP]", "b", "c", "d", "[SEP]"].map(id));
    assert.deepEqual(Array.from(batch.tokenTypeIds), [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1]);
    assert.deepEqual(Array.from(batch.labels), [0, 1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
