/**
 * A restricted unpickler: it interprets only the opcodes `torch.save(state_dict)` writes (pickle
 * protocol 2, plus the protocol 4/5 framing and memo opcodes newer writers use) and resolves only an
 * allow-list of globals to inert markers. Nothing is ever imported, called or executed: `REDUCE` of
 * `torch._utils._rebuild_tensor_v2` builds a {@linkcode TorchTensorRef} descriptor, `REDUCE` of
 * `collections.OrderedDict` builds a `Map`, and any other global is refused with a SyntaxError.
 *
 * Values map as: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
 * str -> string, bytes -> Uint8Array, list -> array, tuple -> frozen array, dict -> Map.
 * Shared references and cycles survive as in Python, so consumers must not recurse blindly.
 * @module
 */

/** A `torch.<Name>Storage` class named in a persistent id; `dtype` uses safetensors' names. */
export class TorchStorageType {
  /** Creates the marker for `torch.<name>`. */
  constructor(readonly name: string, readonly dtype: string) {}
}

/** What `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` describes. */
export class TorchTensorRef {
  /** Creates a descriptor; nothing is checked here (the storage is whatever persistentLoad returned). */
  constructor(
    readonly storage: unknown,
    readonly storageOffset: unknown,
    readonly size: unknown,
    readonly stride: unknown,
    readonly requiresGrad: boolean,
  ) {}
}

/** An allowed callable (the only thing REDUCE may apply). */
class AllowedCallable {
  constructor(readonly qualifiedName: string) {}
}

/** Storage classes PyTorch pickles as dtype markers, with their safetensors dtype names. */
const STORAGE_DTYPES: Record<string, string> = {
  DoubleStorage: "F64",
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
  UntypedStorage: "U8",
};

const CALLABLES = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch.Size",
]);

/** Caps that bound memory and work for any input (real state_dict pickles stay far below them). */
const MAX_STACK = 1 << 20;
const MAX_MEMO = 1 << 20;
/** Open MARKs at once, i.e. nesting of tuples/lists/dicts under construction. */
const MAX_MARK_DEPTH = 1000;

/** Called for BINPERSID with the persistent id (for torch: `('storage', type, key, location, numel)`). */
export type PersistentLoad = (pid: unknown) => unknown;

/**
 * Unpickles one pickle that must fill `bytes` exactly.
 * @param name the file name used in every error message.
 * @throws {SyntaxError} for a refused global, an unsupported opcode or any malformed input.
 * @example
 * ```ts
 * import { unpickle } from "./pickle.ts";
 * // pickle.dumps({"a": (1, 2.5)}, protocol=2)
 * const bytes = new Uint8Array([
 *   0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x61, 0x71, 1, 0x4b, 1,
 *   0x47, 0x40, 4, 0, 0, 0, 0, 0, 0, 0x86, 0x71, 2, 0x73, 0x2e,
 * ]);
 * const value = unpickle(bytes, "example.pkl", () => null) as Map<string, unknown>;
 * console.assert(JSON.stringify(value.get("a")) === "[1,2.5]");
 * ```
 */
export function unpickle(bytes: Uint8Array, name: string, persistentLoad: PersistentLoad): unknown {
  const { value, end } = unpickleFrom(bytes, 0, name, persistentLoad);
  if (end !== bytes.length) {
    throw new SyntaxError(`Cannot unpickle "${name}": ${bytes.length - end} bytes follow the STOP opcode`);
  }
  return value;
}

/**
 * Unpickles the pickle starting at `offset` and returns it with the offset just past its STOP opcode
 * (PyTorch's legacy format writes several pickles back to back).
 * @throws {SyntaxError} as {@linkcode unpickle}.
 */
export function unpickleFrom(
  bytes: Uint8Array,
  offset: number,
  name: string,
  persistentLoad: PersistentLoad,
): { value: unknown; end: number } {
  return new Machine(bytes, offset, name, persistentLoad).run();
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

class Machine {
  #stack: unknown[] = [];
  #marks: unknown[][] = [];
  #memo = new Map<number, unknown>();
  #dv: DataView;
  #pos: number;
  #op = 0; // offset of the opcode being run, for messages

  constructor(
    readonly bytes: Uint8Array,
    offset: number,
    readonly name: string,
    readonly persistentLoad: PersistentLoad,
  ) {
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#pos = offset;
  }

  fail(why: string): never {
    throw new SyntaxError(`Cannot unpickle "${this.name}": ${why} (opcode at byte ${this.#op})`);
  }

  take(n: number): number {
    const at = this.#pos;
    if (n > this.bytes.length - at) this.fail(`needs ${n} more bytes but the data ends`);
    this.#pos += n;
    return at;
  }

  push(v: unknown): void {
    if (this.#stack.length >= MAX_STACK) this.fail(`stack exceeds ${MAX_STACK} items`);
    this.#stack.push(v);
  }

  pop(): unknown {
    if (this.#stack.length === 0) this.fail("stack underflow");
    return this.#stack.pop();
  }

  top(): unknown {
    if (this.#stack.length === 0) this.fail("stack underflow");
    return this.#stack[this.#stack.length - 1];
  }

  popMark(): unknown[] {
    const items = this.#stack;
    const outer = this.#marks.pop();
    if (!outer) this.fail("no MARK to close");
    this.#stack = outer;
    return items;
  }

  put(index: number): void {
    if (!this.#memo.has(index) && this.#memo.size >= MAX_MEMO) this.fail(`memo exceeds ${MAX_MEMO} entries`);
    this.#memo.set(index, this.top());
  }

  get(index: number): void {
    if (!this.#memo.has(index)) this.fail(`memo slot ${index} is empty`);
    this.push(this.#memo.get(index));
  }

  text(n: number): string {
    const at = this.take(n);
    try {
      return utf8.decode(this.bytes.subarray(at, at + n));
    } catch {
      this.fail("string is not valid UTF-8");
    }
  }

  length64(): number {
    const v = this.#dv.getBigUint64(this.take(8), true);
    if (v > BigInt(this.bytes.length)) this.fail(`length ${v} exceeds the data`);
    return Number(v);
  }

  line(): string {
    const nl = this.bytes.indexOf(0x0a, this.#pos);
    if (nl < 0 || nl - this.#pos > 256) this.fail("GLOBAL name is not a short newline-terminated line");
    return this.text(nl - this.#pos + 1).slice(0, -1);
  }

  global(module: unknown, qualname: unknown): unknown {
    if (typeof module !== "string" || typeof qualname !== "string") {
      this.fail("STACK_GLOBAL needs two strings");
    }
    const full = `${module}.${qualname}`;
    if (module === "torch" && Object.hasOwn(STORAGE_DTYPES, qualname)) {
      return new TorchStorageType(qualname, STORAGE_DTYPES[qualname]);
    }
    if (CALLABLES.has(full)) return new AllowedCallable(full);
    throw new SyntaxError(
      `Cannot unpickle "${this.name}": refusing global "${full}" (opcode at byte ${this.#op}); only ` +
        "collections.OrderedDict, torch tensor rebuilders and torch storage types are allowed",
    );
  }

  reduce(fn: unknown, args: unknown): unknown {
    if (!(fn instanceof AllowedCallable)) this.fail("REDUCE of something that is not an allowed global");
    if (!Array.isArray(args) || !Object.isFrozen(args)) {
      this.fail(`REDUCE of ${fn.qualifiedName} needs a tuple`);
    }
    switch (fn.qualifiedName) {
      case "collections.OrderedDict": {
        const dict = new Map<unknown, unknown>();
        if (args.length === 0) return dict;
        if (args.length === 1 && Array.isArray(args[0])) {
          for (const pair of args[0]) {
            if (!Array.isArray(pair) || pair.length !== 2) this.fail("OrderedDict items must be pairs");
            dict.set(pair[0], pair[1]);
          }
          return dict;
        }
        return this.fail("OrderedDict takes no arguments or one list of pairs");
      }
      case "torch._utils._rebuild_tensor":
      case "torch._utils._rebuild_tensor_v2": {
        // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
        const v2 = fn.qualifiedName.endsWith("v2");
        if (v2 ? args.length < 6 || args.length > 7 : args.length !== 4) {
          this.fail(`${fn.qualifiedName} got ${args.length} arguments`);
        }
        return new TorchTensorRef(args[0], args[1], args[2], args[3], v2 && args[4] === true);
      }
      case "torch._utils._rebuild_parameter": {
        // (data, requires_grad, backward_hooks): a Parameter is its tensor plus requires_grad.
        const data = args[0];
        if (args.length !== 3 || !(data instanceof TorchTensorRef)) {
          this.fail("_rebuild_parameter needs (tensor, requires_grad, hooks)");
        }
        return new TorchTensorRef(data.storage, data.storageOffset, data.size, data.stride, args[1] === true);
      }
      default: // torch.Size(tuple)
        if (args.length !== 1 || !Array.isArray(args[0])) this.fail("torch.Size needs one tuple");
        return Object.freeze([...args[0]]);
    }
  }

  run(): { value: unknown; end: number } {
    const dv = this.#dv;
    for (;;) {
      this.#op = this.#pos;
      const op = this.bytes[this.take(1)];
      switch (op) {
        case 0x80: { // PROTO
          const v = this.bytes[this.take(1)];
          if (v > 5) this.fail(`unsupported pickle protocol ${v}`);
          break;
        }
        case 0x95: // FRAME: a length prefix for buffering; the contents are ordinary opcodes
          this.length64();
          break;
        case 0x2e: // STOP
          return { value: this.pop(), end: this.#pos };
        case 0x28: // MARK
          if (this.#marks.length >= MAX_MARK_DEPTH) this.fail(`MARKs nest deeper than ${MAX_MARK_DEPTH}`);
          this.#marks.push(this.#stack);
          this.#stack = [];
          break;
        case 0x30: // POP
          this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x4e: // NONE
          this.push(null);
          break;
        case 0x88: // NEWTRUE
          this.push(true);
          break;
        case 0x89: // NEWFALSE
          this.push(false);
          break;
        case 0x4a: // BININT: int32
          this.push(dv.getInt32(this.take(4), true));
          break;
        case 0x4b: // BININT1: uint8
          this.push(this.bytes[this.take(1)]);
          break;
        case 0x4d: // BININT2: uint16
          this.push(dv.getUint16(this.take(2), true));
          break;
        case 0x8a: { // LONG1: n-byte little-endian two's complement
          const n = this.bytes[this.take(1)];
          this.push(decodeLong(this.bytes.subarray(this.take(n), this.#pos)));
          break;
        }
        case 0x47: // BINFLOAT: big-endian float64
          this.push(dv.getFloat64(this.take(8), false));
          break;
        case 0x58: // BINUNICODE
          this.push(this.text(dv.getUint32(this.take(4), true)));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.push(this.text(this.bytes[this.take(1)]));
          break;
        case 0x8d: // BINUNICODE8
          this.push(this.text(this.length64()));
          break;
        case 0x55: // SHORT_BINSTRING (Python 2 str; ASCII in every torch file)
          this.push(this.text(this.bytes[this.take(1)]));
          break;
        case 0x54: { // BINSTRING
          const n = dv.getInt32(this.take(4), true);
          if (n < 0) this.fail(`negative string length ${n}`);
          this.push(this.text(n));
          break;
        }
        case 0x43: { // SHORT_BINBYTES
          const n = this.bytes[this.take(1)];
          this.push(this.bytes.slice(this.take(n), this.#pos));
          break;
        }
        case 0x42: { // BINBYTES
          const n = dv.getUint32(this.take(4), true);
          this.push(this.bytes.slice(this.take(n), this.#pos));
          break;
        }
        case 0x7d: // EMPTY_DICT
          this.push(new Map());
          break;
        case 0x5d: // EMPTY_LIST
          this.push([]);
          break;
        case 0x29: // EMPTY_TUPLE
          this.push(Object.freeze([]));
          break;
        case 0x74: // TUPLE
          this.push(Object.freeze(this.popMark()));
          break;
        case 0x85: // TUPLE1
          this.push(Object.freeze([this.pop()]));
          break;
        case 0x86: { // TUPLE2
          const b = this.pop();
          this.push(Object.freeze([this.pop(), b]));
          break;
        }
        case 0x87: { // TUPLE3
          const c = this.pop();
          const b = this.pop();
          this.push(Object.freeze([this.pop(), b, c]));
          break;
        }
        case 0x6c: // LIST
          this.push(this.popMark());
          break;
        case 0x64: // DICT
          this.push(this.setItems(new Map(), this.popMark()));
          break;
        case 0x71: // BINPUT
          this.put(this.bytes[this.take(1)]);
          break;
        case 0x72: // LONG_BINPUT
          this.put(dv.getUint32(this.take(4), true));
          break;
        case 0x94: // MEMOIZE
          this.put(this.#memo.size);
          break;
        case 0x68: // BINGET
          this.get(this.bytes[this.take(1)]);
          break;
        case 0x6a: // LONG_BINGET
          this.get(dv.getUint32(this.take(4), true));
          break;
        case 0x73: { // SETITEM
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case 0x61: { // APPEND
          const v = this.pop();
          this.appendItems(this.top(), [v]);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.popMark();
          this.appendItems(this.top(), items);
          break;
        }
        case 0x63: { // GLOBAL
          const module = this.line();
          this.push(this.global(module, this.line()));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const qualname = this.pop();
          this.push(this.global(this.pop(), qualname));
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop();
          this.push(this.reduce(this.pop(), args));
          break;
        }
        case 0x62: { // BUILD: object state; dicts carry attributes (state_dict._metadata), which we drop
          const state = this.pop();
          const target = this.top();
          if (!(target instanceof Map)) this.fail("BUILD is only supported on dicts");
          if (state !== null && !(state instanceof Map) && !Array.isArray(state)) {
            this.fail("BUILD state is invalid");
          }
          break;
        }
        case 0x51: // BINPERSID
          this.push(this.persistentLoad(this.pop()));
          break;
        default:
          this.fail(`unsupported opcode 0x${op.toString(16).padStart(2, "0")}`);
      }
    }
  }

  setItems(target: unknown, items: unknown[]): Map<unknown, unknown> {
    if (!(target instanceof Map)) this.fail("SETITEM(S) target is not a dict");
    if (items.length % 2) this.fail("SETITEMS has an odd number of items");
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
    return target;
  }

  appendItems(target: unknown, items: unknown[]): void {
    if (!Array.isArray(target) || Object.isFrozen(target)) this.fail("APPEND(S) target is not a list");
    if (target.length + items.length > MAX_STACK) this.fail(`list exceeds ${MAX_STACK} items`);
    for (const v of items) target.push(v);
  }
}

/** Little-endian two's complement -> number when exact, else bigint. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
