/**
 * The server's Prometheus metrics, kept in memory per worker and written by hand in the text
 * exposition format (version 0.0.4) for `GET /metrics`. Every series carries `backend` and `variant`
 * labels. Under `deno serve --parallel` each worker counts its own requests; a scrape reaches one of
 * them.
 *
 * Series: `bert_http_requests_total{route,method,status}`, `bert_http_request_duration_seconds`
 * (histogram by route), `bert_session_runs_total`, `bert_session_run_texts` (histogram: texts per
 * session run), `bert_session_run_duration_seconds` (histogram), `bert_queue_depth` (texts waiting),
 * `bert_tokens_total` and `bert_padded_tokens_total` (token slots the padded runs computed), and
 * `bert_padding_ratio` (share of computed slots that were padding, 1 - tokens / padded).
 * @module
 */

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const TEXT_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    this.buckets.forEach((b, i) => {
      if (value <= b) this.counts[i]++;
    });
  }
  lines(name: string, labels: string): string[] {
    const sep = labels === "" ? "" : ",";
    return [
      ...this.buckets.map((b, i) => `${name}_bucket{${labels}${sep}le="${b}"} ${this.counts[i]}`),
      `${name}_bucket{${labels}${sep}le="+Inf"} ${this.count}`,
      `${name}_sum{${labels}} ${this.sum}`,
      `${name}_count{${labels}} ${this.count}`,
    ];
  }
}

/** A label value escaped for the text format. */
function escape(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** What a session run reports (the batcher's `RunInfo`). */
export interface RunStats {
  items: number;
  tokens: number;
  paddedTokens: number;
  milliseconds: number;
}

/**
 * Counters and histograms of one worker.
 * @example
 * ```ts
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics({ backend: "wasm", variant: "int8" });
 * metrics.request("/classify", "POST", 200, 0.012);
 * console.log(metrics.render(0).includes('bert_http_requests_total{backend="wasm",variant="int8",route="/classify",method="POST",status="200"} 1')); // true
 * ```
 */
export class Metrics {
  readonly #base: string;
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  readonly #runTexts = new Histogram(TEXT_BUCKETS);
  readonly #runSeconds = new Histogram(LATENCY_BUCKETS);
  #tokens = 0;
  #padded = 0;

  /** `labels` go on every series (backend, variant). */
  constructor(labels: Record<string, string>) {
    this.#base = Object.entries(labels).map(([k, v]) => `${k}="${escape(v)}"`).join(",");
  }

  /** Counts a finished request; `route` must be one of the server's routes or "other". */
  request(route: string, method: string, status: number, seconds: number): void {
    const key = `route="${escape(route)}",method="${escape(method)}",status="${status}"`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let h = this.#latency.get(route);
    if (h === undefined) this.#latency.set(route, h = new Histogram(LATENCY_BUCKETS));
    h.observe(seconds);
  }

  /** Counts a session run. */
  run(stats: RunStats): void {
    this.#runTexts.observe(stats.items);
    this.#runSeconds.observe(stats.milliseconds / 1000);
    this.#tokens += stats.tokens;
    this.#padded += stats.paddedTokens;
  }

  /** The exposition text, with the queue depth (texts waiting) as of now. */
  render(queueDepth: number): string {
    const b = this.#base;
    const out: string[] = [];
    const head = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head("bert_http_requests_total", "counter", "HTTP requests by route, method and status.");
    for (const [key, n] of this.#requests) out.push(`bert_http_requests_total{${b},${key}} ${n}`);
    head("bert_http_request_duration_seconds", "histogram", "Time from request to response, by route.");
    for (const [route, h] of this.#latency) {
      out.push(...h.lines("bert_http_request_duration_seconds", `${b},route="${escape(route)}"`));
    }
    head("bert_session_runs_total", "counter", "Inference session runs.");
    out.push(`bert_session_runs_total{${b}} ${this.#runTexts.count}`);
    head("bert_session_run_texts", "histogram", "Texts per session run (micro-batch size).");
    out.push(...this.#runTexts.lines("bert_session_run_texts", b));
    head("bert_session_run_duration_seconds", "histogram", "Time of one session run.");
    out.push(...this.#runSeconds.lines("bert_session_run_duration_seconds", b));
    head("bert_queue_depth", "gauge", "Texts waiting for a session run.");
    out.push(`bert_queue_depth{${b}} ${queueDepth}`);
    head("bert_tokens_total", "counter", "Tokens of the texts run.");
    out.push(`bert_tokens_total{${b}} ${this.#tokens}`);
    head("bert_padded_tokens_total", "counter", "Token slots computed (rows x longest row, per run).");
    out.push(`bert_padded_tokens_total{${b}} ${this.#padded}`);
    head("bert_padding_ratio", "gauge", "Share of computed token slots that were padding.");
    out.push(`bert_padding_ratio{${b}} ${this.#padded === 0 ? 0 : 1 - this.#tokens / this.#padded}`);
    return out.join("\n") + "\n";
  }
}
