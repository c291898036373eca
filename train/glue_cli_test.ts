import assert from "node:assert/strict";
import { join } from "node:path";
import { glueScoresOf, isColaPublic, taskOrUsage } from "./glue_cli.ts";
import { UsageError } from "./cli.ts";
import { matthewsCorrcoef } from "./data/metrics.ts";

Deno.test("taskOrUsage() turns an unknown --task into a usage error listing the GLUE tasks", () => {
  assert.equal(taskOrUsage("MNLI").name, "mnli");
  assert.throws(
    () => taskOrUsage("squad"),
    (e) => e instanceof UsageError && /cola, sst2, mrpc, stsb/.test(e.message),
  );
});

Deno.test("isColaPublic() tells the tutorial's CoLA zip from GLUE's CoLA layout", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.ok(isColaPublic(undefined));
    assert.ok(isColaPublic("data/cola_public_1.1.zip"));
    assert.ok(isColaPublic("https://nyu-mll.github.io/CoLA/cola_public_1.1.zip"));
    assert.ok(!isColaPublic(join(dir, "CoLA.zip")));
    assert.ok(!isColaPublic(dir));
    await Deno.writeFile(join(dir, "cola_public_1.1.zip"), new Uint8Array(1));
    assert.ok(isColaPublic(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("glueScoresOf() scores CoLA's in_domain_dev and out_of_domain_dev together, as GLUE's dev.tsv", () => {
  const set = (labels: number[]) => ({
    name: "x",
    labels: ["u", "a"],
    examples: labels.map((label) => ({ text: "t", label })),
  });
  const sets = { in_domain_dev: set([1, 0, 1, 1]), out_of_domain_dev: set([0, 0, 1]) };
  const results = {
    in_domain_dev: { predictions: [1, 0, 0, 1] },
    out_of_domain_dev: { predictions: [0, 1, 1] },
  };
  const scores = glueScoresOf("cola", results, sets);
  assert.deepEqual(Object.keys(scores.sets), ["dev"]);
  assert.equal(scores.headline.value, matthewsCorrcoef([1, 0, 0, 1, 0, 1, 1], [1, 0, 1, 1, 0, 0, 1]));
});
