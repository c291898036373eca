import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { dirname, isAbsolute, join, relative } from "node:path";
import {
  cachePath,
  download,
  DownloadError,
  downloadModelFiles,
  hubDownload,
  hubFileUrl,
  hubToken,
} from "./hub.ts";
import { gitBlobSha1, type HubRepo, sha256Hex, startHubServer } from "../tests/hub_server.ts";
import { startTestServer } from "./_test_server.ts";
import type { TestServer } from "./_test_server.ts";
import { assertRejectsWith, assertThrowsWith } from "./data/_assertions.ts";
import { Rng } from "../kernels/random.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Seeded random bytes, so a wrong splice or offset shows up as a hash mismatch. */
function randomBytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.nextU32() & 0xff);
}

/** Runs `fn` with a server and a fresh cache folder, cleaning both up. */
async function withServer(
  files: Parameters<typeof startTestServer>[0],
  fn: (server: TestServer, cacheDir: string) => Promise<void>,
): Promise<void> {
  const server = startTestServer(files);
  const cacheDir = await Deno.makeTempDir();
  try {
    await fn(server, cacheDir);
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
}

Deno.test("cachePath() is stable, stays inside the cache and keeps distinct URLs apart", () => {
  const dir = "/cache";
  assert.equal(
    cachePath("https://huggingface.co/bert-base-uncased/resolve/main/config.json", dir),
    "/cache/huggingface.co/bert-base-uncased/resolve/main/config.json",
  );
  const odd = [
    "http://127.0.0.1:8080/a%20b/..%2F..%2Fetc/passwd?x=1",
    "http://127.0.0.1:8080/a_b/passwd",
    "http://127.0.0.1:8080/a%20b/passwd",
    "http://127.0.0.1:8080/a%20b/passwd?x=2",
    "http://127.0.0.1:8080/",
  ];
  const paths = odd.map((u) => cachePath(u, dir));
  assert.equal(new Set(paths).size, odd.length);
  for (const p of paths) {
    const rel = relative(dir, p);
    assert.ok(!rel.startsWith("..") && !isAbsolute(rel), p);
    assert.match(rel, /^[A-Za-z0-9._\/-]+$/, p);
  }
  assert.deepEqual(odd.map((u) => cachePath(u, dir)), paths);
});

Deno.test("hubFileUrl() builds {endpoint}/{id}/resolve/{revision}/{file}", () => {
  assert.equal(
    hubFileUrl("google/bert_uncased_L-2_H-128_A-2", "config.json", { endpoint: "https://hf.example/" }),
    "https://hf.example/google/bert_uncased_L-2_H-128_A-2/resolve/main/config.json",
  );
  assert.equal(
    hubFileUrl("bert-base-uncased", "vocab.txt", { endpoint: "https://h", revision: "refs/pr/1" }),
    "https://h/bert-base-uncased/resolve/refs%2Fpr%2F1/vocab.txt",
  );
  const saved = Deno.env.get("HF_ENDPOINT");
  try {
    Deno.env.set("HF_ENDPOINT", "http://mirror.local");
    assert.equal(hubFileUrl("m", "a.json"), "http://mirror.local/m/resolve/main/a.json");
    Deno.env.delete("HF_ENDPOINT");
    assert.equal(hubFileUrl("m", "a.json"), "https://huggingface.co/m/resolve/main/a.json");
  } finally {
    if (saved === undefined) Deno.env.delete("HF_ENDPOINT");
    else Deno.env.set("HF_ENDPOINT", saved);
  }
  assertThrowsWith(() => hubFileUrl("../etc", "x"), TypeError, `Model id "../etc"`, "--model <folder>");
});

Deno.test("download() fetches into the cache, reports progress, and reuses the cached file", async () => {
  const body = randomBytes(300_000, 1);
  await withServer({ "/f.bin": { body } }, async (server, cacheDir) => {
    const progress: [number, number | null][] = [];
    const path = await download(`${server.origin}/f.bin`, {
      cacheDir,
      onProgress: (d, t) => progress.push([d, t]),
    });
    assert.equal(path, cachePath(`${server.origin}/f.bin`, cacheDir));
    assert.deepEqual(await Deno.readFile(path), body);
    assert.deepEqual(progress.at(-1), [body.length, body.length]);
    assert.ok(progress.every(([, t]) => t === body.length));
    await assert.rejects(Deno.stat(`${path}.part`), Deno.errors.NotFound);
    assert.equal(await download(`${server.origin}/f.bin`, { cacheDir }), path);
    assert.equal(server.requests.length, 1);
  });
});

Deno.test("download() resumes a partial .part file with a Range request", async () => {
  const body = randomBytes(200_000, 2);
  await withServer({ "/f.bin": { body } }, async (server, cacheDir) => {
    const url = `${server.origin}/f.bin`;
    const path = cachePath(url, cacheDir);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeFile(`${path}.part`, body.slice(0, 123_456));
    const progress: number[] = [];
    await download(url, { cacheDir, sha256: sha256(body), onProgress: (d) => progress.push(d) });
    assert.deepEqual(server.requests, [{ path: "/f.bin", range: "bytes=123456-" }]);
    assert.equal(progress[0], 123_456);
    assert.deepEqual(await Deno.readFile(path), body);
  });
});

Deno.test("download() starts over when a resumed file fails its hash or the range is unsatisfiable", async () => {
  const body = randomBytes(30_000, 9);
  await withServer({ "/f.bin": { body } }, async (server, cacheDir) => {
    const url = `${server.origin}/f.bin`;
    const path = cachePath(url, cacheDir);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    // A prefix that is not the file's: the spliced result fails the hash, so it is fetched whole.
    await Deno.writeFile(`${path}.part`, randomBytes(5_000, 10));
    await download(url, { cacheDir, sha256: sha256(body) });
    assert.deepEqual(server.requests.map((r) => r.range), ["bytes=5000-", null]);
    assert.deepEqual(await Deno.readFile(path), body);

    // A .part as long as the file: the server answers 416 and the download starts over.
    await Deno.remove(path);
    await Deno.writeFile(`${path}.part`, body);
    server.requests.length = 0;
    await download(url, { cacheDir });
    assert.deepEqual(server.requests.map((r) => r.range), ["bytes=30000-", null]);
    assert.deepEqual(await Deno.readFile(path), body);
  });
});

Deno.test("download() starts over when the server ignores Range and answers 200", async () => {
  const body = randomBytes(50_000, 3);
  await withServer({ "/f.bin": { body } }, async (server, cacheDir) => {
    server.ignoreRange = true;
    const url = `${server.origin}/f.bin`;
    const path = cachePath(url, cacheDir);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeFile(`${path}.part`, randomBytes(10_000, 99)); // a stale prefix
    await download(url, { cacheDir });
    assert.equal(server.requests[0].range, "bytes=10000-");
    assert.deepEqual(await Deno.readFile(path), body);
  });
});

Deno.test("download() detects a corrupt cached file by sha256 and fetches it again", async () => {
  const body = randomBytes(40_000, 4);
  await withServer({ "/f.bin": { body } }, async (server, cacheDir) => {
    const url = `${server.origin}/f.bin`;
    const path = await download(url, { cacheDir, sha256: sha256(body) });
    const corrupt = body.slice();
    corrupt[777] ^= 1;
    await Deno.writeFile(path, corrupt);
    await download(url, { cacheDir, sha256: sha256(body).toUpperCase() });
    assert.equal(server.requests.length, 2);
    assert.deepEqual(await Deno.readFile(path), body);
    // The hash is remembered beside the file, so a call without it still re-verifies.
    await Deno.writeFile(path, corrupt);
    await download(url, { cacheDir });
    assert.equal(server.requests.length, 3);
    assert.deepEqual(await Deno.readFile(path), body);
  });
});

Deno.test("download() rejects a body whose sha256 differs from the option or the server's ETag", async () => {
  const body = randomBytes(10_000, 5);
  const other = sha256(randomBytes(10, 6));
  await withServer({
    "/plain.bin": { body },
    "/etag.bin": { body, headers: { etag: `"${other}"` } },
    "/good-etag.bin": { body, headers: { etag: `"${sha256(body)}"` } },
  }, async (server, cacheDir) => {
    await assertRejectsWith(
      () => download(`${server.origin}/plain.bin`, { cacheDir, sha256: other }),
      DownloadError,
      `Download of "${server.origin}/plain.bin" has SHA-256 ${sha256(body)}, expected ${other}`,
    );
    await assertRejectsWith(
      () => download(`${server.origin}/etag.bin`, { cacheDir }),
      DownloadError,
      `expected ${other}`,
    );
    for (const name of ["plain.bin", "etag.bin"]) {
      const path = cachePath(`${server.origin}/${name}`, cacheDir);
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
      await assert.rejects(Deno.stat(`${path}.part`), Deno.errors.NotFound);
    }
    const path = await download(`${server.origin}/good-etag.bin`, { cacheDir });
    assert.equal((await Deno.readTextFile(`${path}.sha256`)).trim(), sha256(body));
    await assertRejectsWith(
      () => download("http://x/", { sha256: "abc" }),
      TypeError,
      `sha256 "abc" is not 64 hex digits`,
    );
  });
});

Deno.test("download() follows a redirect and checks the X-Linked-ETag sent with it", async () => {
  const body = randomBytes(20_000, 7);
  await withServer({
    "/m/resolve/main/model.safetensors": {
      redirectTo: "/cdn/blob",
      headers: { "x-linked-etag": `"${sha256(randomBytes(5, 8))}"` },
    },
    "/m/resolve/main/ok.bin": { redirectTo: "/cdn/blob", headers: { "x-linked-etag": `"${sha256(body)}"` } },
    "/cdn/blob": { body },
  }, async (server, cacheDir) => {
    const path = await download(`${server.origin}/m/resolve/main/ok.bin`, { cacheDir });
    assert.deepEqual(await Deno.readFile(path), body);
    assert.deepEqual(server.requests.map((r) => r.path), ["/m/resolve/main/ok.bin", "/cdn/blob"]);
    await assertRejectsWith(
      () => download(`${server.origin}/m/resolve/main/model.safetensors`, { cacheDir }),
      DownloadError,
      "has SHA-256",
    );
  });
});

Deno.test("download() keeps a short body as .part and says to run again", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const url = "http://short.test/f.bin";
    // A server that promises 100 bytes and sends 60.
    const fetchShort = (() =>
      Promise.resolve(
        new Response(new Uint8Array(60), { headers: { "content-length": "100" } }),
      )) as typeof fetch;
    await assertRejectsWith(
      () => download(url, { cacheDir, fetch: fetchShort }),
      DownloadError,
      `Download of "${url}" ended after 60 of 100 bytes; run again to resume`,
    );
    assert.equal((await Deno.stat(`${cachePath(url, cacheDir)}.part`)).size, 60);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("download() names the URL on 404 and on network failure", async () => {
  const cacheDir = await Deno.makeTempDir();
  const server = startTestServer({});
  const origin = server.origin;
  try {
    await assertRejectsWith(
      () => download(`${origin}/nope.zip`, { cacheDir }),
      DownloadError,
      `Cannot download "${origin}/nope.zip": HTTP 404`,
      "pass a local copy of the file instead",
    );
    await server.close();
    const error = await download(`${origin}/gone.zip`, { cacheDir }).catch((e) => e);
    assert.ok(error instanceof DownloadError, String(error));
    assert.equal(error.status, undefined);
    assert.ok(error.message.startsWith(`Cannot download "${origin}/gone.zip": `), error.message);
    assert.ok(error.message.includes("check the network connection"), error.message);
  } finally {
    await server.close().catch(() => {});
    await Deno.remove(cacheDir, { recursive: true });
  }
});

const text = (t: string) => new TextEncoder().encode(t);

/** Runs `fn` with a hub server and a fresh HF cache folder, cleaning both up. */
async function withHub(
  repos: Record<string, HubRepo>,
  fn: (hub: ReturnType<typeof startHubServer>, cacheDir: string) => Promise<void>,
): Promise<void> {
  const hub = startHubServer(repos);
  const cacheDir = await Deno.makeTempDir();
  try {
    await fn(hub, cacheDir);
  } finally {
    await hub.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
}

const weights = randomBytes(5000, 7);
const tinyRepo = (): HubRepo => ({
  files: {
    "config.json": text('{"hidden_size": 8}'),
    "model.safetensors": weights,
    "vocab.txt": text("[PAD]\n"),
  },
  lfs: ["model.safetensors"],
  commit: "a".repeat(40),
  refs: { v1: "b".repeat(40) },
  private: true,
});

Deno.test("downloadModelFiles() writes huggingface_hub's cache layout: blobs by etag, snapshot links, refs", async () => {
  await withHub({ "org/tiny": tinyRepo() }, async (hub, cacheDir) => {
    const folder = await downloadModelFiles("org/tiny", { cacheDir, endpoint: hub.origin, token: hub.token });
    const storage = join(cacheDir, "models--org--tiny");
    assert.equal(folder, join(storage, "snapshots", "a".repeat(40)));
    assert.equal(await Deno.readTextFile(join(storage, "refs", "main")), "a".repeat(40));
    // LFS file: blob named by its sha256; small file: by its git blob sha1; snapshots link relatively.
    assert.deepEqual(await Deno.readFile(join(storage, "blobs", sha256Hex(weights))), weights);
    const configBlob = gitBlobSha1(text('{"hidden_size": 8}'));
    assert.equal(await Deno.readLink(join(folder, "config.json")), join("..", "..", "blobs", configBlob));
    assert.equal(await Deno.readTextFile(join(folder, "config.json")), '{"hidden_size": 8}');
    const names = [...Deno.readDirSync(folder)].map((e) => e.name).sort();
    assert.deepEqual(names, ["config.json", "model.safetensors", "vocab.txt"]);
    // 404s are remembered like huggingface_hub does, so the fallbacks cost nothing next time.
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      await Deno.stat(join(storage, ".no_exist", "a".repeat(40), f));
    }
    // The token went to the hub on every request and never to the CDN.
    for (const r of hub.requests) {
      assert.equal(r.authorization, r.path.startsWith("/cdn/") ? null : `Bearer ${hub.token}`, r.path);
    }
    assert.ok(
      hub.requests.some((r) => r.method === "HEAD") && hub.requests.some((r) => r.path.startsWith("/cdn/")),
    );
    hub.requests.length = 0;
    assert.equal(
      await downloadModelFiles("org/tiny", { cacheDir, endpoint: hub.origin, token: hub.token }),
      folder,
    );
    assert.deepEqual(hub.requests, [], "a cached revision is served without any request");
  });
});

Deno.test("downloadModelFiles() reuses a cache laid out by Python's huggingface_hub, offline", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    // What hf_hub_download leaves: blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>, refs/main.
    const storage = join(cacheDir, "models--google--bert_uncased_L-2_H-128_A-2");
    const commit = "30b0a37ccaaa32f332884b96992754e246e48c5f";
    await Deno.mkdir(join(storage, "blobs"), { recursive: true });
    await Deno.mkdir(join(storage, "snapshots", commit), { recursive: true });
    await Deno.mkdir(join(storage, "refs"));
    await Deno.writeTextFile(join(storage, "refs", "main"), commit);
    for (const [file, body] of [["config.json", "{}"], ["model.safetensors", "st"], ["vocab.txt", "v"]]) {
      const etag = gitBlobSha1(text(body));
      await Deno.writeTextFile(join(storage, "blobs", etag), body);
      await Deno.symlink(join("..", "..", "blobs", etag), join(storage, "snapshots", commit, file));
    }
    await Deno.mkdir(join(storage, ".no_exist", commit), { recursive: true });
    await Deno.writeTextFile(join(storage, ".no_exist", commit, "tokenizer.json"), "");
    await Deno.writeTextFile(join(storage, ".no_exist", commit, "tokenizer_config.json"), "");
    const failingFetch = (() => Promise.reject(new Error("no network in this test"))) as typeof fetch;
    const folder = await downloadModelFiles("google/bert_uncased_L-2_H-128_A-2", {
      cacheDir,
      fetch: failingFetch,
    });
    assert.equal(folder, join(storage, "snapshots", commit));
    // HF_HUB_OFFLINE: a file not in the cache names the cache instead of trying the network.
    Deno.env.set("HF_HUB_OFFLINE", "1");
    try {
      await assertRejectsWith(
        () => downloadModelFiles("org/other", { cacheDir, fetch: failingFetch }),
        DownloadError,
        "is not in the cache",
        "HF_HUB_OFFLINE",
      );
    } finally {
      Deno.env.delete("HF_HUB_OFFLINE");
    }
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("hubDownload() needs the token for a private repo: --token, HF_TOKEN, or the token file", async () => {
  await withHub({ "org/tiny": tinyRepo() }, async (hub, cacheDir) => {
    const saved = ["HF_TOKEN", "HF_HOME", "HF_TOKEN_PATH"].map((k) => [k, Deno.env.get(k)] as const);
    try {
      for (const k of ["HF_TOKEN", "HF_TOKEN_PATH"]) Deno.env.delete(k);
      Deno.env.set("HF_HOME", cacheDir); // no token file there
      await assertRejectsWith(
        () => hubDownload("org/tiny", "config.json", { cacheDir, endpoint: hub.origin }),
        DownloadError,
        "HTTP 401",
        "set HF_TOKEN (or pass --token)",
      );
      await assertRejectsWith(
        () => hubDownload("org/tiny", "config.json", { cacheDir, endpoint: hub.origin, token: "hf_wrong" }),
        DownloadError,
        "a token was sent",
      );
      assert.equal(await hubToken(), undefined);
      Deno.env.set("HF_TOKEN", hub.token);
      assert.equal(await hubToken(), hub.token);
      await hubDownload("org/tiny", "config.json", { cacheDir, endpoint: hub.origin });
      Deno.env.delete("HF_TOKEN");
      await Deno.writeTextFile(join(cacheDir, "token"), `${hub.token}\n`);
      assert.equal(await hubToken(), hub.token);
      await hubDownload("org/tiny", "vocab.txt", { cacheDir, endpoint: hub.origin });
    } finally {
      for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
  });
});

Deno.test("hubDownload() resumes blobs/<sha256>.incomplete with a Range request to the CDN, and takes revisions", async () => {
  await withHub({ "org/tiny": tinyRepo() }, async (hub, cacheDir) => {
    const storage = join(cacheDir, "models--org--tiny");
    const blob = join(storage, "blobs", sha256Hex(weights));
    await Deno.mkdir(dirname(blob), { recursive: true });
    await Deno.writeFile(`${blob}.incomplete`, weights.slice(0, 1234));
    const seen: number[] = [];
    const path = await hubDownload("org/tiny", "model.safetensors", {
      cacheDir,
      endpoint: hub.origin,
      token: hub.token,
      revision: "v1",
      onProgress: (done) => seen.push(done),
    });
    assert.equal(path, join(storage, "snapshots", "b".repeat(40), "model.safetensors"));
    assert.deepEqual(await Deno.readFile(path), weights);
    assert.equal(seen[0], 1234);
    assert.deepEqual(hub.requests.filter((r) => r.path.startsWith("/cdn/")).map((r) => r.range), [
      "bytes=1234-",
    ]);
    assert.equal(await Deno.readTextFile(join(storage, "refs", "v1")), "b".repeat(40));
    // A commit hash as the revision writes no ref and is reused without a request.
    hub.requests.length = 0;
    const byCommit = await hubDownload("org/tiny", "model.safetensors", {
      cacheDir,
      revision: "b".repeat(40),
    });
    assert.equal(byCommit, path);
    assert.deepEqual(hub.requests, []);
    await assertRejectsWith(
      () =>
        hubDownload("org/tiny", "config.json", {
          cacheDir,
          endpoint: hub.origin,
          token: hub.token,
          revision: "nope",
        }),
      DownloadError,
      "HTTP 404",
    );
  });
});

Deno.test("hubDownload() refuses a server without the hub's headers (a wrong HF_ENDPOINT)", async () => {
  await withServer({ "/m/resolve/main/config.json": { body: text("{}") } }, async (server, cacheDir) => {
    await assertRejectsWith(
      () => hubDownload("m", "config.json", { cacheDir, endpoint: server.origin, token: "x" }),
      DownloadError,
      "is not a Hugging Face hub",
      "HF_ENDPOINT",
    );
  });
});

Deno.test("downloadModelFiles() without any weights names the model and the local alternative", async () => {
  await withHub({
    m: { files: { "config.json": text("{}"), "tokenizer.json": text("{}") } },
  }, async (hub, cacheDir) => {
    await assertRejectsWith(
      () => downloadModelFiles("m", { cacheDir, endpoint: hub.origin }),
      DownloadError,
      `Model "m" has neither model.safetensors nor pytorch_model.bin at ${hub.origin}/m/resolve/main/`,
      "pass --model <folder> with config.json, model.safetensors and tokenizer files",
    );
    await assertRejectsWith(
      () => downloadModelFiles("absent", { cacheDir, endpoint: hub.origin }),
      DownloadError,
      `Model "absent" has no config.json at ${hub.origin}/absent/resolve/main/ (HTTP 404)`,
      "pass --model <folder>",
    );
  });
});

Deno.test("downloadModelFiles() under path-scoped --allow-write hard-links snapshots to their blobs", async () => {
  await withHub({ "org/tiny": tinyRepo() }, async (hub, cacheDir) => {
    const script = join(cacheDir, "fetch.ts");
    await Deno.writeTextFile(
      script,
      `import { downloadModelFiles } from ${JSON.stringify(new URL("./hub.ts", import.meta.url).href)};
console.log(await downloadModelFiles("org/tiny", { cacheDir: ${
        JSON.stringify(cacheDir)
      }, endpoint: "${hub.origin}", token: "${hub.token}" }));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        `--allow-write=${cacheDir}`,
        "--allow-net=127.0.0.1",
        "--allow-env",
        "--allow-sys=homedir",
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const folder = new TextDecoder().decode(out.stdout).trim();
    const snapshot = await Deno.lstat(join(folder, "model.safetensors"));
    const blob = await Deno.stat(join(cacheDir, "models--org--tiny", "blobs", sha256Hex(weights)));
    assert.ok(snapshot.isFile && !snapshot.isSymlink);
    if (Deno.build.os !== "windows") assert.equal(snapshot.ino, blob.ino, "a hard link, not a copy");
  });
});
