/**
 * Test-only Hugging Face hub on 127.0.0.1 with the hub's URL and header conventions:
 * `/{id}/resolve/{revision}/{file}` (HEAD and GET) answers with `X-Repo-Commit` and an `ETag` (the git
 * blob sha1) for small files; LFS files answer 302 to a CDN-like `/cdn/{sha256}` with
 * `X-Linked-Etag` (the sha256) and `X-Linked-Size`. A private repo needs `Authorization: Bearer
 * <token>` (401 otherwise); the CDN refuses requests that carry a token and honours `Range`.
 * @module
 */
import { createHash } from "node:crypto";

/** One repo: files by name, which are LFS, its commit, extra revisions (tags) and privacy. */
export interface HubRepo {
  files: Record<string, Uint8Array<ArrayBuffer>>;
  lfs?: string[];
  commit?: string;
  /** Tag or branch name -> commit (main is always the repo's commit). */
  refs?: Record<string, string>;
  private?: boolean;
}

/** A request as the server saw it. */
export interface HubRequest {
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

/** The git blob id of `bytes` (what the hub sends as ETag for non-LFS files). */
export function gitBlobSha1(bytes: Uint8Array): string {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

/** The SHA-256 of `bytes`, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Starts the hub; `token` is the one private repos accept. */
export function startHubServer(repos: Record<string, HubRepo>, token = "hf_test_token") {
  const requests: HubRequest[] = [];
  const blobs = new Map<string, Uint8Array<ArrayBuffer>>();
  for (const repo of Object.values(repos)) {
    repo.commit ??= "0123456789abcdef0123456789abcdef01234567";
    for (const [name, bytes] of Object.entries(repo.files)) {
      if (repo.lfs?.includes(name)) blobs.set(sha256Hex(bytes), bytes);
    }
  }
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    const path = decodeURIComponent(url.pathname);
    const range = request.headers.get("range");
    const authorization = request.headers.get("authorization");
    requests.push({ method: request.method, path, range, authorization });
    const cdn = path.match(/^\/cdn\/([0-9a-f]{64})$/);
    if (cdn) {
      if (authorization) return new Response("the CDN must not receive the hub token", { status: 400 });
      const body = blobs.get(cdn[1]);
      if (!body) return new Response("no such blob", { status: 404 });
      const m = range?.match(/^bytes=(\d+)-$/);
      if (m) {
        const start = Number(m[1]);
        if (start >= body.length) return new Response(null, { status: 416 });
        return new Response(body.slice(start), {
          status: 206,
          headers: { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` },
        });
      }
      return new Response(body);
    }
    const m = path.match(/^\/(.+?)\/resolve\/([^/]+)\/(.+)$/);
    const repo = m ? repos[m[1]] : undefined;
    if (!m || !repo) return new Response("Repository not found", { status: 404 });
    if (repo.private && authorization !== `Bearer ${token}`) {
      return new Response("Invalid credentials", { status: 401, headers: { "x-error-code": "GatedRepo" } });
    }
    const revision = m[2];
    const commit = revision === "main" || revision === repo.commit ? repo.commit! : repo.refs?.[revision];
    if (!commit) return new Response("Revision not found", { status: 404 });
    const body = repo.files[m[3]];
    const headers: Record<string, string> = { "x-repo-commit": commit };
    if (!body) {
      return new Response("Entry not found", {
        status: 404,
        headers: { ...headers, "x-error-code": "EntryNotFound" },
      });
    }
    if (repo.lfs?.includes(m[3])) {
      const sha = sha256Hex(body);
      return new Response(null, {
        status: 302,
        headers: {
          ...headers,
          location: `/cdn/${sha}?X-Amz-Signature=test`,
          "x-linked-etag": `"${sha}"`,
          "x-linked-size": String(body.length),
          etag: `"${
            gitBlobSha1(
              new TextEncoder().encode(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\n`),
            )
          }"`,
        },
      });
    }
    return new Response(request.method === "HEAD" ? null : body, {
      headers: { ...headers, etag: `"${gitBlobSha1(body)}"`, "content-length": String(body.length) },
    });
  });
  return {
    origin: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    requests,
    token,
    close: () => server.shutdown(),
  };
}
