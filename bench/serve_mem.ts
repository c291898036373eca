/**
 * Serve memory probe (issue 12 section 2): starts the real server (`deno serve serve/main.ts`, as
 * tests/spawn.ts starts it: MALLOC_ARENA_MAX=1 like `deno task serve`) on an export folder, sends
 * `--requests` (200) mixed-length `POST /classify` requests from `--concurrency` (8) clients (every
 * fifth a batch of 8 texts; 2-92 words each), and reports the server's VmRSS after start, VmRSS after
 * the requests ("steady") and VmHWM after start and at the end (peak over its life, loading included),
 * from /proc/<pid>/status.
 *
 * Run: `deno run -A bench/serve_mem.ts <export folder> [--requests 200] [--concurrency 8] [NAME=value ...]
 * [--deno-flag ...]` (NAME=value: server environment, e.g. MAX_BATCH_TOKENS=100000 or MALLOC_ARENA_MAX=0
 * to compare; any other `--flag` or `--flag=value` goes to `deno serve`, e.g. `--v8-flags=...`).
 * Prints one JSON line. Linux only (reads /proc).
 * @module
 */

import { spawnServer } from "../tests/spawn.ts";
import { Rng } from "../kernels/random.ts";
import { readRssKb } from "./soak.ts";

const WORDS = ("the a dog cat runs quickly over lazy brown fox jumped while singing about " +
  "extraordinarily complicated linguistic phenomena").split(" ");

/** What {@linkcode probeServeMemory} measured, MiB. */
export interface ServeMemory {
  startMiB: number;
  /** VmHWM right after start: the loading peak. */
  startPeakMiB: number;
  steadyMiB: number;
  peakMiB: number;
  requests: number;
  errors: number;
}

/** Runs the probe; `env` goes to the server on top of the defaults. */
export async function probeServeMemory(
  modelDir: string,
  requests = 200,
  concurrency = 8,
  env: Record<string, string> = {},
  denoFlags: string[] = [],
): Promise<ServeMemory> {
  const rng = new Rng(7);
  const sentence = () =>
    Array.from({ length: 2 + Math.floor(rng.uniform() ** 2 * 90) }, () => WORDS[rng.int(WORDS.length)])
      .join(" ") + ".";
  const bodies = Array.from(
    { length: requests },
    (_, i) => JSON.stringify({ texts: Array.from({ length: i % 5 === 0 ? 8 : 1 }, sentence) }),
  );
  const server = await spawnServer({
    env: { MODEL_DIR: modelDir, ACCESS_LOG: "0", ...env },
    denoFlags,
  });
  const mib = (field: "VmRSS" | "VmHWM") => Math.round((readRssKb(server.pid, field) ?? NaN) / 1024);
  try {
    const startMiB = mib("VmRSS"), startPeakMiB = mib("VmHWM");
    let next = 0, errors = 0;
    const client = async () => {
      while (next < bodies.length) {
        const body = bodies[next++];
        const response = await fetch(`${server.origin}/classify`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        if (!response.ok) errors++;
        await response.body?.cancel();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, client));
    return { startMiB, startPeakMiB, steadyMiB: mib("VmRSS"), peakMiB: mib("VmHWM"), requests, errors };
  } finally {
    await server.close();
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  const take = (flag: string, fallback: number) => {
    const at = args.indexOf(flag);
    if (at < 0) return fallback;
    const value = Number(args[at + 1]);
    args.splice(at, 2);
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${flag} needs a whole number >= 1`);
    return value;
  };
  const requests = take("--requests", 200), concurrency = take("--concurrency", 8);
  const denoFlags = args.filter((a) => a.startsWith("--"));
  const env = Object.fromEntries(
    args.filter((a) => a.includes("=") && !a.startsWith("--")).map((
      a,
    ) => [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]),
  );
  const dir = args.find((a) => !a.includes("=") && !a.startsWith("--"));
  if (dir === undefined) {
    console.error("usage: serve_mem.ts <export folder> [--requests 200] [--concurrency 8] [NAME=value ...]");
    Deno.exit(2);
  }
  const result = await probeServeMemory(dir, requests, concurrency, env, denoFlags);
  console.log(JSON.stringify({ model: dir, env, denoFlags, concurrency, ...result }));
  if (result.errors > 0) Deno.exit(1);
}
