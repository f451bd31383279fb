/* Few-row int4 product (decode: M = 1; speculative checks: a few rows) on AVX512-VNNI, reading the weights in the layout of
 * PyTorch's _convert_weight_to_int4pack_for_cpu (so no second copy of the weights):
 *   rows in blocks of 64; inside a block, for each input k, 32 bytes: byte j holds row j's
 *   4-bit value (low nibble) and row 32 + j's (high nibble); scales_and_zeros (K/g, N, 2) bf16,
 *   w = (q - 8) * scale + zero.
 * The activation row is quantised to int8 per group of g inputs (absmax / 127, round to
 * nearest), as llama.cpp does for its Q4 x Q8 dot products, and each 4-bit x int8 product
 * group is summed in int32 by vpdpbusd, then scaled in fp32:
 *   out[n] = sum_g dx_g * (scale[g,n] * sum_k q[n,k] xq[k] + (zero[g,n] - 8 scale[g,n]) * sum_k xq[k]).
 * The output is bf16 (round to nearest even), one value per (padded) row and activation row.
 * Build: gcc -O3 -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx512vbmi -fopenmp -shared -fPIC.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

static inline uint16_t float_to_bf16(float f) {
    union { float f; uint32_t u; } c = {f};
    return (uint16_t)((c.u + 0x7FFF + ((c.u >> 16) & 1)) >> 16);
}

static inline __m512 load16(const uint16_t *x) {  /* 16 bf16 -> fp32 */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)x)), 16));
}

/* x (K) bf16 -> xq (K) int8, dx (K/g) scales, sx (K/g) = dx * sum(xq) of each group (g a
   multiple of 16; rounding to nearest even, as nearbyintf). */
static void quantize_row(const uint16_t *x, int K, int g, int8_t *xq, float *dx, float *sx) {
    for (int start = 0, gi = 0; start < K; start += g, gi++) {
        __m512 vmax = _mm512_setzero_ps();
        for (int k = start; k < start + g; k += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(load16(x + k)));
        float amax = _mm512_reduce_max_ps(vmax);
        __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        __m512i sum = _mm512_setzero_si512();
        for (int k = start; k < start + g; k += 16) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(load16(x + k), inv));  /* |q| <= 127 */
            sum = _mm512_add_epi32(sum, q);
            _mm_storeu_si128((__m128i *)(xq + k), _mm512_cvtsepi32_epi8(q));
        }
        dx[gi] = amax / 127.0f;
        sx[gi] = dx[gi] * (float)_mm512_reduce_add_epi32(sum);
    }
}

/* One block of 64 rows for M (1..4) activation rows: the weights are unpacked once for all M. */
static inline __attribute__((always_inline)) void block64(
        int M, const uint8_t *w, const uint16_t *sz, int K, int N, int g, const int8_t *xq,
        const float *dx, const float *sx, uint16_t *out) {
    const __m512i nib = _mm512_set1_epi8(0x0F);
    /* lanes of rows 0..15 take bytes r, 32 + r of the first register (k, k + 1) and r, 32 + r of
       the second (k + 2, k + 3); rows 16..31 the same 16 further on. */
    uint8_t i0[64], i1[64];
    for (int r = 0; r < 16; r++) {
        int b0[4] = {r, 32 + r, 64 + r, 96 + r};
        for (int j = 0; j < 4; j++) { i0[4 * r + j] = (uint8_t)b0[j]; i1[4 * r + j] = (uint8_t)(b0[j] + 16); }
    }
    const __m512i idx0 = _mm512_loadu_si512(i0), idx1 = _mm512_loadu_si512(i1);
    const __m512i high16 = _mm512_set1_epi32((int)0xFFFF0000u);
    const int groups = K / g;
    __m512 acc[4][4];
    for (int m = 0; m < M; m++)
        for (int j = 0; j < 4; j++) acc[m][j] = _mm512_setzero_ps();
    for (int start = 0, gi = 0; start < K; start += g, gi++) {
        __m512i s[4][4];
        for (int m = 0; m < M; m++)
            for (int j = 0; j < 4; j++) s[m][j] = _mm512_setzero_si512();
        for (int k = start; k < start + g; k += 4) {
            const uint8_t *p = w + (size_t)k * 32;
            __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 64);
            __m512i la = _mm512_and_si512(a, nib), lb = _mm512_and_si512(b, nib);
            __m512i ha = _mm512_and_si512(_mm512_srli_epi16(a, 4), nib);
            __m512i hb = _mm512_and_si512(_mm512_srli_epi16(b, 4), nib);
            __m512i q[4] = {_mm512_permutex2var_epi8(la, idx0, lb), _mm512_permutex2var_epi8(la, idx1, lb),
                            _mm512_permutex2var_epi8(ha, idx0, hb), _mm512_permutex2var_epi8(ha, idx1, hb)};
            for (int m = 0; m < M; m++) {
                __m512i xb = _mm512_set1_epi32(*(const int32_t *)(xq + (size_t)m * K + k));
                for (int j = 0; j < 4; j++) s[m][j] = _mm512_dpbusd_epi32(s[m][j], q[j], xb);
            }
        }
        const uint16_t *row = sz + ((size_t)gi * N) * 2;  /* (scale, zero) pairs of this block's rows */
        for (int j = 0; j < 4; j++) {
            __m512i pair = _mm512_loadu_si512(row + 32 * j);
            __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(pair, 16));
            __m512 zero = _mm512_castsi512_ps(_mm512_and_si512(pair, high16));
            __m512 offset = _mm512_fnmadd_ps(_mm512_set1_ps(8.0f), scale, zero);  /* zero - 8 scale */
            for (int m = 0; m < M; m++) {
                __m512 dot = _mm512_mul_ps(_mm512_cvtepi32_ps(s[m][j]), _mm512_mul_ps(scale, _mm512_set1_ps(dx[m * groups + gi])));
                acc[m][j] = _mm512_add_ps(acc[m][j], _mm512_fmadd_ps(offset, _mm512_set1_ps(sx[m * groups + gi]), dot));
            }
        }
    }
    for (int m = 0; m < M; m++)
        for (int j = 0; j < 4; j++) {
            float v[16];
            _mm512_storeu_ps(v, acc[m][j]);
            for (int r = 0; r < 16; r++) out[(size_t)m * N + 16 * j + r] = float_to_bf16(v[r]);
        }
}

static void block64_rows(int M, const uint8_t *w, const uint16_t *sz, int K, int N, int g, const int8_t *xq,
                         const float *dx, const float *sx, uint16_t *out) {
    switch (M) {  /* constant M: the compiler keeps the accumulators in registers */
    case 1: block64(1, w, sz, K, N, g, xq, dx, sx, out); break;
    case 2: block64(2, w, sz, K, N, g, xq, dx, sx, out); break;
    case 3: block64(3, w, sz, K, N, g, xq, dx, sx, out); break;
    default: block64(4, w, sz, K, N, g, xq, dx, sx, out); break;
    }
}

/* out (M, N) bf16 = x (M, K) bf16 times the packed (N, K/2) weights; N a multiple of 64, K of g
   and 4; rows are taken four at a time (the weights are read once per four rows), and each row's
   result is the same as its own one-row product. Returns 0, or -1 when scratch allocation fails. */
int lhama_int4_gemm(const uint16_t *x, const uint8_t *w, const uint16_t *sz, uint16_t *out, int M, int K, int N, int g) {
    int groups = K / g;
    int8_t *xq = aligned_alloc(64, (size_t)((M * K + 63) / 64) * 64);
    float *dx = malloc(sizeof(float) * groups * 2 * M);
    if (!xq || !dx) { free(xq); free(dx); return -1; }
    float *sx = dx + groups * M;
    for (int m = 0; m < M; m++)
        quantize_row(x + (size_t)m * K, K, g, xq + (size_t)m * K, dx + m * groups, sx + m * groups);
    int blocks = N / 64;
    for (int m0 = 0; m0 < M; m0 += 4) {
        int rows = M - m0 < 4 ? M - m0 : 4;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < blocks; b++)
            block64_rows(rows, w + (size_t)b * 32 * K, sz + (size_t)b * 64 * 2, K, N, g, xq + (size_t)m0 * K,
                         dx + m0 * groups, sx + m0 * groups, out + (size_t)m0 * N + (size_t)b * 64);
    }
    free(xq);
    free(dx);
    return 0;
}

int lhama_int4_version(void) { return 3; }
