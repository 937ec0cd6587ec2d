/*
 * emlab's optional native kernels: a Node-API addon that
 * - loads a CBLAS library at run time (OpenBLAS by default) and runs single-precision GEMM
 *   on Float32Arrays in place;
 * - has fused elementwise kernels in C (vectorised by the compiler, expf through glibc's
 *   vector math library).
 *
 * Built by scripts/build-native.mjs at install time when a C compiler and Node's headers
 * are present; when it is missing, emlab's kernels fall back to onnxruntime and TypeScript
 * (src/tensor/kernels/native.ts).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
typedef char *(*corename_fn)(void);

static void *lib = NULL;
static sgemm_fn sgemm = NULL;
static set_threads_fn set_threads = NULL;
static corename_fn corename = NULL;
static char load_error[1200] = "";

#define CHECK(call)                                                                                      \
  do {                                                                                                   \
    if ((call) != napi_ok) {                                                                             \
      napi_throw_error(env, NULL, "emlab native: Node-API call failed: " #call);                           \
      return NULL;                                                                                       \
    }                                                                                                    \
  } while (0)

static napi_value make_string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* load(path: string) -> string|null: opens the library; returns an error message or null. */
static napi_value js_load(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[1024];
  size_t len = 0;
  CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len));
  if (lib == NULL) {
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
      snprintf(load_error, sizeof load_error, "%s", dlerror());
      return make_string(env, load_error);
    }
    sgemm = (sgemm_fn)dlsym(lib, "cblas_sgemm");
    set_threads = (set_threads_fn)dlsym(lib, "openblas_set_num_threads");
    corename = (corename_fn)dlsym(lib, "openblas_get_corename");
    if (sgemm == NULL) {
      snprintf(load_error, sizeof load_error, "%s has no cblas_sgemm", path);
      dlclose(lib);
      lib = NULL;
      return make_string(env, load_error);
    }
  }
  napi_value nul;
  napi_get_null(env, &nul);
  return nul;
}

/* info() -> { core: string|null } */
static napi_value js_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj;
  CHECK(napi_create_object(env, &obj));
  napi_value core;
  if (corename != NULL) core = make_string(env, corename());
  else napi_get_null(env, &core);
  CHECK(napi_set_named_property(env, obj, "core", core));
  return obj;
}

/* setThreads(n) */
static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t n = 1;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  if (set_threads != NULL && n > 0) set_threads(n);
  return NULL;
}

static int float_array(napi_env env, napi_value v, float **data, size_t *length) {
  napi_typedarray_type type;
  void *ptr;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, length, &ptr, &ab, &off) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "emlab native: expected a Float32Array");
    return 0;
  }
  *data = (float *)ptr;
  return 1;
}

/*
 * sgemm(a, b, out, batchA, batchB, m, k, n, transA, transB, alpha, beta):
 * out[i] = alpha · op(A[i]) · op(B[i]) + beta · out[i] for each batch i (a batch of 1 broadcasts).
 */
static napi_value js_sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 12 || sgemm == NULL) {
    napi_throw_error(env, NULL, "emlab native: sgemm needs 12 arguments and a loaded library");
    return NULL;
  }
  float *a, *b, *c;
  size_t la, lb, lc;
  if (!float_array(env, argv[0], &a, &la) || !float_array(env, argv[1], &b, &lb) || !float_array(env, argv[2], &c, &lc))
    return NULL;
  int32_t batchA, batchB, m, k, n;
  bool ta, tb;
  double alpha, beta;
  CHECK(napi_get_value_int32(env, argv[3], &batchA));
  CHECK(napi_get_value_int32(env, argv[4], &batchB));
  CHECK(napi_get_value_int32(env, argv[5], &m));
  CHECK(napi_get_value_int32(env, argv[6], &k));
  CHECK(napi_get_value_int32(env, argv[7], &n));
  CHECK(napi_get_value_bool(env, argv[8], &ta));
  CHECK(napi_get_value_bool(env, argv[9], &tb));
  CHECK(napi_get_value_double(env, argv[10], &alpha));
  CHECK(napi_get_value_double(env, argv[11], &beta));
  int32_t batch = batchA > batchB ? batchA : batchB;
  if (batchA < 1 || batchB < 1 || m < 0 || k < 0 || n < 0 || (batchA != batchB && batchA != 1 && batchB != 1) ||
      la < (size_t)batchA * m * k || lb < (size_t)batchB * k * n || lc < (size_t)batch * m * n) {
    napi_throw_range_error(env, NULL, "emlab native: sgemm sizes do not match the arrays");
    return NULL;
  }
  if (m == 0 || n == 0) return NULL;
  const int lda = ta ? m : k, ldb = tb ? k : n;
  if (batchB == 1 && batchA > 1 && !ta) {
    /* A's batches stack into one tall matrix against the shared B: one call. */
    sgemm(RowMajor, NoTrans, tb ? Trans : NoTrans, batchA * m, n, k, (float)alpha, a, k, b, ldb, (float)beta, c, n);
    return NULL;
  }
  for (int32_t i = 0; i < batch; i++) {
    const float *ai = a + (size_t)(batchA == 1 ? 0 : i) * m * k;
    const float *bi = b + (size_t)(batchB == 1 ? 0 : i) * k * n;
    sgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, (float)alpha, ai, lda, bi, ldb, (float)beta,
          c + (size_t)i * m * n, n);
  }
  return NULL;
}

/* swiglu(gate, up, y, s|null): s = σ(gate), y = gate · s · up. */
static void swiglu_kernel(const float *restrict g, const float *restrict u, float *restrict y, float *restrict s,
                          size_t n) {
  if (s != NULL) {
    for (size_t i = 0; i < n; i++) {
      const float sg = 1.0f / (1.0f + expf(-g[i]));
      s[i] = sg;
      y[i] = g[i] * sg * u[i];
    }
  } else {
    for (size_t i = 0; i < n; i++) y[i] = g[i] * u[i] / (1.0f + expf(-g[i]));
  }
}

static napi_value js_swiglu(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *g, *u, *y, *s = NULL;
  size_t lg, lu, ly, ls = 0;
  if (argc != 4 || !float_array(env, argv[0], &g, &lg) || !float_array(env, argv[1], &u, &lu) ||
      !float_array(env, argv[2], &y, &ly))
    return NULL;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[3], &t));
  if (t != napi_null && !float_array(env, argv[3], &s, &ls)) return NULL;
  if (lu != lg || ly != lg || (s != NULL && ls != lg)) {
    napi_throw_range_error(env, NULL, "emlab native: swiglu arrays differ in length");
    return NULL;
  }
  swiglu_kernel(g, u, y, s, lg);
  return NULL;
}

/* ---- helpers for the elementwise kernels ---- */

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "emlab native: expected an integer");
    return 0;
  }
  return 1;
}

/* A Float32Array, or null (data NULL, length 0). */
static int float_array_or_null(napi_env env, napi_value v, float **data, size_t *length) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_null || t == napi_undefined) {
    *data = NULL;
    *length = 0;
    return 1;
  }
  return float_array(env, v, data, length);
}

static int int32_array(napi_env env, napi_value v, int32_t **data, size_t *length) {
  napi_typedarray_type type;
  void *ptr;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, length, &ptr, &ab, &off) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, NULL, "emlab native: expected an Int32Array");
    return 0;
  }
  *data = (int32_t *)ptr;
  return 1;
}

static napi_value range_error(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

/*
 * stridedCopy(src, srcOff, strides: Int32Array, dst, shape: Int32Array, accumulate):
 * walks `shape` in row-major order; element i of dst (contiguous) pairs with
 * src[srcOff + Σ idx·strides]. accumulate = false: dst[i] = src[...];
 * accumulate = true: the reverse direction, src[...] += dst[i] (stride 0 sums).
 */
static napi_value js_strided(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 6) return range_error(env, "emlab native: strided needs 6 arguments");
  float *src, *dst;
  int32_t *strides, *shape;
  size_t ls, ld, lst, lsh;
  int32_t off;
  bool acc;
  if (!float_array(env, argv[0], &src, &ls) || !get_i32(env, argv[1], &off) ||
      !int32_array(env, argv[2], &strides, &lst) || !float_array(env, argv[3], &dst, &ld) ||
      !int32_array(env, argv[4], &shape, &lsh))
    return NULL;
  CHECK(napi_get_value_bool(env, argv[5], &acc));
  if (lst != lsh || lsh == 0 || lsh > 16) return range_error(env, "emlab native: strided rank must be 1-16");
  size_t total = 1;
  int64_t lo = off, hi = off;
  for (size_t d = 0; d < lsh; d++) {
    if (shape[d] < 0) return range_error(env, "emlab native: negative extent");
    total *= (size_t)shape[d];
    if (shape[d] > 0) {
      int64_t span = (int64_t)strides[d] * (shape[d] - 1);
      if (span < 0) lo += span;
      else hi += span;
    }
  }
  if (total == 0) return NULL;
  if (total > ld || lo < 0 || (size_t)hi >= ls) return range_error(env, "emlab native: strided view out of bounds");
  const size_t last = lsh - 1;
  const int32_t n = shape[last], st = strides[last];
  int32_t idx[16] = {0};
  int64_t base = off;
  size_t w = 0;
  for (;;) {
    float *row = src + base;
    float *out = dst + w;
    if (!acc) {
      if (st == 1) memcpy(out, row, (size_t)n * sizeof(float));
      else
        for (int32_t i = 0; i < n; i++) out[i] = row[(int64_t)i * st];
    } else if (st == 0) {
      float sum = 0;
      for (int32_t i = 0; i < n; i++) sum += out[i];
      row[0] += sum;
    } else if (st == 1) {
      for (int32_t i = 0; i < n; i++) row[i] += out[i];
    } else {
      for (int32_t i = 0; i < n; i++) row[(int64_t)i * st] += out[i];
    }
    w += (size_t)n;
    /* advance the multi-index over the leading dims */
    size_t d = last;
    for (;;) {
      if (d == 0) return NULL;
      d--;
      idx[d]++;
      base += strides[d];
      if (idx[d] < shape[d]) break;
      base -= (int64_t)strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/* rmsNorm(x, w|null, y, rstd, d, eps): per row of d, rstd = 1/sqrt(mean(x²) + eps), y = x·rstd·w. */
static napi_value js_rmsnorm(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 6) return range_error(env, "emlab native: rmsNorm needs 6 arguments");
  float *x, *w, *y, *rstd;
  size_t lx, lw, ly, lr;
  int32_t d;
  double eps;
  if (!float_array(env, argv[0], &x, &lx) || !float_array_or_null(env, argv[1], &w, &lw) ||
      !float_array(env, argv[2], &y, &ly) || !float_array(env, argv[3], &rstd, &lr) || !get_i32(env, argv[4], &d))
    return NULL;
  CHECK(napi_get_value_double(env, argv[5], &eps));
  if (d <= 0 || lx % (size_t)d != 0 || ly != lx || lr != lx / (size_t)d || (w != NULL && lw != (size_t)d))
    return range_error(env, "emlab native: rmsNorm sizes do not match");
  const size_t rows = lx / (size_t)d;
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float ss = 0;
    for (int32_t j = 0; j < d; j++) ss += xr[j] * xr[j];
    const float rs = (float)(1.0 / sqrt((double)ss / d + eps));
    rstd[r] = rs;
    if (w != NULL)
      for (int32_t j = 0; j < d; j++) yr[j] = xr[j] * rs * w[j];
    else
      for (int32_t j = 0; j < d; j++) yr[j] = xr[j] * rs;
  }
  return NULL;
}

/*
 * rmsNormBackward(x, w|null, rstd, g, gx|null, gw|null, d): gx = rstd·(g·w) − rstd³·Σ(g·w·x)/d · x
 * (overwritten), gw += Σ_rows g·x·rstd.
 */
static napi_value js_rmsnorm_bwd(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 7) return range_error(env, "emlab native: rmsNormBackward needs 7 arguments");
  float *x, *w, *rstd, *g, *gx, *gw;
  size_t lx, lw, lr, lg, lgx, lgw;
  int32_t d;
  if (!float_array(env, argv[0], &x, &lx) || !float_array_or_null(env, argv[1], &w, &lw) ||
      !float_array(env, argv[2], &rstd, &lr) || !float_array(env, argv[3], &g, &lg) ||
      !float_array_or_null(env, argv[4], &gx, &lgx) || !float_array_or_null(env, argv[5], &gw, &lgw) ||
      !get_i32(env, argv[6], &d))
    return NULL;
  if (d <= 0 || lx % (size_t)d != 0 || lg != lx || lr != lx / (size_t)d || (w != NULL && lw != (size_t)d) ||
      (gx != NULL && lgx != lx) || (gw != NULL && lgw != (size_t)d))
    return range_error(env, "emlab native: rmsNormBackward sizes do not match");
  const size_t rows = lx / (size_t)d;
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *gr = g + r * d;
    const float rs = rstd[r];
    float dot = 0;
    if (w != NULL)
      for (int32_t j = 0; j < d; j++) dot += gr[j] * w[j] * xr[j];
    else
      for (int32_t j = 0; j < d; j++) dot += gr[j] * xr[j];
    if (gw != NULL)
      for (int32_t j = 0; j < d; j++) gw[j] += gr[j] * xr[j] * rs;
    if (gx != NULL) {
      float *o = gx + r * d;
      const float c = rs * rs * rs * dot / d;
      if (w != NULL)
        for (int32_t j = 0; j < d; j++) o[j] = rs * gr[j] * w[j] - c * xr[j];
      else
        for (int32_t j = 0; j < d; j++) o[j] = rs * gr[j] - c * xr[j];
    }
  }
  return NULL;
}

/*
 * rope(src, dst, positions: Int32Array, B, H, T, D, cos, sin, sign): the rotate-half rotary
 * embedding of src [B, H, T, D] into dst; cos/sin are [maxPos+1, D/2] tables; positions is
 * [T] or [B·T] (already validated); sign −1 rotates back (the backward).
 */
static napi_value js_rope(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 10) return range_error(env, "emlab native: rope needs 10 arguments");
  float *src, *dst, *cs, *sn;
  int32_t *pos;
  size_t ls, ld, lp, lc, lsn;
  int32_t B, H, T, D;
  double sign;
  if (!float_array(env, argv[0], &src, &ls) || !float_array(env, argv[1], &dst, &ld) ||
      !int32_array(env, argv[2], &pos, &lp) || !get_i32(env, argv[3], &B) || !get_i32(env, argv[4], &H) ||
      !get_i32(env, argv[5], &T) || !get_i32(env, argv[6], &D) || !float_array(env, argv[7], &cs, &lc) ||
      !float_array(env, argv[8], &sn, &lsn))
    return NULL;
  CHECK(napi_get_value_double(env, argv[9], &sign));
  const int32_t half = D / 2;
  if (B < 0 || H < 0 || T < 0 || D <= 0 || D % 2 != 0 || ls != (size_t)B * H * T * D || ld != ls || lc != lsn ||
      (lp != (size_t)T && lp != (size_t)B * T))
    return range_error(env, "emlab native: rope sizes do not match");
  const int per_batch = lp == (size_t)B * T && lp != (size_t)T;
  for (size_t p = 0; p < lp; p++)
    if (pos[p] < 0 || (size_t)(pos[p] + 1) * half > lc) return range_error(env, "emlab native: rope position beyond the table");
  const float sg = (float)sign;
  for (int32_t b = 0; b < B; b++)
    for (int32_t h = 0; h < H; h++)
      for (int32_t t = 0; t < T; t++) {
        const size_t base = (((size_t)b * H + h) * T + t) * D;
        const size_t tb = (size_t)pos[per_batch ? b * T + t : t] * half;
        const float *c = cs + tb, *s = sn + tb, *x1 = src + base, *x2 = src + base + half;
        float *y1 = dst + base, *y2 = dst + base + half;
        for (int32_t j = 0; j < half; j++) {
          const float sj = sg * s[j];
          y1[j] = x1[j] * c[j] - x2[j] * sj;
          y2[j] = x2[j] * c[j] + x1[j] * sj;
        }
      }
  return NULL;
}

/* swigluBackward(gate, up, s, g, gg|null, gu|null): gg = g·up·s·(1 + gate·(1 − s)), gu = g·gate·s. */
static napi_value js_swiglu_bwd(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 6) return range_error(env, "emlab native: swigluBackward needs 6 arguments");
  float *gate, *up, *s, *g, *gg, *gu;
  size_t l1, l2, l3, l4, l5, l6;
  if (!float_array(env, argv[0], &gate, &l1) || !float_array(env, argv[1], &up, &l2) ||
      !float_array(env, argv[2], &s, &l3) || !float_array(env, argv[3], &g, &l4) ||
      !float_array_or_null(env, argv[4], &gg, &l5) || !float_array_or_null(env, argv[5], &gu, &l6))
    return NULL;
  if (l2 != l1 || l3 != l1 || l4 != l1 || (gg != NULL && l5 != l1) || (gu != NULL && l6 != l1))
    return range_error(env, "emlab native: swigluBackward arrays differ in length");
  if (gg != NULL && gu != NULL) {
    for (size_t i = 0; i < l1; i++) {
      const float gs = gate[i] * s[i];
      gg[i] = g[i] * up[i] * (s[i] + gs * (1.0f - s[i]));
      gu[i] = g[i] * gs;
    }
  } else if (gg != NULL) {
    for (size_t i = 0; i < l1; i++) gg[i] = g[i] * up[i] * (s[i] + gate[i] * s[i] * (1.0f - s[i]));
  } else if (gu != NULL) {
    for (size_t i = 0; i < l1; i++) gu[i] = g[i] * gate[i] * s[i];
  }
  return NULL;
}

/* softmaxLse(x, d, lse, probs|null): per row of d, lse = log Σ exp(x); probs = softmax(x). */
static napi_value js_softmax_lse(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) return range_error(env, "emlab native: softmaxLse needs 4 arguments");
  float *x, *lse, *p;
  size_t lx, ll, lp;
  int32_t d;
  if (!float_array(env, argv[0], &x, &lx) || !get_i32(env, argv[1], &d) || !float_array(env, argv[2], &lse, &ll) ||
      !float_array_or_null(env, argv[3], &p, &lp))
    return NULL;
  if (d <= 0 || lx % (size_t)d != 0 || ll != lx / (size_t)d || (p != NULL && lp != lx))
    return range_error(env, "emlab native: softmaxLse sizes do not match");
  const size_t rows = ll;
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float m = -INFINITY;
    for (int32_t j = 0; j < d; j++) m = xr[j] > m ? xr[j] : m;
    /* An all −inf row: shift by 0 (lse −inf). A bit test, which -ffast-math cannot fold away. */
    uint32_t bits;
    memcpy(&bits, &m, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) m = 0;
    float sum = 0;
    if (p != NULL) {
      float *pr = p + r * d;
      for (int32_t j = 0; j < d; j++) {
        const float e = expf(xr[j] - m);
        pr[j] = e;
        sum += e;
      }
      const float inv = 1.0f / sum;
      for (int32_t j = 0; j < d; j++) pr[j] *= inv;
    } else {
      for (int32_t j = 0; j < d; j++) sum += expf(xr[j] - m);
    }
    lse[r] = m + logf(sum);
  }
  return NULL;
}

/*
 * crossEntropyBackward(probs, targets: Int32Array, scale): in place, row r of probs becomes
 * scale[r]·(probs − onehot(targets[r])); a row whose scale is 0 (an ignored target) becomes 0.
 */
static napi_value js_ce_bwd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) return range_error(env, "emlab native: crossEntropyBackward needs 3 arguments");
  float *p, *scale;
  int32_t *t;
  size_t lp, lt, ls;
  if (!float_array(env, argv[0], &p, &lp) || !int32_array(env, argv[1], &t, &lt) || !float_array(env, argv[2], &scale, &ls))
    return NULL;
  if (lt == 0 || ls != lt || lp % lt != 0) return range_error(env, "emlab native: crossEntropyBackward sizes do not match");
  const size_t d = lp / lt;
  for (size_t r = 0; r < lt; r++) {
    float *pr = p + r * d;
    const float s = scale[r];
    if (s == 0.0f) {
      memset(pr, 0, d * sizeof(float));
      continue;
    }
    if (t[r] >= 0 && (size_t)t[r] < d) pr[t[r]] -= 1.0f;
    for (size_t j = 0; j < d; j++) pr[j] *= s;
  }
  return NULL;
}

/* adamw(w, g, m, v, lr, b1, b2, eps, decay, c1, c2): one decoupled-weight-decay Adam step in place. */
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 11) return range_error(env, "emlab native: adamw needs 11 arguments");
  float *w, *g, *m, *v;
  size_t lw, lg, lm, lv;
  if (!float_array(env, argv[0], &w, &lw) || !float_array(env, argv[1], &g, &lg) || !float_array(env, argv[2], &m, &lm) ||
      !float_array(env, argv[3], &v, &lv))
    return NULL;
  if (lg != lw || lm != lw || lv != lw) return range_error(env, "emlab native: adamw arrays differ in length");
  double h[7];
  for (int i = 0; i < 7; i++) CHECK(napi_get_value_double(env, argv[4 + i], &h[i]));
  const float lr = (float)h[0], b1 = (float)h[1], b2 = (float)h[2], eps = (float)h[3], decay = (float)h[4];
  const float c1 = (float)h[5], c2 = (float)h[6];
  const float a1 = 1.0f - b1, a2 = 1.0f - b2, step = lr * c1;
  for (size_t j = 0; j < lw; j++) {
    const float gj = g[j];
    const float mj = b1 * m[j] + a1 * gj;
    const float vj = b2 * v[j] + a2 * gj * gj;
    m[j] = mj;
    v[j] = vj;
    w[j] = w[j] * decay - step * mj / (sqrtf(vj * c2) + eps);
  }
  return NULL;
}

/* addInto(dst, src): dst += src. */
static napi_value js_add_into(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *d, *src;
  size_t ld, ls;
  if (argc != 2 || !float_array(env, argv[0], &d, &ld) || !float_array(env, argv[1], &src, &ls)) return NULL;
  if (ld != ls) return range_error(env, "emlab native: addInto arrays differ in length");
  for (size_t i = 0; i < ld; i++) d[i] += src[i];
  return NULL;
}

#define EXPORT(name, fn)                                                                                 \
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &fn_value);                                \
  napi_set_named_property(env, exports, name, fn_value)

NAPI_MODULE_INIT() {
  napi_value fn_value;
  EXPORT("load", js_load);
  EXPORT("info", js_info);
  EXPORT("setThreads", js_set_threads);
  EXPORT("sgemm", js_sgemm);
  EXPORT("swiglu", js_swiglu);
  EXPORT("swigluBackward", js_swiglu_bwd);
  EXPORT("strided", js_strided);
  EXPORT("rmsNorm", js_rmsnorm);
  EXPORT("rmsNormBackward", js_rmsnorm_bwd);
  EXPORT("rope", js_rope);
  EXPORT("softmaxLse", js_softmax_lse);
  EXPORT("crossEntropyBackward", js_ce_bwd);
  EXPORT("adamw", js_adamw);
  EXPORT("addInto", js_add_into);
  return exports;
}
