/**
 * Test-only loopback file server for download tests: serves bytes by path, honours
 * `Range: bytes=N-` with 206 (unless told to ignore it), can redirect, and records every request.
 * @module
 */

/** One served path. */
export interface ServedFile {
  body?: Uint8Array<ArrayBuffer>;
  /** Extra response headers (ETag, X-Linked-ETag, ...). */
  headers?: Record<string, string>;
  /** Answer 302 to this path instead of serving a body. */
  redirectTo?: string;
}

/** A running server. */
export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Path -> file; edit it between requests. Missing paths answer 404. */
  files: Map<string, ServedFile>;
  /** Every request seen: path and Range header. */
  requests: { path: string; range: string | null }[];
  /** When true, Range headers are ignored (200 with the whole body). */
  ignoreRange: boolean;
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1 at a free port. */
export function startTestServer(files: Record<string, ServedFile> = {}): TestServer {
  const state: Omit<TestServer, "origin" | "close"> = {
    files: new Map(Object.entries(files)),
    requests: [],
    ignoreRange: false,
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    const range = request.headers.get("range");
    state.requests.push({ path, range });
    const file = state.files.get(path);
    if (!file) return new Response("Entry not found", { status: 404 });
    if (file.redirectTo) {
      return new Response(null, { status: 302, headers: { location: file.redirectTo, ...file.headers } });
    }
    const body = file.body!;
    const m = range?.match(/^bytes=(\d+)-$/);
    if (m && !state.ignoreRange) {
      const start = Number(m[1]);
      if (start >= body.length) {
        return new Response(null, { status: 416, headers: { "content-range": `bytes */${body.length}` } });
      }
      return new Response(body.slice(start), {
        status: 206,
        headers: { "content-range": `bytes ${start}-${body.length - 1}/${body.length}`, ...file.headers },
      });
    }
    return new Response(body, { headers: file.headers });
  });
  const addr = server.addr as Deno.NetAddr;
  return Object.assign(state, {
    origin: `http://127.0.0.1:${addr.port}`,
    close: () => server.shutdown(),
  });
}
