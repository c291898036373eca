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
 * @module
 */

/** Options of {@linkcode Batcher}. */
export interface BatcherOptions {
  /** Milliseconds the first queued item waits for company; 0: no coalescing across requests. */
  windowMs: number;
  /** Most items in one run. */
  maxBatch: number;
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
  #queue: Pending<In, Out>[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | null = null;
  #groups = 0;
  #runs = 0;
  #items = 0;
  #closed = false;

  /** @throws {RangeError} for a negative window or a batch limit below 1. */
  constructor(runBatch: (items: In[]) => Promise<Out[]>, options: BatcherOptions) {
    if (!(options.windowMs >= 0)) {
      throw new RangeError(`Batcher windowMs ${options.windowMs} must be >= 0 (0 turns batching off)`);
    }
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) {
      throw new RangeError(`Batcher maxBatch ${options.maxBatch} must be a whole number >= 1`);
    }
    this.#runBatch = runBatch;
    this.#windowMs = options.windowMs;
    this.#maxBatch = options.maxBatch;
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
    // Items of one submission run in order, so the runs that served it are consecutive in `done`.
    const batchSizes = done.filter((d, i) => i === 0 || d.run !== done[i - 1].run).map((d) => d.batchSize);
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
    let n = 0;
    while (
      n < this.#queue.length && n < this.#maxBatch && (this.#windowMs > 0 || this.#queue[n].group === group)
    ) n++;
    const batch = this.#queue.splice(0, n);
    const run = ++this.#runs;
    this.#items += n;
    this.#inFlight = this.#execute(batch, run).finally(() => {
      this.#inFlight = null;
      this.#runNext(); // whatever queued during the run has waited long enough
    });
  }

  async #execute(batch: Pending<In, Out>[], run: number): Promise<void> {
    try {
      const outputs = await this.#runBatch(batch.map((p) => p.item));
      if (outputs.length !== batch.length) {
        throw new RangeError(`runBatch returned ${outputs.length} outputs for ${batch.length} items`);
      }
      batch.forEach((p, i) => p.resolve({ output: outputs[i], run, batchSize: batch.length }));
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }
}
