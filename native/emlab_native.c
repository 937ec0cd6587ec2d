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
#include <malloc.h>
#include <pthread.h>
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
static int n_threads = 1; /* threads for emlab's own kernels (setThreads) */
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
  if (n > 0) n_threads = n;
  if (set_threads != NULL && n > 0) set_threads(n);
  return NULL;
}

/* The data and length of a typed array of type `want`; otherwise throws a TypeError with `msg`. */
static int typed_array(napi_env env, napi_value v, napi_typedarray_type want, const char *msg, void **data,
                       size_t *length) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &off) != napi_ok || type != want) {
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

static int float_array(napi_env env, napi_value v, float **data, size_t *length) {
  return typed_array(env, v, napi_float32_array, "emlab native: expected a Float32Array", (void **)data, length);
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

/*
 * parallel_for: runs fn(ctx, lo, hi) over [0, n) on this thread and, when the work is big
 * enough (≥ 2^18 elements) and setThreads allows, one more thread for the upper half.
 */
typedef void (*range_fn)(void *ctx, size_t lo, size_t hi);
typedef struct {
  range_fn fn;
  void *ctx;
  size_t lo, hi;
} range_task;

static void *range_thread(void *arg) {
  range_task *t = arg;
  t->fn(t->ctx, t->lo, t->hi);
  return NULL;
}

static void parallel_for(range_fn fn, void *ctx, size_t n, size_t work) {
  if (n_threads > 1 && n >= 2 && work >= ((size_t)1 << 18)) {
    range_task upper = {fn, ctx, n / 2, n};
    pthread_t th;
    if (pthread_create(&th, NULL, range_thread, &upper) == 0) {
      fn(ctx, 0, n / 2);
      pthread_join(th, NULL);
      return;
    }
  }
  fn(ctx, 0, n);
}

typedef struct {
  const float *a, *b, *c, *d;
  float *x, *y, *z;
  size_t n;
  float h[8];
} ew_ctx;

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

static void swiglu_range(void *ctx, size_t lo, size_t hi) {
  const ew_ctx *c = ctx;
  swiglu_kernel(c->a + lo, c->b + lo, c->x + lo, c->y != NULL ? c->y + lo : NULL, hi - lo);
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
  ew_ctx c = {.a = g, .b = u, .x = y, .y = s};
  parallel_for(swiglu_range, &c, lg, lg);
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
  return typed_array(env, v, napi_int32_array, "emlab native: expected an Int32Array", (void **)data, length);
}

static napi_value range_error(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

/* The prologue of every kernel: exactly n arguments into argv, or a RangeError naming the kernel. */
#define GET_ARGS(n, name)                                                                                \
  size_t argc = n;                                                                                       \
  napi_value argv[n];                                                                                    \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                                           \
  if (argc != n) return range_error(env, "emlab native: " name " needs " #n " arguments")

/*
 * stridedCopy(src, srcOff, strides: Int32Array, dst, shape: Int32Array, accumulate):
 * walks `shape` in row-major order; element i of dst (contiguous) pairs with
 * src[srcOff + Σ idx·strides]. accumulate = false: dst[i] = src[...];
 * accumulate = true: the reverse direction, src[...] += dst[i] (stride 0 sums).
 */
static napi_value js_strided(napi_env env, napi_callback_info info) {
  GET_ARGS(6, "strided");
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
  GET_ARGS(6, "rmsNorm");
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
  GET_ARGS(7, "rmsNormBackward");
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
  GET_ARGS(10, "rope");
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
static void swiglu_bwd_range(void *ctx, size_t lo, size_t hi) {
  const ew_ctx *c = ctx;
  const float *restrict gate = c->a, *restrict up = c->b, *restrict s = c->c, *restrict g = c->d;
  float *restrict gg = c->x, *restrict gu = c->y;
  if (gg != NULL && gu != NULL) {
    for (size_t i = lo; i < hi; i++) {
      const float gs = gate[i] * s[i];
      gg[i] = g[i] * up[i] * (s[i] + gs * (1.0f - s[i]));
      gu[i] = g[i] * gs;
    }
  } else if (gg != NULL) {
    for (size_t i = lo; i < hi; i++) gg[i] = g[i] * up[i] * (s[i] + gate[i] * s[i] * (1.0f - s[i]));
  } else if (gu != NULL) {
    for (size_t i = lo; i < hi; i++) gu[i] = g[i] * gate[i] * s[i];
  }
}

static napi_value js_swiglu_bwd(napi_env env, napi_callback_info info) {
  GET_ARGS(6, "swigluBackward");
  float *gate, *up, *s, *g, *gg, *gu;
  size_t l1, l2, l3, l4, l5, l6;
  if (!float_array(env, argv[0], &gate, &l1) || !float_array(env, argv[1], &up, &l2) ||
      !float_array(env, argv[2], &s, &l3) || !float_array(env, argv[3], &g, &l4) ||
      !float_array_or_null(env, argv[4], &gg, &l5) || !float_array_or_null(env, argv[5], &gu, &l6))
    return NULL;
  if (l2 != l1 || l3 != l1 || l4 != l1 || (gg != NULL && l5 != l1) || (gu != NULL && l6 != l1))
    return range_error(env, "emlab native: swigluBackward arrays differ in length");
  ew_ctx c = {.a = gate, .b = up, .c = s, .d = g, .x = gg, .y = gu};
  parallel_for(swiglu_bwd_range, &c, l1, l1);
  return NULL;
}

static void softmax_lse_range(void *ctx, size_t lo, size_t hi) {
  const ew_ctx *c = ctx;
  const float *x = c->a;
  float *lse = c->x, *p = c->y;
  const int32_t d = (int32_t)c->n;
  for (size_t r = lo; r < hi; r++) {
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
}

/* softmaxLse(x, d, lse, probs|null): per row of d, lse = log Σ exp(x); probs = softmax(x). */
static napi_value js_softmax_lse(napi_env env, napi_callback_info info) {
  GET_ARGS(4, "softmaxLse");
  float *x, *lse, *p;
  size_t lx, ll, lp;
  int32_t d;
  if (!float_array(env, argv[0], &x, &lx) || !get_i32(env, argv[1], &d) || !float_array(env, argv[2], &lse, &ll) ||
      !float_array_or_null(env, argv[3], &p, &lp))
    return NULL;
  if (d <= 0 || lx % (size_t)d != 0 || ll != lx / (size_t)d || (p != NULL && lp != lx))
    return range_error(env, "emlab native: softmaxLse sizes do not match");
  ew_ctx c = {.a = x, .x = lse, .y = p, .n = (size_t)d};
  parallel_for(softmax_lse_range, &c, ll, lx);
  return NULL;
}

/*
 * crossEntropyBackward(probs, targets: Int32Array, scale): in place, row r of probs becomes
 * scale[r]·(probs − onehot(targets[r])); a row whose scale is 0 (an ignored target) becomes 0.
 */
static napi_value js_ce_bwd(napi_env env, napi_callback_info info) {
  GET_ARGS(3, "crossEntropyBackward");
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
static void adamw_range(void *ctx, size_t lo, size_t hi) {
  const ew_ctx *c = ctx;
  const float *restrict g = c->a;
  float *restrict w = c->x, *restrict m = c->y, *restrict v = c->z;
  const float b1 = c->h[0], b2 = c->h[1], eps = c->h[2], decay = c->h[3], step = c->h[4], c2 = c->h[5];
  const float a1 = 1.0f - b1, a2 = 1.0f - b2;
  for (size_t j = lo; j < hi; j++) {
    const float gj = g[j];
    const float mj = b1 * m[j] + a1 * gj;
    const float vj = b2 * v[j] + a2 * gj * gj;
    m[j] = mj;
    v[j] = vj;
    w[j] = w[j] * decay - step * mj / (sqrtf(vj * c2) + eps);
  }
}

static napi_value js_adamw(napi_env env, napi_callback_info info) {
  GET_ARGS(11, "adamw");
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
  ew_ctx c = {.a = g, .x = w, .y = m, .z = v, .h = {b1, b2, eps, decay, lr * c1, c2}};
  parallel_for(adamw_range, &c, lw, lw);
  return NULL;
}

/* addInto(dst, src): dst += src. */
static napi_value js_add_into(napi_env env, napi_callback_info info) {
  GET_ARGS(2, "addInto");
  float *d, *src;
  size_t ld, ls;
  if (!float_array(env, argv[0], &d, &ld) || !float_array(env, argv[1], &src, &ls)) return NULL;
  if (ld != ls) return range_error(env, "emlab native: addInto arrays differ in length");
  for (size_t i = 0; i < ld; i++) d[i] += src[i];
  return NULL;
}

/* ---- attention: q [B, H, T, D] read as [B·Hkv, G·T, D]; k, v [B·Hkv, S, D]; probs [B·Hkv, G·T, S] ---- */

typedef struct {
  int32_t B, H, Hkv, T, S, D;
  float scale;
  bool causal;
} attn_dims;

static int attn_args(napi_env env, napi_value *argv, attn_dims *d) {
  double scale;
  if (!get_i32(env, argv[0], &d->B) || !get_i32(env, argv[1], &d->H) || !get_i32(env, argv[2], &d->Hkv) ||
      !get_i32(env, argv[3], &d->T) || !get_i32(env, argv[4], &d->S) || !get_i32(env, argv[5], &d->D))
    return 0;
  if (napi_get_value_double(env, argv[6], &scale) != napi_ok || napi_get_value_bool(env, argv[7], &d->causal) != napi_ok)
    return 0;
  d->scale = (float)scale;
  if (d->B <= 0 || d->Hkv <= 0 || d->H % d->Hkv != 0 || d->T <= 0 || d->S < d->T || d->D <= 0) {
    napi_throw_range_error(env, NULL, "emlab native: attention dims are inconsistent");
    return 0;
  }
  return 1;
}

/* The keys row r of a group sees: [0, limit). */
static inline int32_t attn_limit(const attn_dims *d, size_t r) {
  return d->causal ? d->S - d->T + (int32_t)(r % (size_t)d->T) + 1 : d->S;
}

/* 8 floats in a vector register (AVX, or two SSE halves), loaded and stored unaligned. */
typedef float v8f __attribute__((vector_size(32)));
static inline v8f load8(const float *p) {
  v8f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

/* x [n, m] → xt [m, ld] (ld ≥ n, columns n … ld−1 zero). */
static void transpose_into(const float *x, float *xt, size_t n, size_t m, size_t ld) {
  for (size_t j = 0; j < m; j++) {
    float *row = xt + j * ld;
    for (size_t i = 0; i < n; i++) row[i] = x[i * m + j];
    for (size_t i = n; i < ld; i++) row[i] = 0;
  }
}

/*
 * Four rows at a time, so each vector loaded from K or V serves four query rows. A group's
 * row count need not be a multiple of 4: missing rows read a zero row and write a scratch row.
 */
#define NR 4

/* out[i][0 … L) = scale · Σ_e a[i][e] · bt[e][·] (bt [D, ld], ld a multiple of 8 ≥ L + 8). */
static void rows_times_t(const float *const a[NR], const float *bt, size_t D, size_t ld, int32_t L, float scale,
                         float *const out[NR]) {
  for (int32_t j0 = 0; j0 < L; j0 += 8) {
    v8f acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
    for (size_t e = 0; e < D; e++) {
      const v8f kv = load8(bt + e * ld + j0) * scale;
      acc0 += a[0][e] * kv;
      acc1 += a[1][e] * kv;
      acc2 += a[2][e] * kv;
      acc3 += a[3][e] * kv;
    }
    store8(out[0] + j0, acc0);
    store8(out[1] + j0, acc1);
    store8(out[2] + j0, acc2);
    store8(out[3] + j0, acc3);
  }
}

/* out[i][0 … D) = Σ_{j<L} w[i][j] · x[j][·] (x [L, D]). */
static void weighted_rows(const float *const w[NR], const float *x, size_t D, int32_t L, float *const out[NR]) {
  if (D % 8 == 0) {
    for (size_t e0 = 0; e0 < D; e0 += 8) {
      v8f acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
      for (int32_t j = 0; j < L; j++) {
        const v8f xv = load8(x + (size_t)j * D + e0);
        acc0 += w[0][j] * xv;
        acc1 += w[1][j] * xv;
        acc2 += w[2][j] * xv;
        acc3 += w[3][j] * xv;
      }
      store8(out[0] + e0, acc0);
      store8(out[1] + e0, acc1);
      store8(out[2] + e0, acc2);
      store8(out[3] + e0, acc3);
    }
    return;
  }
  for (int i = 0; i < NR; i++) {
    for (size_t e = 0; e < D; e++) out[i][e] = 0;
    for (int32_t j = 0; j < L; j++)
      for (size_t e = 0; e < D; e++) out[i][e] += w[i][j] * x[(size_t)j * D + e];
  }
}

/* x[j][·] += Σ_i w[i][j] · y[i][·] for j < L (x [L, D]). */
static void add_outer(float *x, const float *const w[NR], const float *const y[NR], size_t D, int32_t L) {
  for (int32_t j = 0; j < L; j++) {
    float *xj = x + (size_t)j * D;
    const float w0 = w[0][j], w1 = w[1][j], w2 = w[2][j], w3 = w[3][j];
    if (D % 8 == 0) {
      for (size_t e0 = 0; e0 < D; e0 += 8)
        store8(xj + e0, load8(xj + e0) + w0 * load8(y[0] + e0) + w1 * load8(y[1] + e0) + w2 * load8(y[2] + e0) +
                            w3 * load8(y[3] + e0));
    } else {
      for (size_t e = 0; e < D; e++) xj[e] += w0 * y[0][e] + w1 * y[1][e] + w2 * y[2][e] + w3 * y[3][e];
    }
  }
}

typedef struct {
  attn_dims d;
  const float *q, *k, *v, *go;
  const uint8_t *mask;
  float *p, *o, *gq, *gk, *gv;
  size_t g0, g1;
  int ok;
} attn_job;

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Row r0 + i of a group (i < n) or, past the group's end, the zero / scratch row. */
#define ROW_OR(base, width, i, zero) ((i) < n ? (base) + (r0 + (i)) * (width) : (zero))

static void *attn_fwd_groups(void *arg) {
  attn_job *job = arg;
  const attn_dims *d = &job->d;
  const size_t rows = (size_t)(d->H / d->Hkv) * d->T, S = d->S, D = d->D, ld = pad8(S) + 8;
  /* kt [D, ld] | scores [NR, ld] | zero row [max(D, ld)] | scratch rows [NR, max(D, ld)] */
  const size_t wmax = D > ld ? D : ld;
  float *kt = calloc(D * ld + NR * ld + wmax + NR * wmax, sizeof(float));
  if (kt == NULL) return NULL;
  float *sc = kt + D * ld, *zero = sc + NR * ld, *scratch = zero + wmax;
  for (size_t g = job->g0; g < job->g1; g++) {
    const float *kg = job->k + g * S * D, *vg = job->v + g * S * D;
    const float *qg = job->q + g * rows * D;
    float *pg = job->p + g * rows * S, *og = job->o + g * rows * D;
    const uint8_t *km = job->mask != NULL ? job->mask + (g / (size_t)d->Hkv) * S : NULL;
    transpose_into(kg, kt, S, D, ld);
    for (size_t r0 = 0; r0 < rows; r0 += NR) {
      const size_t n = rows - r0 < NR ? rows - r0 : NR;
      int32_t L = 0;
      for (size_t i = 0; i < n; i++) L = attn_limit(d, r0 + i) > L ? attn_limit(d, r0 + i) : L;
      const float *qa[NR], *pa[NR];
      float *sa[NR], *oa[NR];
      for (size_t i = 0; i < NR; i++) {
        qa[i] = ROW_OR(qg, D, i, zero);
        sa[i] = sc + i * ld;
        pa[i] = ROW_OR(pg, S, i, zero);
        oa[i] = ROW_OR(og, D, i, scratch + i * wmax);
      }
      rows_times_t(qa, kt, D, ld, L, d->scale, sa);
      for (size_t i = 0; i < n; i++) {
        const int32_t limit = attn_limit(d, r0 + i);
        const float *si = sa[i];
        float *pr = pg + (r0 + i) * S;
        float m = 0;
        int any = 0;
        for (int32_t j = 0; j < limit; j++) {
          if (km != NULL && km[j] == 0) continue;
          if (!any || si[j] > m) m = si[j];
          any = 1;
        }
        memset(pr + limit, 0, (S - (size_t)limit) * sizeof(float));
        if (!any) {
          memset(pr, 0, (size_t)limit * sizeof(float));
          continue;
        }
        float sum = 0;
        for (int32_t j = 0; j < limit; j++) {
          const float e = expf(si[j] - m);
          pr[j] = e;
          sum += e;
        }
        if (km != NULL) {
          sum = 0;
          for (int32_t j = 0; j < limit; j++) {
            if (km[j] == 0) pr[j] = 0;
            sum += pr[j];
          }
        }
        const float inv = 1.0f / sum;
        for (int32_t j = 0; j < limit; j++) pr[j] *= inv;
      }
      weighted_rows(pa, vg, D, L, oa); /* probabilities are 0 past each row's limit */
    }
  }
  free(kt);
  job->ok = 1;
  return NULL;
}

static void *attn_bwd_groups(void *arg) {
  attn_job *job = arg;
  const attn_dims *d = &job->d;
  const size_t rows = (size_t)(d->H / d->Hkv) * d->T, S = d->S, D = d->D, ld = pad8(S) + 8;
  const size_t wmax = D > ld ? D : ld;
  float *vt = calloc(D * ld + NR * ld + wmax + NR * wmax, sizeof(float));
  if (vt == NULL) return NULL;
  float *dsb = vt + D * ld, *zero = dsb + NR * ld, *scratch = zero + wmax;
  for (size_t g = job->g0; g < job->g1; g++) {
    const float *kg = job->k + g * S * D;
    const float *pg = job->p + g * rows * S, *gog = job->go + g * rows * D, *qg = job->q + g * rows * D;
    float *gqg = job->gq + g * rows * D, *gkg = job->gk + g * S * D, *gvg = job->gv + g * S * D;
    memset(gkg, 0, S * D * sizeof(float));
    memset(gvg, 0, S * D * sizeof(float));
    transpose_into(job->v + g * S * D, vt, S, D, ld);
    for (size_t r0 = 0; r0 < rows; r0 += NR) {
      const size_t n = rows - r0 < NR ? rows - r0 : NR;
      int32_t L = 0;
      for (size_t i = 0; i < n; i++) L = attn_limit(d, r0 + i) > L ? attn_limit(d, r0 + i) : L;
      const float *pa[NR], *goa[NR], *qa[NR], *dsa_c[NR];
      float *dsa[NR], *gqa[NR];
      for (size_t i = 0; i < NR; i++) {
        pa[i] = ROW_OR(pg, S, i, zero);
        goa[i] = ROW_OR(gog, D, i, zero);
        qa[i] = ROW_OR(qg, D, i, zero);
        dsa[i] = dsb + i * ld;
        dsa_c[i] = dsa[i];
        gqa[i] = ROW_OR(gqg, D, i, scratch + i * wmax);
      }
      add_outer(gvg, pa, goa, D, L);               /* dV += Pᵀ·dO */
      rows_times_t(goa, vt, D, ld, L, 1.0f, dsa);  /* dP = dO·Vᵀ */
      for (size_t i = 0; i < NR; i++) {
        float *ds = dsa[i];
        const float *pr = pa[i];
        float dot = 0;
        for (int32_t j = 0; j < L; j++) dot += ds[j] * pr[j];
        for (int32_t j = 0; j < L; j++) ds[j] = pr[j] * (ds[j] - dot) * d->scale; /* dS, scaled; 0 where p is */
      }
      weighted_rows(dsa_c, kg, D, L, gqa); /* dQ = dS·K */
      add_outer(gkg, dsa_c, qa, D, L);     /* dK += dSᵀ·Q */
    }
  }
  free(vt);
  job->ok = 1;
  return NULL;
}

/* Runs fn over the groups on two threads (this one and one more) when there is enough work. */
static int attn_run(attn_job *job, void *(*fn)(void *), size_t groups, size_t work) {
  attn_job jobs[2] = {*job, *job};
  jobs[0].g0 = 0;
  jobs[0].g1 = groups;
  jobs[0].ok = jobs[1].ok = 0;
  pthread_t th;
  int spawned = 0;
  if (groups >= 2 && work >= (1u << 20) && n_threads > 1) {
    jobs[0].g1 = groups / 2;
    jobs[1].g0 = groups / 2;
    jobs[1].g1 = groups;
    spawned = pthread_create(&th, NULL, fn, &jobs[1]) == 0;
    if (!spawned) jobs[0].g1 = groups;
  }
  fn(&jobs[0]);
  if (spawned) pthread_join(th, NULL);
  return jobs[0].ok && (!spawned || jobs[1].ok);
}

/*
 * attentionForward(q, k, v, keyMask|null, probs, out, B, H, Hkv, T, S, D, scale, causal):
 * probs = softmax(scale·QKᵀ) over the visible keys (0 elsewhere; a row with no visible key is
 * all 0), out = probs·V. Keys past the causal limit cost nothing.
 */
static napi_value js_attn_fwd(napi_env env, napi_callback_info info) {
  GET_ARGS(14, "attentionForward");
  attn_job job = {0};
  float *q, *k, *v;
  size_t lq, lk, lv, lp, lo, lm = 0;
  if (!float_array(env, argv[0], &q, &lq) || !float_array(env, argv[1], &k, &lk) || !float_array(env, argv[2], &v, &lv) ||
      !float_array(env, argv[4], &job.p, &lp) || !float_array(env, argv[5], &job.o, &lo) || !attn_args(env, argv + 6, &job.d))
    return NULL;
  job.q = q;
  job.k = k;
  job.v = v;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[3], &t));
  if (t != napi_null && t != napi_undefined) {
    napi_typedarray_type type;
    void *ptr;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, argv[3], &type, &lm, &ptr, &ab, &off) != napi_ok || type != napi_uint8_array) {
      napi_throw_type_error(env, NULL, "emlab native: expected a Uint8Array key mask");
      return NULL;
    }
    job.mask = (const uint8_t *)ptr;
  }
  const attn_dims *d = &job.d;
  const size_t groups = (size_t)d->B * d->Hkv, rows = (size_t)(d->H / d->Hkv) * d->T, S = d->S, D = d->D;
  if (lq != groups * rows * D || lk != groups * S * D || lv != lk || lp != groups * rows * S || lo != lq ||
      (job.mask != NULL && lm != (size_t)d->B * S))
    return range_error(env, "emlab native: attentionForward sizes do not match");
  if (!attn_run(&job, attn_fwd_groups, groups, groups * rows * S * D)) return range_error(env, "emlab native: out of memory");
  return NULL;
}

/*
 * attentionBackward(probs, gOut, q, k, v, gq, gk, gv, B, H, Hkv, T, S, D, scale, causal):
 * from the saved probabilities; gq, gk, gv are overwritten.
 */
static napi_value js_attn_bwd(napi_env env, napi_callback_info info) {
  GET_ARGS(16, "attentionBackward");
  attn_job job = {0};
  float *p, *go, *q, *k, *v;
  size_t lp, lgo, lq, lk, lv, lgq, lgk, lgv;
  if (!float_array(env, argv[0], &p, &lp) || !float_array(env, argv[1], &go, &lgo) || !float_array(env, argv[2], &q, &lq) ||
      !float_array(env, argv[3], &k, &lk) || !float_array(env, argv[4], &v, &lv) ||
      !float_array(env, argv[5], &job.gq, &lgq) || !float_array(env, argv[6], &job.gk, &lgk) ||
      !float_array(env, argv[7], &job.gv, &lgv) || !attn_args(env, argv + 8, &job.d))
    return NULL;
  job.p = p;
  job.go = go;
  job.q = q;
  job.k = k;
  job.v = v;
  const attn_dims *d = &job.d;
  const size_t groups = (size_t)d->B * d->Hkv, rows = (size_t)(d->H / d->Hkv) * d->T, S = d->S, D = d->D;
  if (lq != groups * rows * D || lgo != lq || lgq != lq || lk != groups * S * D || lv != lk || lgk != lk || lgv != lk ||
      lp != groups * rows * S)
    return range_error(env, "emlab native: attentionBackward sizes do not match");
  if (!attn_run(&job, attn_bwd_groups, groups, groups * rows * S * D)) return range_error(env, "emlab native: out of memory");
  return NULL;
}

/* bfloat16 GEMM (vdpbf16ps, with an emulated fallback): a separate file for readability. */
#include "bf16_gemm.c"

#define EXPORT(name, fn)                                                                                 \
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &fn_value);                                \
  napi_set_named_property(env, exports, name, fn_value)

NAPI_MODULE_INIT() {
  napi_value fn_value;
#ifdef __GLIBC__
  /*
   * Tensor buffers are large, short-lived and reallocated at the same sizes every step. By
   * default glibc serves them with fresh mmap()s, and first-touch page faults on those cost
   * more than the elementwise kernels that write them (docs/performance.md). Allocations up
   * to 512 MB come from the heap instead, and freed memory is kept for reuse (trimmed back
   * only above 1 GB free). EMLAB_MALLOC_TUNE=0 keeps glibc's defaults.
   */
  const char *tune = getenv("EMLAB_MALLOC_TUNE");
  if (tune == NULL || strcmp(tune, "0") != 0) {
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
#endif
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
  EXPORT("attentionForward", js_attn_fwd);
  EXPORT("attentionBackward", js_attn_bwd);
  EXPORT("addInto", js_add_into);
  EXPORT("bf16Info", js_bf16_info);
  EXPORT("sbgemm", js_sbgemm);
  EXPORT("bf16PackedLength", js_bf16_packed_len);
  EXPORT("bf16PackWeight", js_bf16_pack_weight);
  EXPORT("bf16Linear", js_bf16_linear);
  return exports;
}
