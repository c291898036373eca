import { runDocTests } from "./_doc.ts";

Deno.test("mod.ts, train.ts and train/api.ts JSDoc examples run (deno test --doc)", async () => {
  await runDocTests(["mod.ts", "train.ts", "train/api.ts"]);
});
