// The page at GET / in a real browser: Debian's headless Chromium, driven over the DevTools protocol
// (a small client over Deno's WebSocket; nothing is downloaded). It loads the page from the real server,
// classifies two sentences through the form and reads the label and bars back from the page.
// Without Chromium the test is skipped with a message, except in CI (CI=true), where it must run.
// PAGE_SCREENSHOT=<file.png> saves what the page looks like after the second sentence.
import assert from "node:assert/strict";
import { spawnServer } from "../tests/spawn.ts";
import { exportTestModel } from "./_test_model.ts";

const CANDIDATES = [Deno.env.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"];

function findChromium(): string | undefined {
  for (const name of CANDIDATES) {
    if (!name) continue;
    try {
      if (
        new Deno.Command(name, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success
      ) {
        return name;
      }
    } catch { /* not installed */ }
  }
  return undefined;
}

const chromium = findChromium();
const inCi = Deno.env.get("CI") === "true";
if (chromium === undefined && !inCi) {
  console.warn("serve/page_test.ts: skipped, no Chromium found (apt-get install chromium, or set CHROMIUM)");
}

/** A DevTools protocol session over one WebSocket. */
class Cdp {
  #next = 0;
  #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(private readonly socket: WebSocket) {
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const waiter = this.#waiting.get(message.id);
      if (waiter === undefined) return; // an event
      this.#waiting.delete(message.id);
      if (message.error) waiter.reject(new Error(`CDP: ${JSON.stringify(message.error)}`));
      else waiter.resolve(message.result);
    };
  }

  static async connect(url: string): Promise<Cdp> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`Cannot open ${url}`));
    });
    return new Cdp(socket);
  }

  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#next;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) =>
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
    );
  }

  /** The value of a page expression (awaited if it is a promise). */
  async evaluate<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.send<
      { result: { value: T }; exceptionDetails?: { text: string } }
    >("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (exceptionDetails) throw new Error(`Page threw: ${exceptionDetails.text} in ${expression}`);
    return result.value;
  }

  /** Evaluates until the expression is truthy. */
  async waitFor(expression: string, timeoutMs = 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(expression))) {
      if (Date.now() > end) throw new Error(`Timed out waiting for ${expression}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.socket.close();
  }
}

/** Reads the port Chromium writes to DevToolsActivePort once it listens. */
async function devtoolsPort(profile: string, timeoutMs = 30_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const [port] = (await Deno.readTextFile(`${profile}/DevToolsActivePort`)).split("\n");
      if (Number(port) > 0) return Number(port);
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("Chromium did not open its DevTools port");
}

Deno.test({
  name: "GET / in headless Chromium: type two sentences, classify, read label and bars from the page",
  ignore: chromium === undefined && !inCi,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    assert.ok(chromium, "CI=true but no Chromium: .ci/run installs Debian's chromium package");
    const dir = await exportTestModel();
    const profile = await Deno.makeTempDir({ prefix: "page_test_chromium_" });
    const server = await spawnServer({ env: { MODEL_DIR: dir, BATCH_WINDOW_MS: "0", ACCESS_LOG: "0" } });
    const browser = new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        "--window-size=900,900",
        `${server.origin}/`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let cdp: Cdp | undefined;
    try {
      const port = await devtoolsPort(profile);
      const targets: { type: string; url: string; webSocketDebuggerUrl: string }[] =
        await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      const page = targets.find((t) => t.type === "page" && t.url.startsWith(server.origin));
      assert.ok(page, `the page target among ${JSON.stringify(targets.map((t) => t.url))}`);
      cdp = await Cdp.connect(page.webSocketDebuggerUrl);
      // The model card from GET /model.
      await cdp.waitFor(`document.querySelectorAll("#card dt").length > 0`);
      const card: string = await cdp.evaluate(`document.getElementById("card").innerText`);
      assert.match(card, /labels\s+unacceptable, acceptable/);
      assert.match(card, /variant\s+int8/);

      const sentences = ["the cat sat on the mat .", "men see a big red house"];
      for (const [i, sentence] of sentences.entries()) {
        await cdp.evaluate(`(() => {
          document.getElementById("text").value = ${JSON.stringify(sentence)};
          document.getElementById("go").click();
        })()`);
        await cdp.waitFor(`document.getElementById("result").dataset.done === "${i + 1}"`);
        const shown: { label: string; bars: { label: string; score: number; width: string }[] } = await cdp
          .evaluate(`({
            label: document.getElementById("result").dataset.label,
            bars: [...document.querySelectorAll("#result .row")].map((r) => ({
              label: r.dataset.label, score: Number(r.dataset.score), width: r.querySelector(".fill").style.width,
            })),
          })`);
        const direct = await fetch(`${server.origin}/classify`, {
          method: "POST",
          body: JSON.stringify({ text: sentence }),
        });
        const [expected] = (await direct.json()).results;
        assert.equal(shown.label, expected.label, sentence);
        assert.deepEqual(shown.bars.map((b) => b.label).sort(), Object.keys(expected.probabilities).sort());
        for (const bar of shown.bars) {
          assert.equal(bar.score, expected.probabilities[bar.label], `${sentence}: ${bar.label}`);
          assert.equal(bar.width, `${(100 * bar.score).toFixed(1)}%`);
        }
      }
      const screenshot = Deno.env.get("PAGE_SCREENSHOT");
      if (screenshot) {
        const { data } = await cdp.send<{ data: string }>("Page.captureScreenshot", { format: "png" });
        await Deno.writeFile(screenshot, Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
      }
    } finally {
      cdp?.close();
      browser.kill("SIGKILL");
      await browser.status;
      await server.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
