/**
 * Every tensor op with a backward, in one namespace.
 * @example import { ops, Tensor } from "emlab/tensor"; const y = ops.gelu(ops.linear(x, w, b));
 */
export * from "./ops/attention.ts";
export * from "./ops/elementwise.ts";
export * from "./ops/matmul.ts";
export * from "./ops/nn.ts";
export * from "./ops/norm.ts";
export * from "./ops/reduce.ts";
export { concat, gather, permute, repeatInterleave, reshape, slice, transpose } from "./ops/shape.ts";
