/** Normalisations over the last dim, fused forward + backward: LayerNorm and RMSNorm. */
import { nativeFused } from "../kernels/fused.ts";
import { accumulate, fmtShape, needsGrad, record, Tensor } from "../tensor.ts";

function checkParam(op: string, x: Tensor, p: Tensor | null | undefined, what: string) {
  const d = x.shape[x.rank - 1];
  if (p && (p.rank !== 1 || p.shape[0] !== d)) {
    throw new Error(`${op}: ${what} ${fmtShape(p.shape)} does not match input ${fmtShape(x.shape)}`);
  }
}

/** LayerNorm: (x − mean) / sqrt(var + eps) · weight + bias over the last dim. */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  checkParam("layerNorm", x, weight, "weight");
  checkParam("layerNorm", x, bias, "bias");
  const d = x.shape[x.rank - 1]!;
  const rows = x.size / d;
  const src = x.data;
  const y = new Float32Array(x.size);
  const xhat = new Float32Array(x.size);
  const rstd = new Float32Array(rows);
  const w = weight?.data;
  const b = bias?.data;
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    let mu = 0;
    for (let j = 0; j < d; j++) mu += src[base + j]!;
    mu /= d;
    let v = 0;
    for (let j = 0; j < d; j++) {
      const c = src[base + j]! - mu;
      v += c * c;
    }
    const rs = 1 / Math.sqrt(v / d + eps);
    rstd[r] = rs;
    for (let j = 0; j < d; j++) {
      const h = (src[base + j]! - mu) * rs;
      xhat[base + j] = h;
      y[base + j] = (w ? h * w[j]! : h) + (b ? b[j]! : 0);
    }
  }
  const out = new Tensor(y, x.shape);
  if (!needsGrad(x, weight, bias)) return out;
  return record(out, [x, weight, bias], (g) => {
    const gw = weight?.requiresGrad ? new Float32Array(d) : null;
    const gb = bias?.requiresGrad ? new Float32Array(d) : null;
    const gx = x.requiresGrad ? new Float32Array(x.size) : null;
    for (let r = 0; r < rows; r++) {
      const base = r * d;
      let sumG = 0;
      let sumGH = 0;
      for (let j = 0; j < d; j++) {
        const gj = g[base + j]!;
        const h = xhat[base + j]!;
        const gh = w ? gj * w[j]! : gj;
        sumG += gh;
        sumGH += gh * h;
        if (gw) gw[j]! += gj * h;
        if (gb) gb[j]! += gj;
      }
      if (gx) {
        const rs = rstd[r]!;
        const mg = sumG / d;
        const mgh = sumGH / d;
        for (let j = 0; j < d; j++) {
          const gh = w ? g[base + j]! * w[j]! : g[base + j]!;
          gx[base + j] = rs * (gh - mg - xhat[base + j]! * mgh);
        }
      }
    }
    if (gx) accumulate(x, gx, true);
    if (gw) accumulate(weight, gw, true);
    if (gb) accumulate(bias, gb, true);
  });
}

/** RMSNorm (Llama/Qwen): x / sqrt(mean(x²) + eps) · weight over the last dim. */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  checkParam("rmsNorm", x, weight, "weight");
  const d = x.shape[x.rank - 1]!;
  const rows = x.size / d;
  const src = x.data;
  const y = new Float32Array(x.size);
  const rstd = new Float32Array(rows);
  const w = weight?.data;
  const native = nativeFused();
  if (native) native.rmsNorm(src, w ?? null, y, rstd, d, eps);
  else
    for (let r = 0; r < rows; r++) {
      const base = r * d;
      let ss = 0;
      for (let j = 0; j < d; j++) ss += src[base + j]! * src[base + j]!;
      const rs = 1 / Math.sqrt(ss / d + eps);
      rstd[r] = rs;
      if (w) for (let j = 0; j < d; j++) y[base + j] = src[base + j]! * rs * w[j]!;
      else for (let j = 0; j < d; j++) y[base + j] = src[base + j]! * rs;
    }
  const out = new Tensor(y, x.shape);
  if (!needsGrad(x, weight)) return out;
  return record(out, [x, weight], (g) => {
    const gw = weight?.requiresGrad ? new Float32Array(d) : null;
    const gx = x.requiresGrad ? new Float32Array(x.size) : null;
    const nk = nativeFused();
    if (nk) {
      nk.rmsNormBackward(src, w ?? null, rstd, g, gx, gw, d);
      if (gx) accumulate(x, gx, true);
      if (gw) accumulate(weight, gw, true);
      return;
    }
    for (let r = 0; r < rows; r++) {
      const base = r * d;
      const rs = rstd[r]!;
      let dot = 0; // Σ (g·w)·x
      for (let j = 0; j < d; j++) {
        const gj = g[base + j]!;
        const xv = src[base + j]!;
        dot += (w ? gj * w[j]! : gj) * xv;
        if (gw) gw[j]! += gj * xv * rs;
      }
      if (gx) {
        const c = (rs * rs * rs * dot) / d;
        for (let j = 0; j < d; j++) {
          const gh = w ? g[base + j]! * w[j]! : g[base + j]!;
          gx[base + j] = rs * gh - c * src[base + j]!;
        }
      }
    }
    if (gx) accumulate(x, gx, true);
    if (gw) accumulate(weight, gw, true);
  });
}
