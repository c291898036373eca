/**
 * The subset of `onnx.proto` (IR version 8) the exporter writes, as a protobufjs reflection schema
 * with the official field numbers, plus plain-object types and encode/decode.
 *
 * Field numbers were checked against onnx 1.12's compiled descriptors
 * (`onnx.ModelProto.DESCRIPTOR.fields`). onnx.proto is proto2: unknown fields are skipped on decode,
 * and repeated numeric fields are accepted packed or unpacked by every reader.
 * @module
 */

import protobuf from "npm:protobufjs@8.8.1";

/** `TensorProto.DataType` values the exporter uses. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
} as const;

/** `AttributeProto.AttributeType` values. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  FLOATS: 6,
  INTS: 7,
} as const;

/** ONNX IR version written (onnx 1.12 knows up to 8; onnxruntime 1.30 reads it). */
export const IR_VERSION = 8;
/** Default-domain opset (17 adds LayerNormalization; the highest onnx 1.12 checks). */
export const OPSET = 17;
/** Version of the `com.microsoft` contrib domain, when a graph uses it. */
export const MS_OPSET = 1;

/** `TensorProto`: dims, element type, and either raw little-endian bytes or typed value lists. */
export interface TensorProto {
  name?: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: number[];
}

/** `AttributeProto`: exactly one value field, matching `type`. */
export interface AttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: number[];
}

/** `NodeProto`. An empty input name means "optional input left out". */
export interface NodeProto {
  name?: string;
  op_type: string;
  domain?: string;
  input: string[];
  output: string[];
  attribute?: AttributeProto[];
}

/** One dimension: a fixed size or a symbolic name ("batch"). */
export interface Dimension {
  dim_value?: number;
  dim_param?: string;
}

/** `ValueInfoProto` for a tensor: name, element type and shape. */
export interface ValueInfoProto {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: Dimension[] } } };
}

/** `GraphProto`: nodes in topological order, initializers, inputs and outputs. */
export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  doc_string?: string;
}

/** `OperatorSetIdProto`: "" is the default ONNX domain. */
export interface OperatorSetIdProto {
  domain: string;
  version: number;
}

/** `ModelProto`. */
export interface ModelProto {
  ir_version: number;
  opset_import: OperatorSetIdProto[];
  producer_name?: string;
  producer_version?: string;
  doc_string?: string;
  graph: GraphProto;
  metadata_props?: { key: string; value: string }[];
}

const f = (id: number, type: string, rule?: "repeated") => (rule ? { id, type, rule } : { id, type });

/** protobufjs JSON descriptor: message name -> fields with onnx.proto's numbers. */
const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            ir_version: f(1, "int64"),
            opset_import: f(8, "OperatorSetIdProto", "repeated"),
            producer_name: f(2, "string"),
            producer_version: f(3, "string"),
            domain: f(4, "string"),
            model_version: f(5, "int64"),
            doc_string: f(6, "string"),
            graph: f(7, "GraphProto"),
            metadata_props: f(14, "StringStringEntryProto", "repeated"),
          },
        },
        StringStringEntryProto: { fields: { key: f(1, "string"), value: f(2, "string") } },
        OperatorSetIdProto: { fields: { domain: f(1, "string"), version: f(2, "int64") } },
        GraphProto: {
          fields: {
            node: f(1, "NodeProto", "repeated"),
            name: f(2, "string"),
            initializer: f(5, "TensorProto", "repeated"),
            doc_string: f(10, "string"),
            input: f(11, "ValueInfoProto", "repeated"),
            output: f(12, "ValueInfoProto", "repeated"),
            value_info: f(13, "ValueInfoProto", "repeated"),
          },
        },
        NodeProto: {
          fields: {
            input: f(1, "string", "repeated"),
            output: f(2, "string", "repeated"),
            name: f(3, "string"),
            op_type: f(4, "string"),
            domain: f(7, "string"),
            attribute: f(5, "AttributeProto", "repeated"),
            doc_string: f(6, "string"),
          },
        },
        AttributeProto: {
          fields: {
            name: f(1, "string"),
            doc_string: f(13, "string"),
            type: f(20, "int32"),
            f: f(2, "float"),
            i: f(3, "int64"),
            s: f(4, "bytes"),
            t: f(5, "TensorProto"),
            g: f(6, "GraphProto"),
            floats: f(7, "float", "repeated"),
            ints: f(8, "int64", "repeated"),
            strings: f(9, "bytes", "repeated"),
            tensors: f(10, "TensorProto", "repeated"),
          },
        },
        TensorProto: {
          fields: {
            dims: f(1, "int64", "repeated"),
            data_type: f(2, "int32"),
            float_data: f(4, "float", "repeated"),
            int32_data: f(5, "int32", "repeated"),
            string_data: f(6, "bytes", "repeated"),
            int64_data: f(7, "int64", "repeated"),
            name: f(8, "string"),
            raw_data: f(9, "bytes"),
            double_data: f(10, "double", "repeated"),
            doc_string: f(12, "string"),
          },
        },
        ValueInfoProto: {
          fields: { name: f(1, "string"), type: f(2, "TypeProto"), doc_string: f(3, "string") },
        },
        TypeProto: {
          fields: { tensor_type: f(1, "TypeProtoTensor"), denotation: f(6, "string") },
        },
        // TypeProto.Tensor, flattened to a top-level name: nesting does not change the wire format.
        TypeProtoTensor: { fields: { elem_type: f(1, "int32"), shape: f(2, "TensorShapeProto") } },
        TensorShapeProto: { fields: { dim: f(1, "Dimension", "repeated") } },
        // TensorShapeProto.Dimension: a oneof of dim_value / dim_param; set exactly one.
        Dimension: {
          fields: { dim_value: f(1, "int64"), dim_param: f(2, "string"), denotation: f(3, "string") },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(SCHEMA);
const Model = root.lookupType("onnx.ModelProto");

/**
 * Serialises a model to ONNX protobuf bytes.
 * @throws {TypeError} when a field has the wrong type (protobufjs's verify message, prefixed).
 * @example
 * ```ts
 * import { encodeModel, decodeModel, IR_VERSION } from "./onnx_proto.ts";
 * const bytes = encodeModel({
 *   ir_version: IR_VERSION, opset_import: [{ domain: "", version: 17 }],
 *   graph: { name: "g", node: [], initializer: [], input: [], output: [] },
 * });
 * if (decodeModel(bytes).ir_version !== IR_VERSION) throw new Error("round trip failed");
 * ```
 */
export function encodeModel(model: ModelProto): Uint8Array {
  const problem = Model.verify(model);
  if (problem) throw new TypeError(`Cannot encode ONNX model: ${problem}`);
  return Model.encode(model).finish();
}

/**
 * Parses ONNX protobuf bytes (the subset above; other fields are skipped). int64 values become
 * numbers, bytes stay Uint8Array, absent repeated fields become empty arrays, and absent singular
 * fields stay absent (read them as their default: "" or 0).
 * @example
 * ```ts
 * import { decodeModel } from "./onnx_proto.ts";
 * const bytes = await Deno.readFile("model.onnx").catch(() => null);
 * if (bytes) console.log(decodeModel(bytes).graph.node.length);
 * ```
 */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const message = Model.decode(bytes);
  return Model.toObject(message, { longs: Number, arrays: true }) as ModelProto;
}
