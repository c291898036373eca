/**
 * `deno task export --model <run folder> [--output <folder>]`: model.onnx (float32),
 * model.int8.onnx, model.fp16.onnx, serve.json and the tokenizer files, ready for `deno task serve`.
 * @module
 */

import { checkPath, type Flag, runCli, UsageError } from "../cli.ts";
import { exportModel, type ExportVariant, VARIANT_FILES } from "./export.ts";

const FLAGS: Record<string, Flag> = {
  model: {
    type: "string",
    value: "folder",
    help: "Model folder (config.json + model.safetensors), e.g. a run folder",
  },
  output: {
    type: "string",
    value: "folder",
    help: "Where to write the ONNX files (default: the model folder)",
  },
  "max-length": {
    type: "int",
    min: 1,
    help: "Longest input serve accepts before truncating (default: the run's training max length, " +
      "else max_position_embeddings capped at 512)",
  },
  variants: { type: "string", default: "float32,int8,float16", value: "list", help: "Which files to write" },
  portable: {
    type: "boolean",
    help: "Standard ONNX ops only (no onnxruntime contrib ops), for runtimes other than onnxruntime",
  },
};

if (import.meta.main) {
  await runCli(
    Deno.args,
    "Export a model folder to ONNX (float32, int8, and float16 for WebGPU).\n\nUsage: deno task export --model <folder> [options]",
    FLAGS,
    async (v) => {
      const expected = "a model folder with config.json and model.safetensors (a run folder)";
      if (v.model === undefined) throw new UsageError(`--model <folder> is required: ${expected}`);
      await checkPath("model", v.model as string, "folder", expected);
      await checkPath("model", `${v.model}/config.json`, "file", expected).catch(() => {
        throw new UsageError(`--model "${v.model}" has no config.json; expected ${expected}`);
      });
      const variants = (v.variants as string).split(",").map((s) => s.trim()) as ExportVariant[];
      for (const x of variants) {
        if (!(x in VARIANT_FILES)) {
          throw new UsageError(
            `--variants "${v.variants}" is not accepted: expected a list of float32, int8 and float16`,
          );
        }
      }
      const r = await exportModel(v.model as string, {
        output: v.output as string | undefined,
        maxLength: v["max-length"] as number | undefined,
        variants,
        portable: v.portable === true,
      });
      const why = {
        option: "from --max-length",
        "training_args.json":
          "the length the model was trained at (training_args.json); --max-length changes it",
        max_position_embeddings:
          "max_position_embeddings capped at 512 (no training max length known); --max-length changes it",
      }[r.maxLengthSource];
      console.log(`max length ${r.maxLength} tokens: ${why}`);
      for (const [variant, path] of Object.entries(r.files)) {
        console.log(`${variant.padEnd(8)} ${path} (${(r.bytes[variant]! / 1e6).toFixed(2)} MB)`);
      }
      console.log(`Serve it: MODEL_DIR=${v.output ?? v.model} deno task serve`);
    },
  );
}
