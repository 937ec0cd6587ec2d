/**
 * A minimal ONNX model writer (protobuf by hand, no dependency): just enough to build the
 * one-node graphs that emlab runs through onnxruntime — MatMul with transposes, Softmax, …
 *
 * Field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
 * ValueInfoProto, TypeProto, TensorShapeProto).
 */

class ProtoWriter {
  private bytes: number[] = [];

  private varint(v: number): void {
    // Non-negative values below 2^32 (sizes, enums); negatives go through int().
    let x = v >>> 0;
    while (x > 0x7f) {
      this.bytes.push((x & 0x7f) | 0x80);
      x >>>= 7;
    }
    this.bytes.push(x);
  }
  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    this.tag(field, 0);
    if (v >= 0) this.varint(v);
    else {
      // int64 two's complement: ten 7-bit groups.
      let x = BigInt.asUintN(64, BigInt(v));
      while (x > 0x7fn) {
        this.bytes.push(Number(x & 0x7fn) | 0x80);
        x >>= 7n;
      }
      this.bytes.push(Number(x));
    }
    return this;
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }
  bytesField(field: number, data: Uint8Array): this {
    this.tag(field, 2);
    this.varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }
  message(field: number, w: ProtoWriter): this {
    return this.bytesField(field, w.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

export type OnnxAttr = { name: string; int?: number; float?: number; ints?: number[] };
export type OnnxNode = { op: string; inputs: string[]; outputs: string[]; domain?: string; attrs?: OnnxAttr[] };
/** elemType: 1 = float32, 7 = int64, 6 = int32. dims: a number is fixed, a string is symbolic. */
export type OnnxValue = { name: string; elemType?: number; dims: (number | string)[] };

function attribute(a: OnnxAttr): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name);
  if (a.float !== undefined) w.float(2, a.float).int(20, 1);
  else if (a.int !== undefined) w.int(3, a.int).int(20, 2);
  else if (a.ints !== undefined) {
    for (const v of a.ints) w.int(8, v);
    w.int(20, 7);
  }
  return w;
}

function valueInfo(v: OnnxValue): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) {
    const dim = typeof d === "number" ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().int(1, v.elemType ?? 1).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

/** Serialises a graph of nodes to ONNX ModelProto bytes (opset 17 + com.microsoft 1). */
export function onnxModel(nodes: OnnxNode[], inputs: OnnxValue[], outputs: OnnxValue[]): Uint8Array {
  const graph = new ProtoWriter();
  nodes.forEach((n, i) => {
    const node = new ProtoWriter();
    for (const x of n.inputs) node.string(1, x);
    for (const y of n.outputs) node.string(2, y);
    node.string(3, `n${i}`).string(4, n.op);
    for (const a of n.attrs ?? []) node.message(5, attribute(a));
    if (n.domain) node.string(7, n.domain);
    graph.message(1, node);
  });
  graph.string(2, "emlab");
  for (const v of inputs) graph.message(11, valueInfo(v));
  for (const v of outputs) graph.message(12, valueInfo(v));
  const model = new ProtoWriter().int(1, 8); // ir_version 8
  model.message(8, new ProtoWriter().string(1, "").int(2, 17));
  model.message(8, new ProtoWriter().string(1, "com.microsoft").int(2, 1));
  model.message(7, graph);
  return model.finish();
}
