/**
 * `deno task eval --model <run folder> --data <file>` (or `--task <GLUE task>`): accuracy, MCC and F1
 * of a trained model on a labelled data set, or the task's GLUE metric on its dev set(s), on WebGPU.
 * @module
 */

import { Gpu } from "../kernels/runtime.ts";
import { loadTokenizer } from "../tokenizer/mod.ts";
import { checkPath, type Flag, type FlagValues, runCli, UsageError } from "./cli.ts";
import { loadModel } from "./checkpoint.ts";
import { colaUrl } from "./hub.ts";
import { loadCola } from "./data/cola.ts";
import { loadTable } from "./data/tabular.ts";
import type { Dataset } from "./data/dataset.ts";
import { DEFAULT_TRAIN_OPTIONS, Trainer } from "./trainer.ts";
import { formatEval } from "./console.ts";
import { formatGlueScores, type GlueTask, loadGlue } from "./data/glue.ts";
import { glueScoresOf, isColaPublic, taskOrUsage } from "./glue_cli.ts";

const MODEL_FOLDER = "a model folder with config.json and model.safetensors or pytorch_model.bin";

/** The flags of `deno task eval`. */
export const EVAL_FLAGS: Record<string, Flag> = {
  model: { type: "string", value: "folder", help: "Model folder (a run folder or any HF BERT classifier)" },
  task: {
    type: "string",
    value: "name",
    help: "GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli): evaluate on its dev set(s) " +
      "with its GLUE metric",
  },
  data: {
    type: "string",
    value: "path|url",
    help: "Labelled TSV/CSV/JSONL file (with --task: the task's GLUE folder or zip, or the CoLA zip; " +
      "default: download it)",
  },
  "text-column": { type: "string", default: "sentence", value: "name", help: "Text column" },
  "text-pair-column": { type: "string", value: "name", help: "Second text column" },
  "label-column": { type: "string", default: "label", value: "name", help: "Label column" },
  "batch-size": { type: "int", min: 1, default: 32, help: "Examples per batch" },
  "max-length": { type: "int", min: 2, default: 64, help: "Tokens per sequence" },
  "max-eval-samples": { type: "int", min: 1, help: "Evaluate on the first N examples of each set only" },
  "cache-dir": { type: "string", value: "folder", help: "Download cache" },
};

/** A model's label count must be the task's: GLUE ids are positions in the task's label list. */
async function checkModelLabels(modelDir: string, task: GlueTask): Promise<void> {
  const config = JSON.parse(await Deno.readTextFile(`${modelDir}/config.json`));
  const n = Object.keys(config.id2label ?? {}).length || config.num_labels || 2;
  if (n !== task.labels.length) {
    throw new UsageError(
      `Model "${modelDir}" has ${n} labels but GLUE ${task.dir} has ${task.labels.length} (${
        task.labels.join(", ")
      }); pass a model fine-tuned on ${task.name}`,
    );
  }
}

/** Evaluates a model folder on named data sets and returns the figures. */
export async function evaluateModel(
  modelDir: string,
  sets: Record<string, Dataset>,
  options: { batchSize?: number; maxLength?: number } = {},
) {
  const model = await loadModel(modelDir, { dropout: 0 });
  if (model.initialized.length) {
    throw new RangeError(
      `Model "${modelDir}" has no trained classifier (${model.initialized.join(", ")} missing)`,
    );
  }
  const tokenizer = await loadTokenizer(modelDir);
  const gpu = await Gpu.create();
  const trainer = new Trainer(gpu, model.config, model.weights, tokenizer, {
    ...DEFAULT_TRAIN_OPTIONS,
    batchSize: options.batchSize ?? 32,
    maxLength: Math.min(options.maxLength ?? 64, model.config.max_position_embeddings),
    dynamicPadding: true,
  });
  const out: Record<string, Awaited<ReturnType<Trainer["evaluate"]>>> = {};
  for (const [name, ds] of Object.entries(sets)) out[name] = await trainer.evaluate(ds);
  return out;
}

const USAGE = "Evaluate a model: accuracy, MCC, F1, or a GLUE task's metric.\n\n" +
  "Usage: deno task eval --model <folder> --data <file>\n       deno task eval --model <folder> --task <GLUE task>";

/** Runs `deno task eval` on parsed flags, printing each set's figures (and GLUE scores) with `print`. */
export async function runEval(v: FlagValues, print: (line: string) => void = console.log): Promise<void> {
  if (v.model === undefined) throw new UsageError(`--model <folder> is required: ${MODEL_FOLDER}`);
  await checkPath("model", v.model as string, "folder", MODEL_FOLDER);
  await checkPath("model", `${v.model}/config.json`, "file", MODEL_FOLDER).catch(() => {
    throw new UsageError(`--model "${v.model}" has no config.json; expected ${MODEL_FOLDER}`);
  });
  const data = v.data as string | undefined;
  const task = v.task === undefined ? undefined : taskOrUsage(v.task as string);
  const colaZip = task?.name === "cola" && isColaPublic(data);
  if (data !== undefined && !/^https?:\/\//i.test(data)) {
    const info = await checkPath(
      "data",
      data,
      "any",
      colaZip
        ? "the CoLA zip or its folder"
        : task
        ? `GLUE ${task.dir}'s folder or zip`
        : "a labelled TSV, CSV or JSONL file",
    );
    if (colaZip && info.isFile && !data.toLowerCase().endsWith(".zip")) {
      throw new UsageError(
        `--data "${data}" is not a zip: with --task cola, expected the CoLA zip (cola_public_1.1.zip) or its folder`,
      );
    }
  }
  let sets: Record<string, Dataset>;
  if (colaZip) {
    const cola = await loadCola(data ?? colaUrl(), {
      cacheDir: v["cache-dir"] as string,
    });
    sets = { in_domain_dev: cola.inDomainDev, out_of_domain_dev: cola.outOfDomainDev };
  } else if (task !== undefined) {
    await checkModelLabels(v.model as string, task);
    sets =
      (await loadGlue(task.name, data, { cacheDir: v["cache-dir"] as string | undefined, devOnly: true }))
        .dev;
  } else if (v.data === undefined) throw new UsageError("Pass --data <file> or --task <GLUE task>");
  else {
    // String labels map through the model's own label2id, as it was trained.
    const { label2id } = JSON.parse(await Deno.readTextFile(`${v.model}/config.json`));
    const ds = await loadTable(v.data as string, {
      label2id,
      textColumn: v["text-column"] as string,
      textPairColumn: v["text-pair-column"] as string | undefined,
      labelColumn: v["label-column"] as string,
    });
    sets = { [ds.name]: ds };
  }
  const max = v["max-eval-samples"] as number | undefined;
  if (max !== undefined) {
    for (const [k, ds] of Object.entries(sets)) sets[k] = { ...ds, examples: ds.examples.slice(0, max) };
  }
  const results = await evaluateModel(v.model as string, sets, {
    batchSize: v["batch-size"] as number,
    maxLength: v["max-length"] as number,
  });
  for (const [name, r] of Object.entries(results)) print(`${name}: ${formatEval(r)}`);
  if (task) {
    for (const line of formatGlueScores(glueScoresOf(task.name, results, sets))) print(line);
  }
}

if (import.meta.main) {
  await runCli(Deno.args, USAGE, EVAL_FLAGS, (v) => runEval(v));
}
