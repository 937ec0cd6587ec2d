/*
 * bfloat16 GEMM for emlab's native addon (#included by emlab_native.c, which provides sgemm,
 * n_threads, parallel_for, float_array, range_error and the Node-API helpers).
 *
 * C = alpha · op(A) · op(B) + beta · C with fp32 A, B and C: the inputs are rounded to
 * bfloat16 (round to nearest even) while they are packed, the products run on AVX-512
 * `vdpbf16ps` (two bf16 products per fp32 lane per instruction) and every sum is in fp32.
 * Debian's OpenBLAS 0.3.21 has no cblas_sbgemm (`nm -D` shows none), so there is no library
 * route to compare with on this machine.
 *
 * Without avx512_bf16 (checked at run time with cpuid, or forced with EMLAB_BF16=emulate)
 * the same contract runs as: round A and B to bf16 values held in fp32, then sgemm. The
 * result differs from the vdpbf16ps path only by fp32 summation order.
 *
 * Layouts (u32 = one pair of bf16 along the reduction index p, low half = even p):
 * - A, converted: either row layout [Mp][Kp2] (A not transposed: the pairs of a row are
 *   adjacent in memory) or panel layout [Mp/PW][Kp2][PW] (A transposed: a micro-kernel
 *   reads a contiguous panel). Mp = M rounded up to MR (row layout) or PW = 16 (panel
 *   layout), zero rows; Kp2 = ⌈K/2⌉ (an odd K gets a zero partner).
 * - B, packed: panels of NR = 32 columns, [N/NR][Kp2][NR] u32; columns past N are zero.
 *   A linear layer's weight W [n, k] (B = Wᵀ) can be packed once and reused (decoding).
 */
#include <immintrin.h>
#include <cpuid.h>

#define BF_MR 8     /* rows per micro-kernel: 8 × 2 zmm accumulators */
#define BF_NR 32    /* columns per micro-kernel and per packed panel */
#define BF_KC 128   /* k pairs per cache block: a B micro-panel is 128 × 32 × 4 B = 16 KB (L1) */
#define BF_MC 96    /* rows per cache block of A: 96 × 128 × 4 B = 48 KB (L2) */
#define BF_PW 16    /* rows per panel of a transposed A (one 64-byte store per pair of k) */

static int bf16_hw = -1; /* 1: vdpbf16ps usable; 0: emulate */

static int bf16_detect(void) {
  if (bf16_hw >= 0) return bf16_hw;
  unsigned a, b, c, d;
  int ok = 0;
  /* leaf 7 sub-leaf 1, EAX bit 5 = AVX512_BF16; also needs AVX512F/BW (leaf 7.0 EBX 16, 30) and OS zmm state */
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 16)) && (b & (1u << 30)) &&
      __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5))) {
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    ok = (lo & 0xe6) == 0xe6; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM enabled by the OS */
  }
  const char *force = getenv("EMLAB_BF16");
  if (force != NULL && strcmp(force, "emulate") == 0) ok = 0;
  bf16_hw = ok;
  return ok;
}

/* fp32 → bf16, round to nearest even; NaN stays NaN (quiet). */
static inline uint16_t f2bf(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
static inline float bf_round(float f) {
  uint32_t u = (uint32_t)f2bf(f) << 16;
  float r;
  memcpy(&r, &u, 4);
  return r;
}

#define BF_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/*
 * out[j] = pair(r0[j], r1[j]) for j < n, and 0 for n ≤ j < width (width a multiple of 16);
 * r1 NULL: zero partners. Pairs of bf16 as u32.
 */
BF_TARGET static void pair_rows(const float *r0, const float *r1, uint32_t *out, size_t n, size_t width) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (size_t j = 0; j < width; j += 16) {
    const size_t left = j < n ? n - j : 0;
    const __mmask16 mk = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    const __m512 v0 = _mm512_maskz_loadu_ps(mk, r0 + j);
    const __m512 v1 = r1 ? _mm512_maskz_loadu_ps(mk, r1 + j) : _mm512_setzero_ps();
    const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(v1, v0); /* low 16: r0, high 16: r1 */
    _mm512_storeu_si512(out + j, _mm512_permutexvar_epi16(idx, both));
  }
}

/* A row of K fp32 → Kp2 pairs (an odd K gets a zero partner). */
BF_TARGET static void row_to_pairs(const float *x, uint32_t *out, size_t K) {
  uint16_t *o = (uint16_t *)out;
  size_t j = 0;
  for (; j + 16 <= K; j += 16) _mm256_storeu_si256((__m256i *)(o + j), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + j)));
  for (; j < K; j++) o[j] = f2bf(x[j]);
  if (K & 1) o[K] = 0;
}

typedef struct {
  const float *a, *b;
  uint32_t *abf, *bp;
  float *c;
  size_t M, K, N, Mp, Kp2, panels;
  int ta, tb;
  float alpha, beta;
  size_t lo, hi;   /* this thread's range: panels (split_n) or rows (multiples of MR) */
  int split_n;
  volatile int failed; /* a packing thread ran out of memory */
} bf_job;

/* panel[q·NR + jj] = rows[jj·Kp2 + q]: the NR converted rows of W as one packed panel. */
BF_TARGET static void transpose_panel(const uint32_t *rows, size_t Kp2, uint32_t *panel) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32((int)Kp2));
  const uint32_t *hi = rows + 16 * Kp2;
  for (size_t q = 0; q < Kp2; q++) {
    _mm512_storeu_si512(panel + q * BF_NR, _mm512_i32gather_epi32(idx, (const void *)(rows + q), 4));
    _mm512_storeu_si512(panel + q * BF_NR + 16, _mm512_i32gather_epi32(idx, (const void *)(hi + q), 4));
  }
}

/* Converts rows [lo, hi) of A (row layout) or k pairs [lo, hi) (panel layout). */
static void conv_a_range(void *ctx, size_t lo, size_t hi) {
  bf_job *j = ctx;
  if (!j->ta) {
    for (size_t i = lo; i < hi; i++) {
      if (i < j->M) row_to_pairs(j->a + i * j->K, j->abf + i * j->Kp2, j->K);
      else memset(j->abf + i * j->Kp2, 0, j->Kp2 * 4);
    }
  } else {
    /* A stored [K, M]: pair (A(i, 2q), A(i, 2q+1)) = (a[2q·M + i], a[(2q+1)·M + i]) */
    for (size_t q = lo; q < hi; q++) {
      const float *r0 = j->a + 2 * q * j->M, *r1 = 2 * q + 1 < j->K ? r0 + j->M : NULL;
      for (size_t i0 = 0; i0 < j->Mp; i0 += BF_PW) {
        const size_t w = i0 < j->M ? (j->M - i0 < BF_PW ? j->M - i0 : BF_PW) : 0;
        pair_rows(r0 + i0, r1 ? r1 + i0 : NULL, j->abf + (i0 * j->Kp2 + q * BF_PW), w, BF_PW);
      }
    }
  }
}

/* Packs B panels [lo, hi). */
static void pack_b_range(void *ctx, size_t lo, size_t hi) {
  bf_job *j = ctx;
  const size_t K = j->K, N = j->N, Kp2 = j->Kp2;
  uint32_t *row = j->tb ? malloc(BF_NR * Kp2 * 4) : NULL;
  if (j->tb && row == NULL) {
    j->failed = 1;
    return;
  }
  for (size_t p = lo; p < hi; p++) {
    uint32_t *panel = j->bp + p * Kp2 * BF_NR;
    const size_t j0 = p * BF_NR, w = N - j0 < BF_NR ? N - j0 : BF_NR;
    if (!j->tb) {
      /* B stored [K, N]: rows 2q and 2q+1 interleaved, columns j0 .. j0+w */
      for (size_t q = 0; q < Kp2; q++) {
        const float *r0 = j->b + 2 * q * N + j0, *r1 = 2 * q + 1 < K ? r0 + N : NULL;
        pair_rows(r0, r1, panel + q * BF_NR, w, BF_NR);
      }
    } else {
      /* B stored [N, K] (a weight W): column jj of the panel is row j0+jj of W. The 32
         rows are converted, then transposed (as u32 pairs) with gathers. */
      for (size_t jj = 0; jj < BF_NR; jj++) {
        if (jj < w) row_to_pairs(j->b + (j0 + jj) * K, row + jj * Kp2, K);
        else memset(row + jj * Kp2, 0, Kp2 * 4);
      }
      transpose_panel(row, Kp2, panel);
    }
  }
  free(row);
}

/*
 * C[0..mr, 0..nr] (op)= alpha · Σ_q A(i, q) · B(q, ·) over kc pairs. A(i, q) is ap[i·si + q·sk];
 * bp is the panel at the block's first pair. beta = 0: C is not read.
 */
BF_TARGET static void bf_kernel(size_t kc, const uint32_t *ap, size_t si, size_t sk, const uint32_t *bp, float *c,
                                size_t ldc, size_t mr, size_t nr, float alpha, float beta) {
  __m512 acc[BF_MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < BF_MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const uint32_t *rows[BF_MR];
  for (int i = 0; i < BF_MR; i++) rows[i] = ap + i * si;
  for (size_t q = 0; q < kc; q++) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + q * BF_NR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + q * BF_NR + 16);
    const size_t off = q * sk;
#pragma GCC unroll 8
    for (int i = 0; i < BF_MR; i++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32((int)rows[i][off]);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
    }
  }
  const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (size_t i = 0; i < mr; i++) {
    float *ci = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

static void *bf_compute(void *arg) {
  bf_job *j = arg;
  const int row_layout = !j->ta;
  const size_t si = row_layout ? j->Kp2 : 1, sk = row_layout ? 1 : BF_PW;
  const size_t p0 = j->split_n ? j->lo : 0, p1 = j->split_n ? j->hi : j->panels;
  const size_t r0 = j->split_n ? 0 : j->lo, r1 = j->split_n ? j->M : j->hi;
  for (size_t pc = 0; pc < j->Kp2; pc += BF_KC) {
    const size_t kc = j->Kp2 - pc < BF_KC ? j->Kp2 - pc : BF_KC;
    const float beta = pc == 0 ? j->beta : 1.0f;
    for (size_t ic = r0; ic < r1; ic += BF_MC) {
      const size_t ie = ic + BF_MC < r1 ? ic + BF_MC : r1;
      for (size_t p = p0; p < p1; p++) {
        const uint32_t *bp = j->bp + (p * j->Kp2 + pc) * BF_NR;
        const size_t col = p * BF_NR, nr = j->N - col < BF_NR ? j->N - col : BF_NR;
        for (size_t ir = ic; ir < ie; ir += BF_MR) {
          const size_t mr = ie - ir < BF_MR ? ie - ir : BF_MR;
          const uint32_t *ap = row_layout ? j->abf + ir * j->Kp2 + pc
                                           : j->abf + ((ir / BF_PW) * BF_PW * j->Kp2 + pc * BF_PW + ir % BF_PW);
          bf_kernel(kc, ap, si, sk, bp, j->c + ir * j->N + col, j->N, mr, nr, j->alpha, beta);
        }
      }
    }
  }
  return NULL;
}

/* Runs the blocked product on up to two threads: split over B's panels, or over rows when B has one panel. */
static void bf_run(bf_job *j) {
  const double flops = 2.0 * (double)j->M * (double)j->N * (double)j->K;
  const size_t rows_blocks = j->Mp / BF_MR;
  const int two = n_threads > 1 && flops >= 4e6 && (j->panels >= 2 || rows_blocks >= 2);
  if (!two) {
    j->split_n = 1, j->lo = 0, j->hi = j->panels;
    bf_compute(j);
    return;
  }
  bf_job other = *j;
  if (j->panels >= 2) {
    j->split_n = other.split_n = 1;
    j->lo = 0, j->hi = other.lo = j->panels / 2, other.hi = j->panels;
  } else {
    j->split_n = other.split_n = 0;
    j->lo = 0, j->hi = other.lo = (rows_blocks / 2) * BF_MR, other.hi = j->M;
  }
  pthread_t th;
  if (pthread_create(&th, NULL, bf_compute, &other) == 0) {
    bf_compute(j);
    pthread_join(th, NULL);
  } else {
    j->split_n = 1, j->lo = 0, j->hi = j->panels;
    bf_compute(j);
  }
}

static size_t bf_packed_len(size_t n, size_t k) { return ((n + BF_NR - 1) / BF_NR) * ((k + 1) / 2) * BF_NR; }

/* One product with vdpbf16ps; bp may be a pre-packed B (then b and tb are unused). 0 when out of memory. */
static int bf_gemm_one(const float *a, const float *b, const uint32_t *prepacked, float *c, size_t M, size_t K, size_t N,
                       int ta, int tb, float alpha, float beta) {
  bf_job j = {0};
  j.a = a, j.b = b, j.c = c, j.M = M, j.K = K, j.N = N, j.ta = ta, j.tb = tb, j.alpha = alpha, j.beta = beta;
  const size_t mround = ta ? BF_PW : BF_MR;
  j.Mp = (M + mround - 1) / mround * mround, j.Kp2 = (K + 1) / 2, j.panels = (N + BF_NR - 1) / BF_NR;
  j.abf = malloc(j.Mp * j.Kp2 * 4);
  j.bp = prepacked ? (uint32_t *)prepacked : malloc(bf_packed_len(N, K) * 4);
  if (j.abf == NULL || j.bp == NULL) {
    free(j.abf);
    if (!prepacked) free(j.bp);
    return 0;
  }
  parallel_for(conv_a_range, &j, ta ? j.Kp2 : j.Mp, j.Mp * K);
  if (!prepacked) parallel_for(pack_b_range, &j, j.panels, N * K);
  if (j.failed) {
    free(j.abf);
    if (!prepacked) free(j.bp);
    return 0;
  }
  bf_run(&j);
  free(j.abf);
  if (!prepacked) free(j.bp);
  return 1;
}

/* The fallback: A and B rounded to bf16 values (held in fp32), then OpenBLAS sgemm. */
static int bf_emulate_one(const float *a, const float *b, float *c, size_t M, size_t K, size_t N, int ta, int tb,
                          float alpha, float beta) {
  float *ar = malloc(M * K * 4), *br = malloc(K * N * 4);
  if (ar == NULL || br == NULL) {
    free(ar), free(br);
    return 0;
  }
  for (size_t i = 0; i < M * K; i++) ar[i] = bf_round(a[i]);
  for (size_t i = 0; i < K * N; i++) br[i] = bf_round(b[i]);
  sgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, (int)M, (int)N, (int)K, alpha, ar, ta ? (int)M : (int)K,
        br, tb ? (int)K : (int)N, beta, c, (int)N);
  free(ar), free(br);
  return 1;
}

/* bf16Info() -> { avx512bf16: boolean } (false also under EMLAB_BF16=emulate) */
static napi_value js_bf16_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj, hw;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_get_boolean(env, bf16_detect(), &hw));
  CHECK(napi_set_named_property(env, obj, "avx512bf16", hw));
  return obj;
}

/*
 * sbgemm(a, b, out, batchA, batchB, m, k, n, transA, transB, alpha, beta): sgemm's contract
 * (js_sgemm) with A and B rounded to bf16 and fp32 sums.
 */
static napi_value js_sbgemm(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 12 || sgemm == NULL) {
    napi_throw_error(env, NULL, "emlab native: sbgemm needs 12 arguments and a loaded library");
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
  const int32_t batch = batchA > batchB ? batchA : batchB;
  if (batchA < 1 || batchB < 1 || m < 0 || k < 0 || n < 0 || (batchA != batchB && batchA != 1 && batchB != 1) ||
      la < (size_t)batchA * m * k || lb < (size_t)batchB * k * n || lc < (size_t)batch * m * n)
    return range_error(env, "emlab native: sbgemm sizes do not match the arrays");
  if (m == 0 || n == 0) return NULL;
  if (k == 0) {
    for (size_t i = 0; i < (size_t)batch * m * n; i++) c[i] = beta == 0 ? 0.0f : (float)beta * c[i];
    return NULL;
  }
  const int hw = bf16_detect();
  int stacked = batchB == 1 && batchA > 1 && !ta; /* A's batches as one tall matrix */
  const int32_t calls = stacked ? 1 : batch;
  for (int32_t i = 0; i < calls; i++) {
    const size_t M = stacked ? (size_t)batchA * m : (size_t)m;
    const float *ai = a + (size_t)(batchA == 1 ? 0 : i) * m * k;
    const float *bi = b + (size_t)(batchB == 1 ? 0 : i) * k * n;
    float *ci = c + (size_t)i * m * n;
    const int ok = hw ? bf_gemm_one(ai, bi, NULL, ci, M, k, n, ta, tb, (float)alpha, (float)beta)
                      : bf_emulate_one(ai, bi, ci, M, k, n, ta, tb, (float)alpha, (float)beta);
    if (!ok) return range_error(env, "emlab native: sbgemm out of memory");
  }
  return NULL;
}

/* bf16PackedLength(n, k) -> the Uint16Array length bf16PackWeight needs for W [n, k]. */
static napi_value js_bf16_packed_len(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t n, k;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  CHECK(napi_get_value_int32(env, argv[1], &k));
  CHECK(napi_create_double(env, (double)bf_packed_len((size_t)n, (size_t)k) * 2, &out));
  return out;
}

/* bf16PackWeight(w: Float32Array [n, k], n, k, out: Uint16Array): W's transpose as packed B panels. */
static napi_value js_bf16_pack_weight(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *w;
  uint16_t *out;
  size_t lw, lo;
  int32_t n, k;
  if (argc != 4 || !float_array(env, argv[0], &w, &lw) ||
      !typed_array(env, argv[3], napi_uint16_array, "emlab native: expected a Uint16Array", (void **)&out, &lo))
    return NULL;
  CHECK(napi_get_value_int32(env, argv[1], &n));
  CHECK(napi_get_value_int32(env, argv[2], &k));
  if (!bf16_detect()) return range_error(env, "emlab native: bf16PackWeight needs avx512_bf16");
  if (n < 1 || k < 1 || lw != (size_t)n * k || lo != bf_packed_len(n, k) * 2)
    return range_error(env, "emlab native: bf16PackWeight sizes do not match");
  bf_job j = {0};
  j.b = w, j.bp = (uint32_t *)out, j.K = k, j.N = n, j.tb = 1, j.Kp2 = ((size_t)k + 1) / 2;
  j.panels = ((size_t)n + BF_NR - 1) / BF_NR;
  parallel_for(pack_b_range, &j, j.panels, (size_t)n * k);
  if (j.failed) return range_error(env, "emlab native: bf16PackWeight out of memory");
  return NULL;
}

/* bf16Linear(x [m, k], packed W, out [m, n], m, k, n, beta): out = x·Wᵀ (+ beta·out) with a pre-packed W. */
static napi_value js_bf16_linear(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *c;
  uint16_t *pw;
  size_t lx, lp, lc;
  int32_t m, k, n;
  double beta;
  if (argc != 7 || !float_array(env, argv[0], &x, &lx) ||
      !typed_array(env, argv[1], napi_uint16_array, "emlab native: expected a Uint16Array", (void **)&pw, &lp) ||
      !float_array(env, argv[2], &c, &lc))
    return NULL;
  CHECK(napi_get_value_int32(env, argv[3], &m));
  CHECK(napi_get_value_int32(env, argv[4], &k));
  CHECK(napi_get_value_int32(env, argv[5], &n));
  CHECK(napi_get_value_double(env, argv[6], &beta));
  if (!bf16_detect()) return range_error(env, "emlab native: bf16Linear needs avx512_bf16");
  if (m < 0 || k < 1 || n < 1 || lx != (size_t)m * k || lc != (size_t)m * n || lp != bf_packed_len(n, k) * 2)
    return range_error(env, "emlab native: bf16Linear sizes do not match");
  if (m == 0) return NULL;
  if (!bf_gemm_one(x, NULL, (const uint32_t *)pw, c, m, k, n, 0, 1, 1.0f, (float)beta))
    return range_error(env, "emlab native: bf16Linear out of memory");
  return NULL;
}
