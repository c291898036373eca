import assert from "node:assert/strict";
import {
  AttributeType,
  DataType,
  decodeModel,
  encodeModel,
  IR_VERSION,
  type ModelProto,
} from "./onnx_proto.ts";

/** A model touching every field the exporter writes: int64 dims, raw bytes, each attribute type. */
function sampleModel(): ModelProto {
  const weights = new Float32Array([1.5, -2, 0.25, 3e-8, -1e30, 7]);
  return {
    ir_version: IR_VERSION,
    opset_import: [{ domain: "", version: 17 }, { domain: "com.microsoft", version: 1 }],
    producer_name: "proto-test",
    doc_string: "every field",
    graph: {
      name: "sample",
      node: [{
        name: "n0",
        op_type: "Gemm",
        input: ["x", "w", ""],
        output: ["y"],
        attribute: [
          { name: "alpha", type: AttributeType.FLOAT, f: 0.5 },
          { name: "transB", type: AttributeType.INT, i: 1 },
          { name: "big", type: AttributeType.INT, i: -5_000_000_000 },
          { name: "perm", type: AttributeType.INTS, ints: [0, -1, 2] },
          { name: "mode", type: AttributeType.STRING, s: new TextEncoder().encode("constant") },
          { name: "scales", type: AttributeType.FLOATS, floats: [0.5, 2] },
        ],
      }],
      initializer: [{
        name: "w",
        dims: [3, 2],
        data_type: DataType.FLOAT,
        raw_data: new Uint8Array(weights.buffer),
      }],
      input: [{
        name: "x",
        type: {
          tensor_type: {
            elem_type: DataType.FLOAT,
            shape: { dim: [{ dim_param: "batch" }, { dim_value: 3 }] },
          },
        },
      }],
      output: [{
        name: "y",
        type: {
          tensor_type: {
            elem_type: DataType.FLOAT,
            shape: { dim: [{ dim_param: "batch" }, { dim_value: 2 }] },
          },
        },
      }],
    },
  };
}

Deno.test("encodeModel() round-trips through decodeModel()", () => {
  const model = sampleModel();
  const back = decodeModel(encodeModel(model));
  assert.deepEqual(back.ir_version, IR_VERSION);
  // Fields at their default value ("" domain) may be left off the wire; absent reads as default.
  assert.deepEqual(back.opset_import.map((o) => [o.domain ?? "", o.version]), [["", 17], [
    "com.microsoft",
    1,
  ]]);
  assert.deepEqual(back.producer_name, "proto-test");
  const node = back.graph.node[0];
  assert.deepEqual([node.op_type, node.input, node.output], ["Gemm", ["x", "w", ""], ["y"]]);
  const attrs = Object.fromEntries(node.attribute!.map((a) => [a.name, a]));
  assert.deepEqual(attrs.alpha.f, 0.5);
  assert.deepEqual(attrs.big.i, -5_000_000_000);
  assert.deepEqual(attrs.perm.ints, [0, -1, 2]);
  assert.deepEqual(new TextDecoder().decode(attrs.mode.s), "constant");
  assert.deepEqual(attrs.scales.floats, [0.5, 2]);
  const init = back.graph.initializer[0];
  assert.deepEqual(init.dims, [3, 2]);
  assert.deepEqual(new Uint8Array(init.raw_data!), model.graph.initializer[0].raw_data);
  assert.deepEqual(back.graph.input[0].type.tensor_type.shape.dim, [{ dim_param: "batch" }, {
    dim_value: 3,
  }]);
});

Deno.test("encodeModel() bytes read back identically with the official onnx package", async () => {
  // The oracle: onnx's own generated protobuf classes decode our bytes; wrong field numbers or wire
  // types would land in other fields or fail to parse.
  const model = sampleModel();
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    await Deno.writeFile(path, encodeModel(model));
    const script = `
import json, sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
n = m.graph.node[0]
a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
a["mode"] = a["mode"].decode()
i = m.graph.input[0].type.tensor_type
print(json.dumps(dict(ir=m.ir_version, opsets=[[o.domain, o.version] for o in m.opset_import],
  producer=m.producer_name, doc=m.doc_string, graph=m.graph.name, op=n.op_type, inputs=list(n.input),
  outputs=list(n.output), attrs=a, init_name=m.graph.initializer[0].name,
  init=numpy_helper.to_array(m.graph.initializer[0]).tolist(),
  elem=i.elem_type, dims=[d.dim_param or d.dim_value for d in i.shape.dim])))`;
    const { code, stdout, stderr } = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", script, path],
    })
      .output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const seen = JSON.parse(new TextDecoder().decode(stdout));
    const w = new Float32Array(model.graph.initializer[0].raw_data!.buffer);
    assert.deepEqual(seen, {
      ir: IR_VERSION,
      opsets: [["", 17], ["com.microsoft", 1]],
      producer: "proto-test",
      doc: "every field",
      graph: "sample",
      op: "Gemm",
      inputs: ["x", "w", ""],
      outputs: ["y"],
      attrs: {
        alpha: 0.5,
        transB: 1,
        big: -5_000_000_000,
        perm: [0, -1, 2],
        mode: "constant",
        scales: [0.5, 2],
      },
      init_name: "w",
      init: [[w[0], w[1]], [w[2], w[3]], [w[4], w[5]]],
      elem: DataType.FLOAT,
      dims: ["batch", 3],
    });
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("encodeModel() rejects a field of the wrong type", () => {
  const model = sampleModel();
  (model.graph.node[0] as unknown as { op_type: number }).op_type = 5;
  assert.throws(() => encodeModel(model), { name: "TypeError", message: /op_type/ });
});
