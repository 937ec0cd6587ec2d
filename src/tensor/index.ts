/**
 * emlab's tensor engine: Tensor + tape autodiff, ops with backward, fast kernels,
 * optimisers and safetensors files.
 */

export {
  bf16Hardware,
  type ComputeDtype,
  computeDtype,
  describeBf16,
  markWeightsChanged,
  parseDtype,
  roundBf16,
  withComputeDtype,
} from "./kernels/bf16.ts";
export { describeKernels, type MatmulBackend, matmulBackend, setMatmulBackend } from "./kernels/matmul.ts";
export { ortAvailable, ortThreads, setOrtThreads } from "./kernels/ort.ts";
export * as ops from "./ops.ts";
export * from "./optim.ts";
export { mixSeed, Rng } from "./random.ts";
export * from "./safetensors.ts";
export {
  backward,
  clearTape,
  grad,
  isGradEnabled,
  noGrad,
  numel,
  type Shape,
  Tensor,
  tapeLength,
} from "./tensor.ts";
