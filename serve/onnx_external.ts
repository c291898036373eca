/**
 * Loads an ONNX file into onnxruntime-web without a second copy of its weights inside the wasm heap.
 *
 * Given the bytes, onnxruntime-web copies the whole file into the wasm heap, onnxruntime parses it
 * (the protobuf's raw_data strings are a further copy) and then copies every initializer into its own
 * tensor. The heap never shrinks, so those transient copies stay as resident memory for the life of
 * the process (measured with a bert-base int8 file of 111 MB: 414 MB RSS after GC, 508 MB peak).
 *
 * {@linkcode splitInitializers} rewrites the model so every `raw_data` initializer becomes external
 * data that points into the original file (`location` = the file itself, `offset`/`length` = where
 * its raw bytes already are). The rewritten graph is a few kilobytes; the file is mounted as the
 * external data file, and onnxruntime copies each initializer once, straight into its tensor.
 *
 * This walks protobuf's wire format for the three messages involved (ModelProto.graph = 7,
 * GraphProto.initializer = 5, TensorProto.raw_data = 9 / external_data = 13 / data_location = 14,
 * field numbers of onnx.proto) and copies every other field byte for byte, so it does not depend
 * on which exporter wrote the file. serve/ cannot import the exporter's protobuf schema.
 * @module
 */

/** One field as it lies in the buffer. */
interface Field {
  number: number;
  wire: number;
  /** Start of the tag. */
  start: number;
  /** Start of the payload (after the length, for length-delimited fields). */
  payload: number;
  /** End of the field. */
  end: number;
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0, scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new RangeError("truncated varint");
    const b = buf[pos++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
    scale *= 128;
  }
  throw new RangeError("varint longer than 10 bytes");
}

function* fields(buf: Uint8Array, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    const [tag, afterTag] = readVarint(buf, pos);
    const number = Math.floor(tag / 8), wire = tag & 7;
    let payload = afterTag, fieldEnd: number;
    if (wire === 0) fieldEnd = readVarint(buf, afterTag)[1];
    else if (wire === 1) fieldEnd = afterTag + 8;
    else if (wire === 5) fieldEnd = afterTag + 4;
    else if (wire === 2) {
      const [length, afterLength] = readVarint(buf, afterTag);
      payload = afterLength;
      fieldEnd = afterLength + length;
    } else throw new RangeError(`unsupported protobuf wire type ${wire} at byte ${fieldStart}`);
    if (fieldEnd > end) throw new RangeError(`field ${number} at byte ${fieldStart} runs past its message`);
    yield { number, wire, start: fieldStart, payload, end: fieldEnd };
    pos = fieldEnd;
  }
}

/** A growable byte writer. */
class Writer {
  #parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): this {
    this.#parts.push(b);
    this.length += b.length;
    return this;
  }
  varint(v: number): this {
    const out: number[] = [];
    while (v >= 0x80) {
      out.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return this.bytes(Uint8Array.from(out));
  }
  /** A length-delimited field. */
  message(number: number, body: Uint8Array): this {
    return this.varint(number * 8 + 2).varint(body.length).bytes(body);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

const utf8 = new TextEncoder();

function entry(key: string, value: string): Uint8Array {
  return new Writer().message(1, utf8.encode(key)).message(2, utf8.encode(value)).finish();
}

/** Smallest initializer worth moving out (onnxruntime reads tiny ones from the proto anyway). */
const MIN_EXTERNAL_BYTES = 128;

function rewriteTensor(buf: Uint8Array, f: Field, location: string): Uint8Array | null {
  let raw: Field | undefined;
  for (const g of fields(buf, f.payload, f.end)) {
    if (g.number === 13 || g.number === 14) return null; // already external: keep as is
    if (g.number === 9 && g.wire === 2) raw = g;
  }
  if (raw === undefined || raw.end - raw.payload < MIN_EXTERNAL_BYTES) return null;
  const w = new Writer();
  for (const g of fields(buf, f.payload, f.end)) {
    if (g.start !== raw.start) w.bytes(buf.subarray(g.start, g.end));
  }
  w.message(13, entry("location", location));
  w.message(13, entry("offset", String(raw.payload)));
  w.message(13, entry("length", String(raw.end - raw.payload)));
  w.varint(14 * 8).varint(1); // data_location = EXTERNAL
  return w.finish();
}

function rewriteGraph(buf: Uint8Array, graph: Field, location: string): [Uint8Array, number] {
  const w = new Writer();
  let moved = 0;
  for (const f of fields(buf, graph.payload, graph.end)) {
    const tensor = f.number === 5 && f.wire === 2 ? rewriteTensor(buf, f, location) : null;
    if (tensor === null) w.bytes(buf.subarray(f.start, f.end));
    else {
      w.message(5, tensor);
      moved++;
    }
  }
  return [w.finish(), moved];
}

/** What {@linkcode splitInitializers} returns. */
export interface SplitModel {
  /** The model with initializers moved out; small. */
  graph: Uint8Array;
  /** How many initializers now point into the file. */
  moved: number;
}

/**
 * Rewrites an ONNX model so that its raw_data initializers are external data inside the original
 * file, named `location`. Load `graph` with `externalData: [{ path: location, data: model }]`.
 * @throws {RangeError} when the bytes are not a well-formed protobuf.
 * @example
 * ```ts ignore
 * import { splitInitializers } from "./onnx_external.ts";
 * const model = await Deno.readFile("model.int8.onnx");
 * const { graph } = splitInitializers(model, "model.int8.onnx");
 * // ort.InferenceSession.create(graph, { externalData: [{ path: "model.int8.onnx", data: model }] })
 * ```
 */
export function splitInitializers(model: Uint8Array, location: string): SplitModel {
  const w = new Writer();
  let moved = 0;
  for (const f of fields(model, 0, model.length)) {
    if (f.number === 7 && f.wire === 2) {
      const [graph, n] = rewriteGraph(model, f, location);
      w.message(7, graph);
      moved += n;
    } else w.bytes(model.subarray(f.start, f.end));
  }
  return { graph: w.finish(), moved };
}

/**
 * A model file that onnxruntime-web reads range by range from disk while it creates the session, so
 * the whole file never sits in JS memory next to the wasm heap that receives it (with a bert-base
 * int8 file, that copy was 111 MB of the load's peak).
 *
 * onnxruntime-web 1.30 accepts external data as a Uint8Array (checked with instanceof) and reads it
 * only through `byteLength` and `subarray(begin, end)`, once per initializer (its
 * `Module.MountedFiles` lookup); this subclass answers those two from the file. Tested by
 * serve/onnx_external_test.ts against the in-memory route; a newer onnxruntime-web that reads the
 * bytes another way would fail that test, not serve wrong weights (a read past the answered length
 * fails the load).
 *
 * Each range it hands out is freed when the next one is asked for, and the last by
 * {@linkcode FileRanges.close} (call it once the session exists): onnxruntime copies a range into its
 * heap in the same synchronous call that asks for it. Left to the garbage collector, the ranges
 * stayed resident (about 27 MB for bert-base int8) until some later collection, under the first
 * runs' peak. An onnxruntime-web that kept a range for later would read it empty, and
 * serve/onnx_external_test.ts would see other logits.
 */
export class FileRanges extends Uint8Array {
  #file: Deno.FsFile;
  #size: number;
  #last: Uint8Array<ArrayBuffer> | null = null;

  /** Opens `path` (read permission needed); call {@linkcode FileRanges.close} after the session exists. */
  constructor(path: string) {
    super(0);
    this.#file = Deno.openSync(path);
    this.#size = this.#file.statSync().size;
  }

  override get byteLength(): number {
    return this.#size;
  }

  override get length(): number {
    return this.#size;
  }

  /** Reads bytes [begin, end) of the file into a new array (a copy, not a view). */
  override subarray(begin = 0, end = this.#size): Uint8Array<ArrayBuffer> {
    if (begin < 0 || end > this.#size || begin > end) {
      throw new RangeError(`range [${begin}, ${end}) outside a file of ${this.#size} bytes`);
    }
    this.#free();
    const out = new Uint8Array(end - begin);
    this.#last = out;
    this.#file.seekSync(begin, Deno.SeekMode.Start);
    for (let n = 0; n < out.length;) {
      const read = this.#file.readSync(out.subarray(n));
      if (read === null) throw new RangeError(`the file ended at byte ${begin + n}, before ${end}`);
      n += read;
    }
    return out;
  }

  /** Frees the last range handed out (detached: its views read as empty). */
  #free(): void {
    this.#last?.buffer.transfer(0);
    this.#last = null;
  }

  /** Closes the file and frees the last range read. */
  close(): void {
    this.#file.close();
    this.#free();
  }
}
