import assert from "node:assert/strict";
import { zipSync } from "npm:fflate@0.8.3";
import { crc32, listZipMembers, readZipMember } from "./zip.ts";
import { assertThrowsWith } from "./_assertions.ts";

const COLA_ZIP = new URL("../../../shared/data/cola_public_1.1.zip", import.meta.url);

Deno.test("crc32() gives the standard check value", () => {
  // CRC-32/ISO-HDLC check value from the CRC catalogue.
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("listZipMembers() lists the CoLA zip's raw files with their sizes", () => {
  const members = listZipMembers(Deno.readFileSync(COLA_ZIP), "cola_public_1.1.zip");
  const sizes = Object.fromEntries(members.map((m) => [m.name, m.size]));
  // Sizes as Python's zipfile reports them.
  assert.equal(sizes["cola_public/raw/in_domain_train.tsv"], 428578);
  assert.equal(sizes["cola_public/raw/in_domain_dev.tsv"], 25957);
  assert.equal(sizes["cola_public/raw/out_of_domain_dev.tsv"], 27754);
  assert.equal(members.length, 10);
});

Deno.test("readZipMember() round-trips stored and deflated members written by fflate", () => {
  const text = new TextEncoder().encode("label\ttext\n".repeat(200));
  const other = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff);
  const zip = zipSync({
    "data/train.tsv": [text, { level: 6 }],
    "data/raw.bin": [other, { level: 0 }],
  });
  const members = listZipMembers(zip, "t.zip");
  assert.deepEqual(members.map((m) => [m.name, m.method]), [["data/train.tsv", 8], ["data/raw.bin", 0]]);
  assert.deepEqual(readZipMember(zip, "data/train.tsv", "t.zip"), text);
  assert.deepEqual(readZipMember(zip, "data/raw.bin", "t.zip"), other);
});

Deno.test("readZipMember() names the missing member and the zip", () => {
  const zip = zipSync({ "a.txt": new TextEncoder().encode("a") });
  assertThrowsWith(
    () => readZipMember(zip, "cola_public/raw/in_domain_train.tsv", "wrong.zip"),
    Deno.errors.NotFound,
    `Zip "wrong.zip" has no member "cola_public/raw/in_domain_train.tsv"`,
    "it holds: a.txt",
  );
});

Deno.test("listZipMembers() rejects bytes that are not a zip", () => {
  assertThrowsWith(
    () => listZipMembers(new TextEncoder().encode("<html>Not found</html>"), "cola.zip"),
    SyntaxError,
    `Cannot read zip "cola.zip": no end-of-central-directory record`,
  );
  assertThrowsWith(() => listZipMembers(new Uint8Array(0), "empty.zip"), SyntaxError, `"empty.zip"`);
});

Deno.test("readZipMember() detects a truncated zip", () => {
  const zip = Deno.readFileSync(COLA_ZIP);
  const member = "cola_public/raw/in_domain_dev.tsv";
  // A download cut short loses the end record; a file missing its start has offsets that no longer fit.
  assertThrowsWith(
    () => readZipMember(zip.slice(0, 200_000), member, "short.zip"),
    SyntaxError,
    `"short.zip"`,
  );
  assertThrowsWith(() => readZipMember(zip.slice(1000), member, "cut.zip"), SyntaxError, `"cut.zip"`);
});

Deno.test("readZipMember() detects corrupted member data", () => {
  const payload = Uint8Array.from({ length: 4000 }, (_, i) => (i * 31) & 0xff);
  const stored = zipSync({ "x.bin": [payload, { level: 0 }] });
  // Local header is 30 bytes + the 5-byte name; flip a byte in the stored data.
  stored[30 + 5 + 100] ^= 0xff;
  assertThrowsWith(() => readZipMember(stored, "x.bin", "s.zip"), SyntaxError, "CRC-32", `"s.zip"`);

  const deflated = zipSync({ "x.txt": [new TextEncoder().encode("the cat sat ".repeat(500)), { level: 9 }] });
  const dataStart = 30 + 5;
  for (let i = dataStart; i < dataStart + 20; i++) deflated[i] ^= 0x5a;
  assertThrowsWith(() => readZipMember(deflated, "x.txt", "d.zip"), SyntaxError, `Cannot read zip "d.zip"`);
});
