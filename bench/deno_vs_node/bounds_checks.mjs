// Explicit wasm bounds checks or not: a loop of i32.load from a (shared) memory, min of 7 timings.
const leb = (n) => {
  const o = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    o.push(b);
  } while (n);
  return o;
};
const sec = (id, body) => [id, ...leb(body.length), ...body];
const body = [
  1,
  2,
  0x7f,
  0x03,
  0x40,
  0x20,
  2,
  0x20,
  1,
  0x41,
  0xfc,
  0xff,
  0x03,
  0x71,
  0x28,
  2,
  0,
  0x6a,
  0x21,
  2,
  0x20,
  1,
  0x41,
  4,
  0x6a,
  0x22,
  1,
  0x20,
  0,
  0x49,
  0x0d,
  0,
  0x0b,
  0x20,
  2,
  0x0b,
];
const shared = (typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2)).includes("shared");
const mem = shared ? [1, 3, 1, 2] : [1, 0, 1];
const bytes = new Uint8Array([
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  ...sec(1, [1, 0x60, 1, 0x7f, 1, 0x7f]),
  ...sec(3, [1, 0]),
  ...sec(5, mem),
  ...sec(7, [1, 1, 0x66, 0, 0]),
  ...sec(10, [1, ...leb(body.length), ...body]),
]);
const { instance } = await WebAssembly.instantiate(bytes);
const f = instance.exports.f;
for (let i = 0; i < 3; i++) f(4e8);
const t = [];
for (let i = 0; i < 7; i++) {
  const t0 = performance.now();
  f(4e8);
  t.push(performance.now() - t0);
}
console.log(
  `${typeof Deno !== "undefined" ? "deno" : "node"} ${shared ? "shared" : "plain"} memory: min ${
    Math.min(...t).toFixed(1)
  } ms per 1e8 loads`,
);
