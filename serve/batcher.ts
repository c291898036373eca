/**
 * Micro-batching: texts from concurrent requests are queued and run together, so one session run
 * serves many requests. Runs never overlap (one session per worker), so texts that arrive while a run
 * is in flight wait and go together into the next run.
 *
 * Policy, with window W ms and batch limit M:
 * - An item arriving at an idle, empty queue starts a W ms timer; when it fires, up to M items run.
 * - The queue reaching M items runs a batch at once, without waiting for the timer.
 * - When a run ends, queued items (they arrived during the run, so have waited already) run at once.
 * - W = 0 turns coalescing off: each run holds the texts of one request only (at most M of them),
 *   and requests take turns in arrival order.
 *
 * Length-aware runs (option `lengthOf`, the token count of an item): a session run pads every row to
 * its longest, so one long text in a run of short ones multiplies the work. When a run starts, the
 * items it may take (the whole queue; with W = 0 the oldest request's items) are sorted by length and
 * split into the groups of at most M that minimize the padded work, sum over groups of
 * `runCost + rows * longest` (runCost: the fixed cost of a run, in token rows). The group holding the
 * oldest item runs; the rest stay queued (ahead of nothing: the oldest item always goes next, so no
 * item starves) and are planned again, with whatever arrived meanwhile, when that run ends.
 * Option `maxTokens` also bounds each group's padded size (rows x longest; a single item always
 * fits): a run's activations grow with it, and they stay in onnxruntime-web's never-shrinking heap.
 * @module
 */

/** Options of {@linkcode Batcher}. */
export interface BatcherOptions<In = unknown> {
  /** Milliseconds the first queued item waits for company; 0: no coalescing across requests. */
  windowMs: number;
  /** Most items in one run. */
  maxBatch: number;
  /** An item's length (tokens): turns on length-aware runs (see the module doc). */
  lengthOf?: (item: In) => number;
  /** Most padded tokens (rows x longest) in one run of length-aware batching; a lone item always runs. @default Infinity */
  maxTokens?: number;
  /** The fixed cost of one run, in padded token rows, weighed against padding. @default 16 */
  runCost?: number;
  /** Called after every run with what it held and how long it took. */
  onRun?: (info: RunInfo) => void;
}

/** What one run held (lengths count only with `lengthOf`; otherwise 0). */
export interface RunInfo {
  items: number;
  /** Sum of the items' lengths. */
  tokens: number;
  /** items x the longest item's length: the token slots the padded run computes. */
  paddedTokens: number;
  milliseconds: number;
  ok: boolean;
}

/** What {@linkcode Batcher.submit} resolves to. */
export interface Submitted<Out> {
  /** One output per submitted item, in order. */
  outputs: Out[];
  /** Size of each run that served this submission's items (its items may span runs). */
  batchSizes: number[];
}

interface Served<Out> {
  output: Out;
  /** Which run (1, 2, ...) served the item, and how many items it held. */
  run: number;
  batchSize: number;
}

interface Pending<In, Out> {
  item: In;
  /** The submission the item belongs to; with window 0 a run never crosses a group. */
  group: number;
  resolve: (value: Served<Out>) => void;
  reject: (error: unknown) => void;
}

/**
 * Coalesces items submitted concurrently into calls of `runBatch(items) -> outputs`, one call at a
 * time (see the module doc for the policy). Counters show how many runs served how many items.
 * @example
 * ```ts
 * import { Batcher } from "./batcher.ts";
 * const batcher = new Batcher(async (xs: number[]) => xs.map((x) => x * 2), { windowMs: 5, maxBatch: 8 });
 * const [a, b] = await Promise.all([batcher.submit([1, 2]), batcher.submit([3])]);
 * console.log(a.outputs, b.outputs, batcher.runs); // [2, 4] [6] 1
 * await batcher.close();
 * ```
 */
export class Batcher<In, Out> {
  readonly #runBatch: (items: In[]) => Promise<Out[]>;
  readonly #windowMs: number;
  readonly #maxBatch: number;
  readonly #lengthOf: ((item: In) => number) | undefined;
  readonly #runCost: number;
  readonly #maxTokens: number;
  readonly #onRun: ((info: RunInfo) => void) | undefined;
  #queue: Pending<In, Out>[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | null = null;
  #groups = 0;
  #runs = 0;
  #items = 0;
  #closed = false;

  /** @throws {RangeError} for a negative window or a batch limit below 1. */
  constructor(runBatch: (items: In[]) => Promise<Out[]>, options: BatcherOptions<In>) {
    if (!(options.windowMs >= 0)) {
      throw new RangeError(`Batcher windowMs ${options.windowMs} must be >= 0 (0 turns batching off)`);
    }
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) {
      throw new RangeError(`Batcher maxBatch ${options.maxBatch} must be a whole number >= 1`);
    }
    this.#runBatch = runBatch;
    this.#windowMs = options.windowMs;
    this.#maxBatch = options.maxBatch;
    this.#lengthOf = options.lengthOf;
    this.#runCost = options.runCost ?? 16;
    if (!(this.#runCost >= 0)) throw new RangeError(`Batcher runCost ${options.runCost} must be >= 0`);
    this.#maxTokens = options.maxTokens ?? Infinity;
    if (!(this.#maxTokens >= 1)) throw new RangeError(`Batcher maxTokens ${options.maxTokens} must be >= 1`);
    this.#onRun = options.onRun;
  }

  /** Number of `runBatch` calls so far. */
  get runs(): number {
    return this.#runs;
  }

  /** Items passed to `runBatch` so far. */
  get items(): number {
    return this.#items;
  }

  /** Items waiting for a run. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Queues `items`; resolves when every one has run. A failed run rejects the submissions it served.
   * @throws {Error} (rejects) after {@linkcode Batcher.close}.
   */
  async submit(items: readonly In[]): Promise<Submitted<Out>> {
    if (this.#closed) throw new Error("Cannot submit: the batcher is closed");
    const group = ++this.#groups;
    const promises = items.map((item) =>
      new Promise<Served<Out>>((resolve, reject) => {
        this.#queue.push({ item, group, resolve, reject });
      })
    );
    this.#schedule();
    const done = await Promise.all(promises);
    const sizes = new Map(done.map((d) => [d.run, d.batchSize]));
    const batchSizes = [...sizes.keys()].sort((a, b) => a - b).map((run) => sizes.get(run)!);
    return { outputs: done.map((d) => d.output), batchSizes };
  }

  /** Refuses new items and waits until queued and running items are done. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inFlight !== null || this.#queue.length > 0) {
      if (this.#inFlight === null) this.#runNext(); // a timer was pending: run now
      await this.#inFlight;
    }
  }

  #schedule(): void {
    if (this.#inFlight !== null || this.#queue.length === 0) return; // the running batch picks them up
    if (this.#windowMs === 0 || this.#queue.length >= this.#maxBatch) {
      this.#runNext();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#runNext();
      }, this.#windowMs);
    }
  }

  #runNext(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#inFlight !== null || this.#queue.length === 0) return;
    const group = this.#queue[0].group;
    let n = 0; // the candidates: the queue, or (window 0) the oldest submission's items
    while (n < this.#queue.length && (this.#windowMs > 0 || this.#queue[n].group === group)) n++;
    const take = this.#lengthOf === undefined
      ? Array.from({ length: Math.min(n, this.#maxBatch) }, (_, i) => i)
      : this.#plan(this.#queue.slice(0, n).map((p) => this.#lengthOf!(p.item)));
    const chosen = new Set(take);
    const batch = take.map((i) => this.#queue[i]);
    this.#queue = this.#queue.filter((_, i) => !chosen.has(i));
    const run = ++this.#runs;
    this.#items += batch.length;
    this.#inFlight = this.#execute(batch, run).finally(() => {
      this.#inFlight = null;
      this.#runNext(); // whatever queued during the run has waited long enough
    });
  }

  /**
   * Splits candidates of these lengths (queue order) into the groups of at most maxBatch rows and
   * maxTokens padded tokens (one row always fits), contiguous in length order, of least total
   * `runCost + rows * longest`; returns the queue indices (ascending)
   * of the group holding index 0, the oldest.
   */
  #plan(lengths: number[]): number[] {
    const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
    const n = order.length;
    const best = new Float64Array(n + 1).fill(Infinity); // best[j]: least cost of the first j sorted
    const cut = new Int32Array(n + 1); // where the last group of best[j] starts
    best[0] = 0;
    for (let j = 1; j <= n; j++) {
      const longest = lengths[order[j - 1]];
      for (let i = j - 1; i >= Math.max(0, j - this.#maxBatch); i--) {
        if (i < j - 1 && (j - i) * longest > this.#maxTokens) break;
        const cost = best[i] + this.#runCost + (j - i) * longest;
        if (cost < best[j]) {
          best[j] = cost;
          cut[j] = i;
        }
      }
    }
    for (let j = n; j > 0; j = cut[j]) {
      const group = order.slice(cut[j], j);
      if (group.includes(0)) return group.sort((a, b) => a - b);
    }
    throw new Error("unreachable: the oldest item is in no group");
  }

  async #execute(batch: Pending<In, Out>[], run: number): Promise<void> {
    const t0 = performance.now();
    let ok = false;
    try {
      const outputs = await this.#runBatch(batch.map((p) => p.item));
      if (outputs.length !== batch.length) {
        throw new RangeError(`runBatch returned ${outputs.length} outputs for ${batch.length} items`);
      }
      ok = true;
      batch.forEach((p, i) => p.resolve({ output: outputs[i], run, batchSize: batch.length }));
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      if (this.#onRun !== undefined) {
        const lengths = this.#lengthOf === undefined ? [] : batch.map((p) => this.#lengthOf!(p.item));
        try {
          this.#onRun({
            items: batch.length,
            tokens: lengths.reduce((a, b) => a + b, 0),
            paddedTokens: batch.length * Math.max(0, ...lengths),
            milliseconds: performance.now() - t0,
            ok,
          });
        } catch (e) {
          console.error("Batcher onRun failed:", e);
        }
      }
    }
  }
}
