import assert from "node:assert/strict";
import { formatFromExtension, loadTable, parseTable } from "./tabular.ts";
import { assertRejectsWith, assertThrowsWith } from "./_assertions.ts";

const texts = (ds: { examples: { text: string }[] }) => ds.examples.map((e) => e.text);
const labels = (ds: { examples: { label: number }[] }) => ds.examples.map((e) => e.label);

Deno.test("parseTable() reads a TSV with a header by column name", () => {
  const tsv = "sentence\tlabel\nit was great\t1\nit was awful\t0\n";
  const ds = parseTable(tsv, "sst2.tsv", { textColumn: "sentence", labelColumn: "label" });
  assert.deepEqual(texts(ds), ["it was great", "it was awful"]);
  assert.deepEqual(labels(ds), [1, 0]);
  assert.deepEqual(ds.labels, ["0", "1"]);
  assert.deepEqual(ds.examples.map((e) => e.source), ["sst2.tsv:2", "sst2.tsv:3"]);
  assert.equal(ds.name, "sst2.tsv");
});

Deno.test("parseTable() keeps TSV quotes as text and addresses headerless columns by index", () => {
  const tsv = 'gj04\t1\t\tHe said "hi, there".\ngj04\t0\t*\tHim left.';
  const ds = parseTable(tsv, "raw.tsv", { textColumn: "3", labelColumn: "1" });
  assert.deepEqual(texts(ds), ['He said "hi, there".', "Him left."]);
  assert.deepEqual(labels(ds), [1, 0]);
});

Deno.test("parseTable() reads CSV quoting, CRLF and multi-line fields with the right line numbers", () => {
  const csv = 'text,label\r\n"a, b",pos\r\n"she said ""no""",neg\r\n"two\r\nlines",pos\r\n\r\nlast,neg\r\n';
  const ds = parseTable(csv, "r.csv", { textColumn: "text", labelColumn: "label" });
  assert.deepEqual(texts(ds), ["a, b", 'she said "no"', "two\nlines", "last"]);
  assert.deepEqual(ds.examples.map((e) => e.source), ["r.csv:2", "r.csv:3", "r.csv:4", "r.csv:7"]);
});

Deno.test("parseTable() maps string labels in sorted order, or through label2id", () => {
  const csv = "t,l\na,pos\nb,neg\nc,neutral\nd,pos\n";
  const sorted = parseTable(csv, "s.csv", { textColumn: "t", labelColumn: "l" });
  assert.deepEqual(sorted.labels, ["neg", "neutral", "pos"]);
  assert.deepEqual(labels(sorted), [2, 0, 1, 2]);
  const mapped = parseTable(csv, "s.csv", {
    textColumn: "t",
    labelColumn: "l",
    label2id: { pos: 0, neutral: 1, neg: 2 },
  });
  assert.deepEqual(mapped.labels, ["pos", "neutral", "neg"]);
  assert.deepEqual(labels(mapped), [0, 2, 1, 0]);
});

Deno.test("parseTable() takes integer labels as class ids", () => {
  const ds = parseTable("t\tl\na\t2\nb\t0\n", "i.tsv", { textColumn: "t", labelColumn: "l" });
  assert.deepEqual(labels(ds), [2, 0]);
  assert.deepEqual(ds.labels, ["0", "1", "2"]);
});

Deno.test("parseTable() reads JSONL with text pairs and numeric labels", () => {
  const jsonl = [
    '{"premise": "A man sleeps.", "hypothesis": "A person rests.", "label": 0}',
    "",
    '{"premise": "Dogs bark.", "hypothesis": "Cats fly.", "label": 2, "extra": [1]}',
  ].join("\n");
  const ds = parseTable(jsonl, "mnli.jsonl", {
    textColumn: "premise",
    textPairColumn: "hypothesis",
    labelColumn: "label",
  });
  assert.deepEqual(ds.examples, [
    { text: "A man sleeps.", textPair: "A person rests.", label: 0, source: "mnli.jsonl:1" },
    { text: "Dogs bark.", textPair: "Cats fly.", label: 2, source: "mnli.jsonl:3" },
  ]);
  assert.deepEqual(ds.labels, ["0", "1", "2"]);
});

Deno.test("parseTable() reads float targets with regression", () => {
  const ds = parseTable("s1\ts2\tscore\na\tb\t3.8\nc\td\t0\n", "stsb.tsv", {
    textColumn: "s1",
    textPairColumn: "s2",
    labelColumn: "score",
    regression: true,
  });
  assert.deepEqual(labels(ds), [3.8, 0]);
  assert.deepEqual(ds.labels, ["score"]);
  assertThrowsWith(
    () =>
      parseTable("t\tscore\na\thigh\n", "r.tsv", { textColumn: "t", labelColumn: "score", regression: true }),
    RangeError,
    `"r.tsv" line 2: regression label "high" is not a finite number`,
  );
});

Deno.test("parseTable() names the file and line of a wrong column count", () => {
  const tsv = "src\tlabel\tmark\ttext\n" + "a\t1\t\tfine\n".repeat(10) + "a\t1\tbroken\n";
  assertThrowsWith(
    () => parseTable(tsv, "train.tsv", { textColumn: "text", labelColumn: "label" }),
    RangeError,
    `"train.tsv" line 12: expected 4 columns, got 3`,
  );
  assertThrowsWith(
    () => parseTable("t,l\na,1\nb,1,extra\n", "x.csv", { textColumn: "t", labelColumn: "l" }),
    RangeError,
    `"x.csv" line 3: expected 2 columns, got 3`,
  );
  assertThrowsWith(
    () => parseTable("a\t1\n", "cola.tsv", { textColumn: "1", labelColumn: "0", expectedColumns: 4 }),
    RangeError,
    `"cola.tsv" line 1: expected 4 columns, got 2`,
  );
});

Deno.test("parseTable() rejects a label outside the label set", () => {
  assertThrowsWith(
    () =>
      parseTable("t,l\na,pos\nb,maybe\n", "l.csv", {
        textColumn: "t",
        labelColumn: "l",
        label2id: { neg: 0, pos: 1 },
      }),
    RangeError,
    `"l.csv" line 3: label "maybe" is not in the label set ["neg","pos"]; add it to label2id`,
  );
  assertThrowsWith(
    () => parseTable("t\tl\na\t1\nb\t-1\n", "n.tsv", { textColumn: "t", labelColumn: "l" }),
    RangeError,
    `"n.tsv" line 3: label -1 is outside the label set`,
  );
  assertThrowsWith(
    () => parseTable("t\tl\na\t\n", "e.tsv", { textColumn: "t", labelColumn: "l" }),
    RangeError,
    `"e.tsv" line 2: label column "l" is empty`,
  );
  assertThrowsWith(
    () =>
      parseTable("t\tl\na\t1\n", "b.tsv", { textColumn: "t", labelColumn: "l", label2id: { a: 0, b: 2 } }),
    RangeError,
    `"b" maps to 2`,
  );
});

Deno.test("parseTable() rejects an empty data set", () => {
  assertThrowsWith(
    () => parseTable("sentence\tlabel\n", "h.tsv", { textColumn: "sentence", labelColumn: "label" }),
    RangeError,
    `"h.tsv" has no examples`,
  );
  assertThrowsWith(
    () => parseTable("\n\n", "e.jsonl", { textColumn: "t", labelColumn: "l" }),
    RangeError,
    `"e.jsonl" has no examples`,
  );
  assertThrowsWith(
    () => parseTable("", "e.csv", { textColumn: "t", labelColumn: "l" }),
    RangeError,
    `"e.csv" is empty`,
  );
});

Deno.test("parseTable() names a missing column, malformed CSV and invalid JSON", () => {
  assertThrowsWith(
    () => parseTable("text,label\na,1\n", "c.csv", { textColumn: "sentence", labelColumn: "label" }),
    RangeError,
    `"c.csv" has no column "sentence"; its header names "text", "label"`,
  );
  assertThrowsWith(
    () => parseTable("a\t1\n", "h.tsv", { textColumn: "0", labelColumn: "5" }),
    RangeError,
    `"h.tsv" has no column 5; it has 2 columns`,
  );
  assertThrowsWith(
    () => parseTable('t,l\nok,1\n"open,1\n', "q.csv", { textColumn: "t", labelColumn: "l" }),
    SyntaxError,
    `"q.csv" line 3: malformed CSV`,
  );
  assertThrowsWith(
    () =>
      parseTable('{"t": "a", "l": 1}\n{"t": "b", "l": }\n', "j.jsonl", { textColumn: "t", labelColumn: "l" }),
    SyntaxError,
    `"j.jsonl" line 2: invalid JSON`,
  );
  assertThrowsWith(
    () => parseTable('{"t": "a"}\n', "k.jsonl", { textColumn: "t", labelColumn: "l" }),
    RangeError,
    `"k.jsonl" line 1: missing key "l"`,
  );
  assertThrowsWith(
    () => parseTable('{"t": 5, "l": 1}\n', "n.jsonl", { textColumn: "t", labelColumn: "l" }),
    TypeError,
    `"n.jsonl" line 1: text column "t" holds number 5, expected a string`,
  );
});

Deno.test("formatFromExtension() picks the format or asks for it", () => {
  assert.equal(formatFromExtension("a/b.TSV"), "tsv");
  assert.equal(formatFromExtension("b.csv"), "csv");
  assert.equal(formatFromExtension("b.ndjson"), "jsonl");
  assertThrowsWith(() => formatFromExtension("data.txt"), TypeError, `"data.txt"`, `pass format:`);
});

Deno.test("loadTable() reads a file, and names a missing file and invalid UTF-8 with its line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/train.csv`;
    await Deno.writeTextFile(good, "\ufefftext,label\ncafé,yes\n");
    const ds = await loadTable(good, { textColumn: "text", labelColumn: "label" });
    assert.deepEqual(texts(ds), ["café"]);

    await assertRejectsWith(
      () => loadTable(`${dir}/missing.tsv`, { textColumn: "t", labelColumn: "l" }),
      Deno.errors.NotFound,
      `"${dir}/missing.tsv": no such file`,
    );

    const bad = `${dir}/bad.tsv`;
    const bytes = new TextEncoder().encode("t\tl\nfine\t1\nbro");
    await Deno.writeFile(
      bad,
      new Uint8Array([...bytes, 0xff, 0xfe, 0x0a, ...new TextEncoder().encode("x\t0\n")]),
    );
    await assertRejectsWith(
      () => loadTable(bad, { textColumn: "t", labelColumn: "l" }),
      TypeError,
      `"${bad}" line 3: invalid UTF-8`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
