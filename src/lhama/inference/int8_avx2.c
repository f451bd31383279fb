/* The AVX2 port of int4_vnni.c's int8 product (lhama_int8_gemm), for CPUs without AVX512 (e.g. AMD Zen 3): int8
 * weights (N, K) with one bf16 scale per row, each activation row rounded to int16, the same bits as the VNNI kernel
 * (tests/inference/test_native_exact.py). Built and linked with int4_avx2.c into one library (lhama.inference.native).
 * Helpers shared with int4_avx2.c: avx2_common.h.
 * Build: gcc -O3 -mavx2 -mfma -mf16c -ffp-contract=off -fopenmp -shared -fPIC int4_avx2.c int8_avx2.c.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

#include "avx2_common.h"

/* int4_vnni.c's lhama_int8_gemm: its 16 int32 lanes (input pairs 2 l,
   2 l + 1 of each 32 inputs) are two registers here (inputs 0..15 and 16..31 of each 32), flushed to fp32 every
   INT8_FLUSH inputs as there, and summed in the tree of gcc's _mm512_reduce_add_ps. One weight row at a time, read
   once for up to four activation rows: a single sequential stream (four weight rows read side by side gave ~8 GB/s
   from memory here, one row ~13 GB/s, 1 thread). A lane's integer sums are exact, so one activation row splits them
   over two registers per lane (two loads in flight) and adds them before the flush: the same bits. */
#define INT8_FLUSH 8192
#define INT8_PREFETCH 1024 /* bytes ahead in the row (and on into the next one) */
#define MAC8(s, wp, xp) ((s) = _mm256_add_epi32((s), _mm256_madd_epi16(                                      \
    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wp))), _mm256_loadu_si256((const __m256i *)(xp)))))

static inline float reduce16(__m256 a0, __m256 a1) { /* gcc's _mm512_reduce_add_ps over (a0, a1) */
    __m256 t3 = _mm256_add_ps(a1, a0);
    __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, 0x4E));
    return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 0x55));
}

/* acc (2) += one activation row's int32 sums over the row's inputs start..end, as fp32. */
static inline void span1_int8(const int8_t *row, const int16_t *xq, int start, int end, __m256 *acc) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    int k = start;
    for (; k + 64 <= end; k += 64) {
        _mm_prefetch((const char *)(row + k + INT8_PREFETCH), _MM_HINT_T0);
        MAC8(a, row + k, xq + k);
        MAC8(b, row + k + 16, xq + k + 16);
        MAC8(c, row + k + 32, xq + k + 32);
        MAC8(d, row + k + 48, xq + k + 48);
    }
    for (; k < end; k += 32) {
        MAC8(a, row + k, xq + k);
        MAC8(b, row + k + 16, xq + k + 16);
    }
    acc[0] = _mm256_add_ps(acc[0], _mm256_cvtepi32_ps(_mm256_add_epi32(a, c)));
    acc[1] = _mm256_add_ps(acc[1], _mm256_cvtepi32_ps(_mm256_add_epi32(b, d)));
}

/* acc (M x 2) += M activation rows' int32 sums over the row's inputs start..end, as fp32. */
static inline __attribute__((always_inline)) void spanm_int8(int M, const int8_t *row, const int16_t *xq, int K,
                                                             int start, int end, __m256 acc[4][2]) {
    __m256i s[4][2];
    for (int m = 0; m < M; m++) s[m][0] = s[m][1] = _mm256_setzero_si256();
    for (int k = start; k < end; k += 32) {
        if (!(k & 63)) _mm_prefetch((const char *)(row + k + INT8_PREFETCH), _MM_HINT_T0);
        for (int m = 0; m < M; m++) {
            MAC8(s[m][0], row + k, xq + (size_t)m * K + k);
            MAC8(s[m][1], row + k + 16, xq + (size_t)m * K + k + 16);
        }
    }
    for (int m = 0; m < M; m++)
        for (int h = 0; h < 2; h++) acc[m][h] = _mm256_add_ps(acc[m][h], _mm256_cvtepi32_ps(s[m][h]));
}

/* Output column n for M <= 4 activation rows. */
static inline __attribute__((always_inline)) void row_int8(int M, const int8_t *w, const uint16_t *scale, int K,
                                                           int N, int n, const int16_t *xq, const float *dx,
                                                           uint16_t *out) {
    const int8_t *row = w + (size_t)n * K;
    __m256 acc[4][2];
    for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
    for (int start = 0; start < K; start += INT8_FLUSH) {
        int end = start + INT8_FLUSH < K ? start + INT8_FLUSH : K;
        if (M == 1) span1_int8(row, xq, start, end, acc[0]);
        else spanm_int8(M, row, xq, K, start, end, acc);
    }
    union { uint32_t u; float f; } sc = {(uint32_t)scale[n] << 16};
    for (int m = 0; m < M; m++) out[(size_t)m * N + n] = float_to_bf16(reduce16(acc[m][0], acc[m][1]) * (sc.f * dx[m]));
}

/* Output columns n0..n1 for M <= 4 activation rows. */
static void rows_int8(int M, const int8_t *w, const uint16_t *scale, int K, int N, int n0, int n1,
                      const int16_t *xq, const float *dx, uint16_t *out) {
    switch (M) {
    case 1: for (int n = n0; n < n1; n++) row_int8(1, w, scale, K, N, n, xq, dx, out); break;
    case 2: for (int n = n0; n < n1; n++) row_int8(2, w, scale, K, N, n, xq, dx, out); break;
    case 3: for (int n = n0; n < n1; n++) row_int8(3, w, scale, K, N, n, xq, dx, out); break;
    default: for (int n = n0; n < n1; n++) row_int8(4, w, scale, K, N, n, xq, dx, out); break;
    }
}

/* x (K) bf16 -> xq (K) int16 (absmax -> 16383, round to nearest even); returns the scale: int4_vnni.c's quantize_row16. */
static float quantize_row16(const uint16_t *x, int K, int16_t *xq) {
    __m256 vmax = _mm256_setzero_ps();
    for (int k = 0; k < K; k += 8) vmax = _mm256_max_ps(vmax, abs8(load8(x + k)));
    float amax = hmax8(vmax);
    __m256 inv = _mm256_set1_ps(amax > 0.0f ? 16383.0f / amax : 0.0f);
    for (int k = 0; k < K; k += 8) {
        __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(load8(x + k), inv));
        _mm_storeu_si128((__m128i *)(xq + k), _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
    }
    return amax / 16383.0f;
}

struct int8_ctx { int rows, K, N; const int8_t *w; const uint16_t *scale; const int16_t *xq; const float *dx; uint16_t *out; };

#define INT8_ITEM 16 /* output rows per work item */

static void int8_item(const void *p, int item) {
    const struct int8_ctx *c = p;
    int n0 = item * INT8_ITEM, n1 = n0 + INT8_ITEM < c->N ? n0 + INT8_ITEM : c->N;
    for (int m0 = 0; m0 < c->rows; m0 += 4)
        rows_int8(c->rows - m0 < 4 ? c->rows - m0 : 4, c->w, c->scale, c->K, c->N, n0, n1,
                  c->xq + (size_t)m0 * c->K, c->dx + m0, c->out + (size_t)m0 * c->N);
}

int lhama_int8_gemm(const uint16_t *x, const int8_t *w, const uint16_t *scale, uint16_t *out, int M, int K, int N,
                    int threads, int pool) {
    (void)pool;
    int16_t *xq = aligned_alloc(64, (size_t)((M * K * 2 + 63) / 64) * 64);
    float *dx = malloc(sizeof(float) * M);
    if (!xq || !dx) { free(xq); free(dx); return -1; }
    for (int m = 0; m < M; m++) dx[m] = quantize_row16(x + (size_t)m * K, K, xq + (size_t)m * K);
    struct int8_ctx c = {M, K, N, w, scale, xq, dx, out};
    parallel_items(int8_item, &c, (N + INT8_ITEM - 1) / INT8_ITEM, threads);
    free(xq);
    free(dx);
    return 0;
}
