import { runDocTests } from "./_doc.ts";

Deno.test("mod.ts, train/api.ts and serve/classifier.ts JSDoc examples run (deno test --doc)", async () => {
  await runDocTests(["mod.ts", "train/api.ts", "serve/classifier.ts"]);
});
