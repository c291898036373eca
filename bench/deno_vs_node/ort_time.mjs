// Times one graph with onnxruntime-web in Node or Deno: node time.mjs <ort path> <file> [threads] [runs]
const isDeno = typeof Deno !== "undefined";
const argv = isDeno ? Deno.args : process.argv.slice(2);
const [spec, file, threadsArg = "1", runsArg = "10"] = argv;
const ort = await import(spec);
ort.env.wasm.numThreads = Number(threadsArg);
const s = await ort.InferenceSession.create(file);
const T = 64;
const t = (f) => new ort.Tensor("int64", BigInt64Array.from({ length: T }, (_, i) => f(i)), [1, T]);
const feeds = {
  input_ids: t((i) => BigInt(1000 + (i * 7919) % 20000)),
  attention_mask: t(() => 1n),
  token_type_ids: t(() => 0n),
};
for (let i = 0; i < 3; i++) await s.run(feeds);
const times = [];
for (let i = 0; i < Number(runsArg); i++) {
  const t0 = performance.now();
  await s.run(feeds);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(
  `${isDeno ? "deno" : "node"} median ${times[times.length >> 1].toFixed(1)} ms min ${times[0].toFixed(1)}`,
);
