/**
 * HTTP load generator for bench/serve.ts, run as its own process so it does not share an event
 * loop (or a CPU accounting) with the server. Reads one JSON object from stdin:
 * `{ url, concurrency, seconds, warmupSeconds?, bodies }`, then keeps `concurrency` keep-alive
 * connections busy with POSTs of `bodies` (round robin) for a warm-up and then `seconds`, and prints
 * one JSON line: `{ requests, errors, seconds, p50Ms, p99Ms, meanMs, maxMs, throughput, answered }`
 * (latencies and counts cover the measured period only; throughput is successful requests a second).
 *
 * Run: `echo '{"url": "http://127.0.0.1:8000/classify", "concurrency": 8, "seconds": 5,
 * "bodies": ["{\"text\": \"hi\"}"]}' | deno run --allow-net bench/_load.ts`
 * @module
 */

/** The job read from stdin. */
export interface LoadJob {
  url: string;
  concurrency: number;
  seconds: number;
  /** Requests before the measured period, not counted. @default 0 */
  warmupSeconds?: number;
  /** Request bodies (JSON text), sent in turn. */
  bodies: string[];
}

/** What the load generator prints. */
export interface LoadSummary {
  requests: number;
  errors: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  /** Successful requests a second over the measured period. */
  throughput: number;
  /** Successful requests of the whole run, warm-up and straddlers included (what the server did). */
  answered: number;
  /** The first error seen, if any (status and body, or the exception). */
  firstError?: string;
}

/** The q-quantile (0..1) of ascending `sorted`, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Runs a job against a live server and summarizes it. */
export async function runLoad(job: LoadJob): Promise<LoadSummary> {
  if (!(job.concurrency >= 1) || !(job.seconds > 0) || job.bodies.length === 0) {
    throw new RangeError(`Bad load job ${JSON.stringify({ ...job, bodies: job.bodies.length })}`);
  }
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  let answered = 0;
  const start = performance.now();
  const measureFrom = start + (job.warmupSeconds ?? 0) * 1000;
  const end = measureFrom + job.seconds * 1000;

  async function client(): Promise<void> {
    while (performance.now() < end) {
      const body = job.bodies[next++ % job.bodies.length];
      const t0 = performance.now();
      let ok = false;
      let error: string | undefined;
      try {
        const response = await fetch(job.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        const text = await response.text(); // read it all so the connection is reused
        ok = response.ok;
        if (!ok) error = `HTTP ${response.status}: ${text.slice(0, 200)}`;
      } catch (e) {
        error = String(e);
      }
      const t1 = performance.now();
      if (ok) answered++;
      if (t0 < measureFrom || t1 > end) continue; // warm-up, or straddling the end
      if (ok) latencies.push(t1 - t0);
      else {
        errors++;
        firstError ??= error;
      }
    }
  }
  await Promise.all(Array.from({ length: job.concurrency }, client));
  const seconds = (end - measureFrom) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  return {
    requests: sorted.length + errors,
    errors,
    seconds,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    throughput: sorted.length / seconds,
    answered,
    ...(firstError !== undefined ? { firstError } : {}),
  };
}

/**
 * Runs {@linkcode runLoad} in a second Deno process (this file as a script, loopback network only), so
 * the load generator does not share the measured server's event loop.
 */
export async function spawnLoad(job: LoadJob): Promise<LoadSummary> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", new URL(import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(job)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder();
  if (code !== 0) throw new Error(`Load generator failed (exit ${code}): ${text.decode(stderr)}`);
  return JSON.parse(text.decode(stdout));
}

if (import.meta.main) {
  const job: LoadJob = JSON.parse(await new Response(Deno.stdin.readable).text());
  console.log(JSON.stringify(await runLoad(job)));
}
