/**
 * The library works when imported from a URL: a static server over the repository, a script in a
 * folder without deno.json (no import map) that imports `http://127.0.0.1:<port>/mod.ts`, builds a
 * vocabulary, trains a tiny BERT for a few steps, exports it and classifies with it. npm packages
 * come from the normal Deno cache, so the test needs no network.
 * @module
 */

import { join } from "node:path";

const ROOT = new URL("../", import.meta.url);
/** A proxy address nothing listens on (port 9, discard). */
const CLOSED_PROXY = "http://127.0.0.1:9";

const TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  json: "application/json",
};

/** Serves files under the repository root, GET only, and records every path asked for. */
function serveRepository(requested: string[]): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    requested.push(path);
    if (request.method !== "GET" || path.split("/").includes("..")) {
      return new Response(null, { status: 400 });
    }
    try {
      const body = await Deno.readFile(new URL(`.${path}`, ROOT));
      const type = TYPES[path.split(".").pop()!] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

/** The user's script: everything through the URL of mod.ts (the demo grammar only supplies sentences). */
function userScript(base: string): string {
  return `
import {
  createModelConfig, exportModel, fineTune, initWeights, loadClassifier, tokenizerFromVocab,
} from "${base}mod.ts";
import { generateDemoData } from "${base}train/demo/grammar.ts";

const work = Deno.args[0];
const data = generateDemoData({ seed: 3, train: 64, validation: 16, test: 16 });
const labels = ["unacceptable", "acceptable"];
const asDataset = (name, examples) => ({ name, labels, examples: examples.map((e) => ({ text: e.text, label: e.label })) });

// A vocabulary of every word and punctuation mark the sentences use.
const words = new Set();
for (const e of [...data.train, ...data.validation, ...data.test]) {
  for (const w of e.text.toLowerCase().match(/\\w+|[^\\w\\s]/g)) words.add(w);
}
const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", ...[...words].sort()]);
const encoded = tokenizer.encodeBatch(data.train.map((e) => e.text), { maxLength: 24 });
const unknown = Array.from(encoded.inputIds).filter((id) => id === tokenizer.unkId).length;

const config = createModelConfig({ vocabSize: tokenizer.vocabSize, labels });
const losses = [];
const result = await fineTune({ config, weights: initWeights(config, 3) }, {
  train: asDataset("train", data.train),
  validation: asDataset("validation", data.validation),
}, {
  tokenizer, output: work + "/run", epochs: 1, batchSize: 16, maxLength: 24, lr: 1e-3, dynamicPadding: true,
  onStep: (log) => losses.push(log.loss),
});
await exportModel(work + "/run", { output: work + "/export", maxLength: 24 });
const classifier = await loadClassifier(work + "/export");
const texts = data.test.slice(0, 4).map((e) => e.text);
const answers = await classifier.classify(texts);
await classifier.release();
console.log(JSON.stringify({
  vocabSize: tokenizer.vocabSize, unknown, losses, steps: result.steps.length,
  validation: result.epochs[0].validation, texts, answers,
}));
`;
}

Deno.test({
  name: "mod.ts imported from an http URL without deno.json tokenizes, trains, exports and classifies",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const requested: string[] = [];
    const server = serveRepository(requested);
    const work = await Deno.makeTempDir({ prefix: "url_import_" });
    // The normal cache: its npm packages are what lets the script run offline.
    const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
      .output();
    const denoDir = JSON.parse(new TextDecoder().decode(info.stdout)).denoDir as string;
    try {
      const base = `http://127.0.0.1:${server.addr.port}/`;
      const script = join(work, "user.ts");
      await Deno.writeTextFile(script, userScript(base));
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-config", "--no-lock", `--reload=${base}`, script, work],
        cwd: work,
        // Offline: any download other than from our server goes to a closed port and fails.
        env: {
          DENO_DIR: denoDir,
          NO_COLOR: "1",
          HTTP_PROXY: CLOSED_PROXY,
          HTTPS_PROXY: CLOSED_PROXY,
          NO_PROXY: "127.0.0.1",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(stdout);
      const err = new TextDecoder().decode(stderr);
      if (code !== 0) throw new Error(`The script exited with ${code}:\n${out}\n${err.slice(-4000)}`);
      const r = JSON.parse(out.trim().split("\n").at(-1)!);

      // Every module came over HTTP: mod.ts and what it reaches, not just the entry point.
      for (const path of ["/mod.ts", "/train/api.ts", "/kernels/matmul.ts", "/serve/classifier.ts"]) {
        if (!requested.includes(path)) {
          throw new Error(`${path} was never fetched; got ${requested.join(", ")}`);
        }
      }
      if (r.unknown !== 0) throw new Error(`The built vocabulary left ${r.unknown} [UNK] tokens`);
      if (r.steps !== 4 || r.losses.length !== 4 || !r.losses.every(Number.isFinite)) {
        throw new Error(
          `Expected 4 finite step losses (64 examples, batch 16), got ${JSON.stringify(r.losses)}`,
        );
      }
      if (r.validation.examples !== 16 || !(r.validation.accuracy >= 0 && r.validation.accuracy <= 1)) {
        throw new Error(`Validation figures: ${JSON.stringify(r.validation)}`);
      }
      if (r.answers.length !== r.texts.length) {
        throw new Error(`${r.answers.length} answers for ${r.texts.length}`);
      }
      for (const a of r.answers) {
        const total = a.probabilities.unacceptable + a.probabilities.acceptable;
        if (
          !["unacceptable", "acceptable"].includes(a.label) || Math.abs(total - 1) > 1e-6 ||
          a.score !== a.probabilities[a.label] || a.truncated !== false
        ) {
          throw new Error(`Malformed answer ${JSON.stringify(a)}`);
        }
      }
    } finally {
      await server.shutdown();
      await Deno.remove(work, { recursive: true });
      // The modules fetched from this one-off port are of no use in the cache afterwards.
      const fetched = join(denoDir, "remote", "http", `127.0.0.1_PORT${server.addr.port}`);
      await Deno.remove(fetched, { recursive: true }).catch(() => {});
    }
  },
});
