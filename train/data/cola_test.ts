import assert from "node:assert/strict";
import { dirname } from "node:path";
import { colaZipPath } from "../../tests/data.ts";
import { loadCola, splitTrainValidation } from "./cola.ts";
import { DownloadError } from "../hub.ts";
import { startTestServer } from "../_test_server.ts";
import { assertRejectsWith, assertThrowsWith } from "./_assertions.ts";

const ZIP_PATH = await colaZipPath();
// From the shared data README.
const FIRST_SENTENCE = "Our friends won't buy this analysis, let alone the next one we propose.";

Deno.test("loadCola() reads the official zip: 8,551 train rows split 7,695 / 856, 527 and 516 dev rows", async () => {
  const cola = await loadCola(ZIP_PATH);
  assert.equal(cola.train.examples.length, 7695);
  assert.equal(cola.validation.examples.length, 856);
  assert.equal(cola.inDomainDev.examples.length, 527);
  assert.equal(cola.outOfDomainDev.examples.length, 516);
  for (const ds of Object.values(cola)) assert.deepEqual(ds.labels, ["unacceptable", "acceptable"]);
  // Label counts of in_domain_train as Python's csv module reads the raw TSV: 6,023 ones.
  const ones = [...cola.train.examples, ...cola.validation.examples].filter((e) => e.label === 1).length;
  assert.equal(ones, 6023);
  assert.equal(cola.inDomainDev.examples[0].text, "The sailors rode the breeze clear of the rocks.");
  assert.equal(cola.outOfDomainDev.examples[515].text, "John talked to Bill about himself.");
  assert.match(
    cola.train.examples[0].source!,
    /^cola_public_1\.1\.zip\/cola_public\/raw\/in_domain_train\.tsv:\d+$/,
  );
});

Deno.test("loadCola() without shuffle keeps file order: the first train row is the README's sentence", async () => {
  const cola = await loadCola(ZIP_PATH, { shuffle: false });
  assert.equal(cola.train.examples[0].text, FIRST_SENTENCE);
  assert.equal(cola.train.examples[0].label, 1);
  assert.equal(
    cola.validation.examples[0].source,
    "cola_public_1.1.zip/cola_public/raw/in_domain_train.tsv:7696",
  );
});

Deno.test("loadCola() splits deterministically per seed, differently for another seed, covering every row once", async () => {
  const a = await loadCola(dirname(ZIP_PATH)); // a folder holding the zip
  const b = await loadCola(ZIP_PATH, { seed: 42 });
  const c = await loadCola(ZIP_PATH, { seed: 7 });
  const sources = (ds: { examples: { source?: string }[] }) => ds.examples.map((e) => e.source!);
  assert.deepEqual(sources(a.validation), sources(b.validation));
  assert.notDeepEqual(sources(c.validation), sources(b.validation));
  const all = [...sources(c.train), ...sources(c.validation)];
  assert.equal(new Set(all).size, 8551);
});

Deno.test("splitTrainValidation() sizes validation as n - floor((1 - valSplit) n) and rejects bad fractions", () => {
  const ds = {
    name: "d",
    labels: ["a"],
    examples: Array.from({ length: 101 }, (_, i) => ({ text: `${i}`, label: 0 })),
  };
  const { train, validation } = splitTrainValidation(ds, 0.25, 1);
  assert.deepEqual([train.examples.length, validation.examples.length], [75, 26]);
  assert.equal(splitTrainValidation(ds, 0, 1).validation.examples.length, 0);
  assertThrowsWith(() => splitTrainValidation(ds, 1, 1), RangeError, "valSplit 1 is outside [0, 1)");
});

Deno.test("loadCola() names a missing zip and how to get one", async () => {
  await assertRejectsWith(
    () => loadCola("/nonexistent/cola"),
    Deno.errors.NotFound,
    `CoLA zip "/nonexistent/cola" not found`,
    "https://nyu-mll.github.io/CoLA/cola_public_1.1.zip",
  );
});

Deno.test("loadCola() downloads from a URL once, then uses the cache", async () => {
  const server = startTestServer({ "/CoLA/cola_public_1.1.zip": { body: await Deno.readFile(ZIP_PATH) } });
  const cacheDir = await Deno.makeTempDir();
  try {
    const url = `${server.origin}/CoLA/cola_public_1.1.zip`;
    const first = await loadCola(url, { cacheDir });
    assert.equal(first.train.examples.length, 7695);
    assert.equal(server.requests.length, 1);
    const second = await loadCola(new URL(url), { cacheDir });
    assert.deepEqual(second.validation, first.validation);
    assert.equal(server.requests.length, 1, "second call made no request");

    await assertRejectsWith(
      () => loadCola(`${server.origin}/missing.zip`, { cacheDir }),
      DownloadError,
      `Cannot download "${server.origin}/missing.zip": HTTP 404`,
      "pass its path or folder",
    );
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
