import {
  learningRateAt,
  linearWarmupDecay,
  LR_SCHEDULERS,
  type LrScheduler,
  usesWeightDecay,
} from "./schedule.ts";
import { assertThrows } from "../tests/util.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/schedule.json", import.meta.url);

interface ScheduleFixture {
  cases: { warmupSteps: number; totalSteps: number; lr: number; lrs: number[] }[];
  params: { name: string; decay: boolean }[];
}

async function fixture(): Promise<ScheduleFixture> {
  return JSON.parse(await Deno.readTextFile(FIXTURE));
}

Deno.test("learningRateAt() equals torch LambdaLR with HF's linear warmup for every step", async () => {
  const { cases } = await fixture();
  if (!cases.some((c) => c.warmupSteps === 0) || !cases.some((c) => c.warmupSteps > 0)) {
    throw new Error("schedule fixture needs cases with and without warmup");
  }
  for (const c of cases) {
    c.lrs.forEach((want, step) => {
      // same float64 formula as Python, so the values are identical, not just close
      const got = learningRateAt(step, c);
      if (got !== want) {
        throw new Error(`warmup ${c.warmupSteps} step ${step}: learningRateAt gives ${got}, torch ${want}`);
      }
    });
    if (c.warmupSteps > 0 && c.lrs[0] !== 0) throw new Error("with warmup the first step should run at 0");
  }
});

Deno.test("linearWarmupDecay() rejects negative or fractional step counts", () => {
  assertThrows(() => linearWarmupDecay(-1, 0, 10), RangeError, /step must be a non-negative integer, got -1/);
  assertThrows(
    () => linearWarmupDecay(1, 0.5, 10),
    RangeError,
    /warmupSteps must be a non-negative integer, got 0.5/,
  );
  assertThrows(
    () => linearWarmupDecay(1, 0, NaN),
    RangeError,
    /totalSteps must be a non-negative integer, got NaN/,
  );
  assertThrows(() => learningRateAt(0, { lr: -1, warmupSteps: 0, totalSteps: 1 }), RangeError, /lr must be/);
});

Deno.test("usesWeightDecay() matches run_glue's no_decay parameter groups", async () => {
  const { params } = await fixture();
  if (!params.some((p) => p.decay) || !params.some((p) => !p.decay)) {
    throw new Error("schedule fixture needs names in both groups");
  }
  for (const { name, decay } of params) {
    if (usesWeightDecay(name) !== decay) throw new Error(`usesWeightDecay("${name}") should be ${decay}`);
  }
});

Deno.test("learningRateAt() equals transformers' linear, constant and cosine lambdas at every step", async () => {
  const { cases } = JSON.parse(
    await Deno.readTextFile(new URL("../tests/fixtures/schedules/lr.json", import.meta.url)),
  ) as {
    cases: { scheduler: LrScheduler; warmupSteps: number; totalSteps: number; lr: number; lrs: number[] }[];
  };
  for (const name of LR_SCHEDULERS) {
    if (!cases.some((c) => c.scheduler === name && c.warmupSteps > 0)) throw new Error(`no ${name} case`);
  }
  for (const c of cases) {
    c.lrs.forEach((want, step) => {
      const got = learningRateAt(step, c);
      // float64 on both sides; Math.cos and Python's math.cos may differ in the last bit
      if (Math.abs(got - want) > 1e-15 * c.lr) {
        throw new Error(
          `${c.scheduler} warmup ${c.warmupSteps} step ${step}: got ${got}, transformers ${want}`,
        );
      }
    });
  }
  // the shapes differ where they should: constant stays at lr, cosine is above linear mid-decay
  const at = (scheduler: LrScheduler) =>
    learningRateAt(4, { lr: 1, warmupSteps: 2, totalSteps: 12, scheduler });
  if (!(at("constant") === 1 && at("cosine") > at("linear") && at("linear") === 0.8)) {
    throw new Error(`constant ${at("constant")}, cosine ${at("cosine")}, linear ${at("linear")}`);
  }
  assertThrows(
    () => learningRateAt(0, { lr: 1, warmupSteps: 0, totalSteps: 2, scheduler: "step" as LrScheduler }),
    RangeError,
    /Unknown lr scheduler "step"/,
  );
});
