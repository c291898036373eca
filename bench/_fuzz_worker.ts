/**
 * Worker entry of `bench/fuzz.ts`: runs one target (`bench/_fuzz_targets.ts`) and posts a heartbeat
 * as each case starts, so the parent can stop a case that hangs. Posts the report, or the failure.
 * @module
 */

import { type FuzzMessage, type FuzzTargetName, runTarget } from "./_fuzz_targets.ts";

const worker = self as unknown as {
  onmessage: ((e: MessageEvent<{ target: FuzzTargetName; cases: number; seed: number }>) => void) | null;
  postMessage(message: FuzzMessage): void;
};

worker.onmessage = async (event) => {
  const { target, cases, seed } = event.data;
  try {
    const report = await runTarget(target, { cases, seed }, (name, limitMs) => {
      worker.postMessage({ type: "case", name, limitMs });
    });
    worker.postMessage({ type: "report", report });
  } catch (e) {
    worker.postMessage({ type: "failure", message: (e as Error).stack ?? String(e) });
  }
};
