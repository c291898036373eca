/**
 * The test-data resolver (tests/data.ts): a loopback mirror of the official places stands in for the
 * internet, so these prove a clone's data-dependent tests work with only network access, and fail
 * with one clear message without it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startTestServer, type TestServer } from "../train/_test_server.ts";
import { assertRejectsWith } from "../train/data/_assertions.ts";
import {
  BERT_FILES,
  colaZipPath,
  TEST_DATA_ENV,
  TEST_DATA_SHA256,
  type TestDataFile,
  testDataFile,
} from "./data.ts";
import { freePort } from "./spawn.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const FILES = Object.keys(TEST_DATA_SHA256) as TestDataFile[];

/** A mirror on 127.0.0.1 laid out like the CoLA site and the hub, holding the files the resolver finds here. */
async function startMirror(): Promise<TestServer> {
  const served: Record<string, { body: Uint8Array<ArrayBuffer> }> = {};
  for (const file of FILES) {
    const body = await Deno.readFile(await testDataFile(file));
    const path = file === "cola_public_1.1.zip"
      ? "/CoLA/cola_public_1.1.zip"
      : `/bert-base-uncased/resolve/main/${file.slice("bert-base-uncased/".length)}`;
    served[path] = { body };
  }
  return startTestServer(served);
}

/** This process's environment without the test-data folder, pointed at `mirror` with an empty cache. */
function mirrorEnv(origin: string, cacheDir: string): Record<string, string> {
  const env = Deno.env.toObject();
  delete env[TEST_DATA_ENV];
  return {
    ...env,
    NO_COLOR: "1",
    BERT_WEBGPU_CACHE: cacheDir,
    HF_ENDPOINT: origin,
    BERT_WEBGPU_COLA_URL: `${origin}/CoLA/cola_public_1.1.zip`,
  };
}

Deno.test({
  name: "a clone's data-dependent tests pass with no test-data folder, downloading from a loopback mirror",
  sanitizeResources: false,
  async fn() {
    const mirror = await startMirror();
    const cacheDir = await Deno.makeTempDir({ prefix: "test_data_cache_" });
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["test", "-A", "train/data/cola_test.ts", "formats/zip_test.ts", "tokenizer/tokenizer_test.ts"],
        cwd: ROOT,
        env: mirrorEnv(mirror.origin, cacheDir),
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text.slice(-4000));
      assert.match(text, /ok \| \d+ passed/);
      // Every file came from the mirror, once, and is now in the cache.
      const fetched = mirror.requests.map((r) => r.path).sort();
      assert.deepEqual(fetched, Object.keys(Object.fromEntries(mirror.files)).sort());
      for (const file of FILES) {
        await Deno.stat(
          await testDataFile(file, {
            dataDir: "",
            cacheDir,
            hfEndpoint: mirror.origin,
            colaUrl: `${mirror.origin}/CoLA/cola_public_1.1.zip`,
          }),
        );
      }
      assert.equal(mirror.requests.length, fetched.length, "cached files are not fetched again");
    } finally {
      await mirror.close();
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});

Deno.test("offline with nothing cached: one message names the file, the URL and BERT_WEBGPU_TEST_DATA", async () => {
  const cacheDir = await Deno.makeTempDir();
  const port = await freePort();
  const colaUrl = `http://127.0.0.1:${port}/CoLA/cola_public_1.1.zip`;
  try {
    await assertRejectsWith(
      () => colaZipPath({ dataDir: "", cacheDir, colaUrl }),
      Error,
      `Test data "cola_public_1.1.zip" is not available`,
      colaUrl,
      TEST_DATA_ENV,
    );
    await assertRejectsWith(
      () =>
        testDataFile("bert-base-uncased/vocab.txt", {
          dataDir: "",
          cacheDir,
          hfEndpoint: `http://127.0.0.1:${port}`,
        }),
      Error,
      `Test data "bert-base-uncased/vocab.txt"`,
      `http://127.0.0.1:${port}/bert-base-uncased/resolve/main/vocab.txt`,
      TEST_DATA_ENV,
    );
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test({
  name:
    "a downloaded or local file that is not the pinned one names the file, the digest seen and the one expected",
  sanitizeResources: false,
  async fn() {
    const wrong = new TextEncoder().encode("[PAD]\n[UNK]\n");
    const digest = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", wrong)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const expected = TEST_DATA_SHA256["bert-base-uncased/vocab.txt"]!;
    const mirror = startTestServer({ "/bert-base-uncased/resolve/main/vocab.txt": { body: wrong } });
    const cacheDir = await Deno.makeTempDir();
    const dataDir = await Deno.makeTempDir();
    try {
      await assertRejectsWith(
        () =>
          testDataFile("bert-base-uncased/vocab.txt", { dataDir: "", cacheDir, hfEndpoint: mirror.origin }),
        Error,
        `Test data "bert-base-uncased/vocab.txt"`,
        digest,
        expected,
      );
      await Deno.mkdir(join(dataDir, "bert-base-uncased"));
      await Deno.writeFile(join(dataDir, "bert-base-uncased", "vocab.txt"), wrong);
      await assertRejectsWith(
        () => testDataFile("bert-base-uncased/vocab.txt", { dataDir }),
        Error,
        `Test data "bert-base-uncased/vocab.txt"`,
        `SHA-256 ${digest}, expected ${expected}`,
      );
      await assertRejectsWith(
        () => testDataFile(`bert-base-uncased/${BERT_FILES[1]}`, { dataDir }),
        Error,
        `Test data "bert-base-uncased/tokenizer.json" is missing`,
        TEST_DATA_ENV,
      );
    } finally {
      await mirror.close();
      await Deno.remove(cacheDir, { recursive: true });
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
