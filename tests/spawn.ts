/**
 * Starting the real server (`deno serve serve/main.ts`) as a child process on a free loopback port,
 * for tests and benchmarks that must talk HTTP to it.
 * @module
 */

import { ENV_NAMES } from "../serve/config.ts";
import { SERVE_PROCESS } from "./permissions.ts";

const MAIN = new URL("../serve/main.ts", import.meta.url).pathname;

/**
 * The child's environment: this process's, with every server setting reset (empty means default),
 * glibc's malloc settings as `deno task serve` sets them (SERVE_PROCESS in tests/permissions.ts), and
 * `env` on top.
 */
function serverEnv(env: Record<string, string> = {}): Record<string, string> {
  const reset = Object.fromEntries(Object.values(ENV_NAMES).map((name) => [name, ""]));
  return { ...reset, NO_COLOR: "1", ...SERVE_PROCESS.env, ...env };
}

/** Options of {@linkcode spawnServer}. */
export interface SpawnOptions {
  /** Server settings (MODEL_DIR, BATCH_WINDOW_MS, ...); ones not given take their defaults, whatever this process's environment says. */
  env?: Record<string, string>;
  /** Run `deno serve --parallel` with this many workers (sets DENO_JOBS). */
  workers?: number;
  /** Give up waiting for /health after this long. @default 60000 */
  timeoutMs?: number;
  /** Extra `deno serve` flags, e.g. `--v8-flags=...` to compare with the task's. */
  denoFlags?: string[];
}

/** A running server process. */
export interface ServerProcess {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The server's process id (one process, whatever the number of workers), e.g. to read its memory. */
  pid: number;
  /** Everything the server wrote to stdout and stderr so far. */
  output(): string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  close(): Promise<void>;
}

/**
 * A TCP port nobody listens on right now (bind port 0, read it, close). Another process could take
 * it before the caller binds it; fine for loopback tests.
 * @example
 * ```ts
 * import { freePort } from "./spawn.ts";
 * console.log(freePort() > 0); // true
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function collect(stream: ReadableStream<Uint8Array>, sink: string[]): Promise<void> {
  return stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (text) => void sink.push(text) }),
  ).catch(() => {});
}

/**
 * The `deno serve` command line for `port` (permissions: read, env, net; ORT's wasm is a file read),
 * with the serve task's V8 flags unless `denoFlags` has its own --v8-flags.
 */
function serveArgs(port: number, workers: number | undefined, denoFlags: string[] = []): string[] {
  const parallel = workers !== undefined ? ["--parallel"] : [];
  const v8 = denoFlags.some((f) => f.startsWith("--v8-flags")) ? [] : [SERVE_PROCESS.v8Flags];
  return [
    "serve",
    "-A",
    ...parallel,
    ...v8,
    ...denoFlags,
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    MAIN,
  ];
}

/**
 * Starts `deno serve serve/main.ts` on a free port and waits until `GET /health` answers.
 * @throws {Error} with the server's output when it exits first (a bad MODEL_DIR) or never gets ready.
 * @example
 * ```ts ignore
 * import { spawnServer } from "./spawn.ts";
 * const server = await spawnServer({ env: { MODEL_DIR: "runs/demo/export" } });
 * console.log(await (await fetch(`${server.origin}/health`)).json()); // { status: "ok" }
 * await server.close();
 * ```
 */
export async function spawnServer(options: SpawnOptions = {}): Promise<ServerProcess> {
  const port = freePort();
  const env = serverEnv(options.env);
  if (options.workers !== undefined) env.DENO_JOBS = String(options.workers);
  const child = new Deno.Command(Deno.execPath(), {
    args: serveArgs(port, options.workers, options.denoFlags),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output: string[] = [];
  const drained = Promise.all([collect(child.stdout, output), collect(child.stderr, output)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const origin = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await status;
    await drained;
  };

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (true) {
    if (exited) {
      await drained;
      throw new Error(
        `Server exited with code ${(await status).code} before it was ready:\n${output.join("")}`,
      );
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(
        `Server on ${origin} not ready after ${options.timeoutMs ?? 60_000} ms:\n${output.join("")}`,
      );
    }
    const ok = await fetch(`${origin}/health`).then(async (r) => {
      await r.body?.cancel();
      return r.ok;
    }, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { origin, pid: child.pid, output: () => output.join(""), close };
}

/**
 * Runs `deno serve serve/main.ts` expecting it to fail at start-up; returns its exit code and output.
 * If it is still running after `timeoutMs` it is killed and reported with code -1.
 * @example
 * ```ts ignore
 * import { serveExpectingFailure } from "./spawn.ts";
 * const { code, output } = await serveExpectingFailure({ MODEL_DIR: "/no/such/folder" });
 * console.log(code, output.includes("/no/such/folder")); // 1 true
 * ```
 */
export async function serveExpectingFailure(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: serveArgs(freePort(), undefined),
    env: serverEnv(env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder();
  return { code: timedOut ? -1 : code, output: text.decode(stdout) + text.decode(stderr) };
}
