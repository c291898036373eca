/** The one zip reader (formats/_zip.ts) on the CoLA zip and on archives written by fflate. */
import assert from "node:assert/strict";
import { zipSync } from "npm:fflate@0.8.3";
import { crc32, readZipDirectory, readZipMember } from "./_zip.ts";
import { assertThrowsWith } from "../train/data/_assertions.ts";
import { colaZipPath } from "../tests/data.ts";

Deno.test("crc32() gives the standard check value", () => {
  // CRC-32/ISO-HDLC check value from the CRC catalogue.
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("readZipDirectory() lists the CoLA zip's raw files with their sizes", async () => {
  const entries = readZipDirectory(await Deno.readFile(await colaZipPath()), "cola_public_1.1.zip");
  const sizes = Object.fromEntries([...entries.values()].map((m) => [m.name, m.size]));
  // Sizes as Python's zipfile reports them.
  assert.equal(sizes["cola_public/raw/in_domain_train.tsv"], 428578);
  assert.equal(sizes["cola_public/raw/in_domain_dev.tsv"], 25957);
  assert.equal(sizes["cola_public/raw/out_of_domain_dev.tsv"], 27754);
  assert.equal(entries.size, 10);
  const readme = readZipMember(await Deno.readFile(await colaZipPath()), "cola_public/README", "cola.zip");
  assert.equal(readme.length, 6570);
});

Deno.test("readZipMember() round-trips stored and deflated records written by fflate, as copies", () => {
  const text = new TextEncoder().encode("label\ttext\n".repeat(200));
  const other = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff);
  const zip = zipSync({
    "data/train.tsv": [text, { level: 6 }],
    "data/raw.bin": [other, { level: 0 }],
  });
  const entries = readZipDirectory(zip, "t.zip");
  assert.deepEqual([...entries.values()].map((m) => [m.name, m.method]), [
    ["data/train.tsv", 8],
    ["data/raw.bin", 0],
  ]);
  assert.deepEqual(readZipMember(zip, "data/train.tsv", "t.zip"), text);
  const raw = readZipMember(zip, "data/raw.bin", "t.zip");
  assert.deepEqual(raw, other);
  raw[0] ^= 0xff; // a copy: the archive is untouched
  assert.deepEqual(readZipMember(zip, "data/raw.bin", "t.zip"), other);
});

Deno.test("readZipMember() names the missing record, the archive and what it holds", () => {
  const zip = zipSync({ "a.txt": new TextEncoder().encode("a") });
  assertThrowsWith(
    () => readZipMember(zip, "cola_public/raw/in_domain_train.tsv", "wrong.zip"),
    Deno.errors.NotFound,
    `Zip archive "wrong.zip" has no record "cola_public/raw/in_domain_train.tsv"`,
    "it holds: a.txt",
  );
});

Deno.test("readZipDirectory() rejects bytes that are not a zip", () => {
  assertThrowsWith(
    () => readZipDirectory(new TextEncoder().encode("<html>Not found</html>"), "cola.zip"),
    SyntaxError,
    `Cannot read zip archive "cola.zip": no end-of-central-directory record`,
    "fetch it again",
  );
  assertThrowsWith(() => readZipDirectory(new Uint8Array(0), "empty.zip"), SyntaxError, `"empty.zip"`);
});

Deno.test("readZipMember() detects a truncated zip", async () => {
  const zip = await Deno.readFile(await colaZipPath());
  const member = "cola_public/raw/in_domain_dev.tsv";
  // A download cut short loses the end record; a file missing its start has offsets that no longer fit.
  assertThrowsWith(
    () => readZipMember(zip.slice(0, 200_000), member, "short.zip"),
    SyntaxError,
    `"short.zip"`,
  );
  assertThrowsWith(() => readZipMember(zip.slice(1000), member, "cut.zip"), SyntaxError, `"cut.zip"`);
});

Deno.test("readZipMember() detects corrupted record data", () => {
  const payload = Uint8Array.from({ length: 4000 }, (_, i) => (i * 31) & 0xff);
  const stored = zipSync({ "x.bin": [payload, { level: 0 }] });
  // Local header is 30 bytes + the 5-byte name; flip a byte in the stored data.
  stored[30 + 5 + 100] ^= 0xff;
  assertThrowsWith(() => readZipMember(stored, "x.bin", "s.zip"), SyntaxError, "CRC-32", `"s.zip"`);

  const deflated = zipSync({ "x.txt": [new TextEncoder().encode("the cat sat ".repeat(500)), { level: 9 }] });
  const dataStart = 30 + 5;
  for (let i = dataStart; i < dataStart + 20; i++) deflated[i] ^= 0x5a;
  assertThrowsWith(
    () => readZipMember(deflated, "x.txt", "d.zip"),
    SyntaxError,
    `Cannot read zip archive "d.zip"`,
  );
});

Deno.test("readZipMember() stops a record that would inflate past the budget", () => {
  const zip = zipSync({ "big.txt": [new Uint8Array(1 << 20), { level: 9 }] });
  assertThrowsWith(() => readZipMember(zip, "big.txt", "b.zip", 1 << 16), RangeError, `"b.zip"`, "budget");
});
