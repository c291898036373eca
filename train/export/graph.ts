/**
 * A small ONNX graph builder: typed initializers, nodes with checked attributes, and value names that
 * are unique and defined before use (so the node list is always in topological order).
 * @module
 */

import {
  AttributeType,
  DataType,
  type Dimension,
  encodeModel,
  IR_VERSION,
  type ModelProto,
  MS_OPSET,
  type NodeProto,
  type OperatorSetIdProto,
  OPSET,
  type TensorProto,
  type ValueInfoProto,
} from "./onnx_proto.ts";

/** Typed arrays an initializer can hold; the array type picks the ONNX element type. */
export type TensorData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

/** A float attribute (plain numbers are INT attributes, so floats are marked explicitly). */
export interface FloatAttribute {
  float: number;
}

/** Attribute values: integer -> INT, integer[] -> INTS, string -> STRING, {@linkcode float}() -> FLOAT. */
export type AttributeValue = number | number[] | string | FloatAttribute;

/**
 * Marks a FLOAT attribute value.
 * @example
 * ```ts
 * import { float } from "./graph.ts";
 * const attributes = { axis: -1, epsilon: float(1e-12) };
 * ```
 */
export function float(value: number): FloatAttribute {
  return { float: value };
}

/** Options of {@linkcode GraphBuilder.node}. */
export interface NodeOptions {
  attributes?: Record<string, AttributeValue>;
  /** Output names (made unique) or how many outputs to name after the op. Default 1. */
  outputs?: number | string[];
  /** Operator domain; "" (default ONNX) unless a contrib op such as "com.microsoft". */
  domain?: string;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementType(data: TensorData): number {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Int8Array) return DataType.INT8;
  if (data instanceof Uint8Array) return DataType.UINT8;
  if (data instanceof Int32Array) return DataType.INT32;
  return DataType.INT64;
}

function dimension(d: number | string): Dimension {
  return typeof d === "string" ? { dim_param: d } : { dim_value: d };
}

/**
 * Builds one ONNX graph. Every value name is unique; every node input must already exist (a graph
 * input, an initializer or an earlier node's output), or be "" for an omitted optional input.
 * @example
 * ```ts
 * import { DataType } from "./onnx_proto.ts";
 * import { GraphBuilder } from "./graph.ts";
 * const g = new GraphBuilder("double");
 * const x = g.input("x", DataType.FLOAT, ["n"]);
 * const y = g.op("Mul", [x, g.initializer("two", new Float32Array([2]), [])]);
 * g.output(y, DataType.FLOAT, ["n"]);
 * const bytes = g.encode();
 * ```
 */
export class GraphBuilder {
  readonly name: string;
  #nodes: NodeProto[] = [];
  #initializers: TensorProto[] = [];
  #inputs: ValueInfoProto[] = [];
  #outputs: ValueInfoProto[] = [];
  #defined = new Set<string>();
  #domains = new Set<string>();
  #constants = new Map<string, string>();
  #initializerBytes = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** A name not used yet: `base`, else `base_1`, `base_2`, ... */
  fresh(base: string): string {
    if (!this.#defined.has(base)) return base;
    for (let i = 1;; i++) if (!this.#defined.has(`${base}_${i}`)) return `${base}_${i}`;
  }

  #define(name: string): string {
    if (!name) throw new TypeError("Value names must be non-empty");
    if (this.#defined.has(name)) {
      throw new RangeError(`Value "${name}" is already defined in graph "${this.name}"`);
    }
    this.#defined.add(name);
    return name;
  }

  /** Declares a graph input; dims are sizes or symbolic names. Returns its name. */
  input(name: string, elemType: number, dims: (number | string)[]): string {
    this.#define(name);
    this.#inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares an existing value as a graph output. */
  output(name: string, elemType: number, dims: (number | string)[]): void {
    if (!this.#defined.has(name)) {
      throw new RangeError(`Graph output "${name}" is not produced by any node, input or initializer`);
    }
    this.#outputs.push(valueInfo(name, elemType, dims));
  }

  /**
   * Adds a constant tensor (raw little-endian bytes) under a fresh name derived from `name`.
   * @throws {RangeError} when `data.length` does not match the dims.
   */
  initializer(name: string, data: TensorData, dims: number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) {
      throw new RangeError(
        `Initializer "${name}" has ${data.length} values but dims [${dims}] need ${count}`,
      );
    }
    if (!LITTLE_ENDIAN) throw new RangeError("ONNX raw_data is little-endian; this platform is big-endian");
    const unique = this.#define(this.fresh(name));
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.#initializers.push({ name: unique, dims, data_type: elementType(data), raw_data: raw });
    this.#initializerBytes += raw.byteLength;
    return unique;
  }

  /** An int64 constant, shared between uses (shapes, axes, indices). `dims` default [n]. */
  int64(values: number[], dims: number[] = [values.length]): string {
    return this.#constant("int64", values, dims, () => BigInt64Array.from(values, BigInt));
  }

  /** A float32 constant, shared between uses. `dims` default [] for one value, else [n]. */
  float32(values: number[], dims: number[] = values.length === 1 ? [] : [values.length]): string {
    return this.#constant("float", values, dims, () => Float32Array.from(values));
  }

  #constant(kind: string, values: number[], dims: number[], make: () => TensorData): string {
    const key = `${kind}:${dims}:${values}`;
    let name = this.#constants.get(key);
    if (!name) {
      name = this.initializer(
        `const_${kind}_${values.slice(0, 4).join("_").replaceAll("-", "m")}`,
        make(),
        dims,
      );
      this.#constants.set(key, name);
    }
    return name;
  }

  /**
   * Appends a node and returns its output names.
   * @throws {RangeError} when an input is not defined yet (names the op and the input).
   * @throws {TypeError} when an attribute value cannot be typed (e.g. a non-integer plain number).
   */
  node(opType: string, inputs: string[], options: NodeOptions = {}): string[] {
    for (const input of inputs) {
      if (input !== "" && !this.#defined.has(input)) {
        throw new RangeError(
          `Node ${opType} uses "${input}", which is not defined yet; add its producer or initializer first`,
        );
      }
    }
    const outs = options.outputs ?? 1;
    const base = opType.charAt(0).toLowerCase() + opType.slice(1);
    const names = typeof outs === "number"
      ? Array.from({ length: outs }, () => this.#define(this.fresh(base)))
      : outs.map((n) => this.#define(this.fresh(n)));
    const domain = options.domain ?? "";
    if (domain) this.#domains.add(domain);
    const node: NodeProto = {
      name: `${opType}_${this.#nodes.length}`,
      op_type: opType,
      input: inputs,
      output: names,
      attribute: Object.entries(options.attributes ?? {}).map(([k, v]) => attribute(opType, k, v)),
    };
    if (domain) node.domain = domain;
    this.#nodes.push(node);
    return names;
  }

  /** {@linkcode GraphBuilder.node} for the common single-output case. */
  op(opType: string, inputs: string[], attributes?: Record<string, AttributeValue>, domain?: string): string {
    return this.node(opType, inputs, { attributes, domain })[0];
  }

  /** Bytes of initializer data added so far. */
  get initializerBytes(): number {
    return this.#initializerBytes;
  }

  /** The model: IR 8, opset 17, plus version 1 of every contrib domain a node used (com.microsoft). */
  build(options: { producerName?: string; docString?: string } = {}): ModelProto {
    if (this.#outputs.length === 0) throw new RangeError(`Graph "${this.name}" has no outputs`);
    const opsets: OperatorSetIdProto[] = [{ domain: "", version: OPSET }];
    for (const d of this.#domains) opsets.push({ domain: d, version: MS_OPSET });
    return {
      ir_version: IR_VERSION,
      opset_import: opsets,
      producer_name: options.producerName ?? "bert-webgpu",
      doc_string: options.docString,
      graph: {
        name: this.name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    };
  }

  /** {@linkcode GraphBuilder.build} then encode to ONNX bytes. */
  encode(options: { producerName?: string; docString?: string } = {}): Uint8Array {
    return encodeModel(this.build(options));
  }
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map(dimension) } } } };
}

function attribute(op: string, name: string, value: AttributeValue) {
  if (typeof value === "string") {
    return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  }
  if (typeof value === "object" && !Array.isArray(value)) {
    return { name, type: AttributeType.FLOAT, f: value.float };
  }
  const ints = Array.isArray(value) ? value : [value];
  for (const v of ints) {
    if (!Number.isSafeInteger(v)) {
      throw new TypeError(
        `Attribute "${name}" of ${op} is ${JSON.stringify(value)}; integers only, wrap floats in float()`,
      );
    }
  }
  return Array.isArray(value)
    ? { name, type: AttributeType.INTS, ints: value }
    : { name, type: AttributeType.INT, i: value };
}
