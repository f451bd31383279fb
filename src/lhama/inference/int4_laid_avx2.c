/* The int4 product with k-scale records (lhama_int4k_gemm_records' arithmetic, int4_avx2.c) on AVX2 with the weights
 * "laid" for it, as int6_avx2.c lays the 6-bit weights' low bits: the same values, re-ordered in place at load
 * (lhama_int4_lay; lhama_int4_unlay restores PyTorch's packing) so that one 256-bit load gives 64 weights with no
 * unpacking (the stored order needs 4 inserts, 8 unpacks and 4 shifts per 256 weights: at 2 threads the product was
 * bound by those shuffles, not by memory; docs/benchmarks.md #27 session 16):
 *   per block of 64 rows, four sub-blocks of 16 rows (p = 0..3), each one stream of K / 4 steps of 32 bytes:
 *   byte 4 l + o of step s = row 16 p + l, input 4 s + o (low nibble) and row 16 p + 8 + l, same input (high nibble).
 * Per group of 32 inputs the int32 sums are exact (vpmaddubsw: 2 x 15 x 127 per int16, 8 steps < 2^15, then widened)
 * and scaled in fp32 exactly as int4_avx2.c does with records (same mul / fma / add per output, -ffp-contract=off):
 * the same bits (tests/inference/test_native_exact.py). Each activation row is quantised to int8 per group as there.
 * Build: with int4_avx2.c, int8_avx2.c and int6_avx2.c into one library (lhama.inference.native).
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avx2_common.h"

#define G4 32                                /* inputs per group (the records' layout below is for this size) */
#define SUPER4 256                           /* inputs per super-block (one record) */
#define REC4 (256 + 128 * (SUPER4 / G4))     /* a record: d, dmin (64 fp16 each), then per group sc, m (64 bytes each) */

/* One sub-block of 16 rows (p) of a 64-row block, M (1..4) activation rows: out[m][16 p .. 16 p + 15]. */
static inline __attribute__((always_inline)) void sub16k(
        int M, const uint8_t *lw, const uint8_t *ks, int p, int K, const int8_t *xq, const float *dx, const float *sx,
        uint16_t *out, int N) {
    const __m256i nib = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const int groups = K / G4;
    __m256 acc[4][2];
    for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
    for (int sb = 0; sb < K / SUPER4; sb++) {
        const uint8_t *rec = ks + (size_t)sb * REC4;
        __m256 d[2], nd[2];
        for (int j = 0; j < 2; j++) { /* rows 16 p + 8 j .. + 7 */
            d[j] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + 2 * (16 * p + 8 * j))));
            __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + 128 + 2 * (16 * p + 8 * j))));
            nd[j] = _mm256_sub_ps(_mm256_setzero_ps(), dmin);
        }
        for (int gi = sb * (SUPER4 / G4); gi < (sb + 1) * (SUPER4 / G4); gi++) {
            __m256i s16[4][2];
            for (int m = 0; m < M; m++) s16[m][0] = s16[m][1] = _mm256_setzero_si256();
            for (int step = gi * (G4 / 4); step < (gi + 1) * (G4 / 4); step++) {
                /* 1 KB ahead (as int6_avx2.c: the sub-block's stream runs into the next one's) */
                if (!(step & 1)) _mm_prefetch((const char *)(lw + (size_t)step * 32 + 1024), _MM_HINT_T0);
                __m256i w = _mm256_loadu_si256((const __m256i *)(lw + (size_t)step * 32));
                __m256i qa = _mm256_and_si256(w, nib), qb = _mm256_and_si256(_mm256_srli_epi16(w, 4), nib);
                for (int m = 0; m < M; m++) {
                    __m256i xb = _mm256_set1_epi32(*(const int32_t *)(xq + (size_t)m * K + (size_t)step * 4));
                    s16[m][0] = _mm256_add_epi16(s16[m][0], _mm256_maddubs_epi16(qa, xb));
                    s16[m][1] = _mm256_add_epi16(s16[m][1], _mm256_maddubs_epi16(qb, xb));
                }
            }
            const uint8_t *cp = rec + 256 + 128 * (gi % (SUPER4 / G4));
            for (int j = 0; j < 2; j++) { /* int4_avx2.c's records scaling: scale = d sc, offset = -dmin m */
                __m256i code = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(cp + 16 * p + 8 * j)));
                __m256i mcode = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(cp + 64 + 16 * p + 8 * j)));
                __m256 scale = _mm256_mul_ps(d[j], _mm256_cvtepi32_ps(code));
                __m256 offset = _mm256_mul_ps(nd[j], _mm256_cvtepi32_ps(mcode));
                for (int m = 0; m < M; m++) {
                    __m256i sum = _mm256_madd_epi16(s16[m][j], ones);
                    __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(scale, _mm256_set1_ps(dx[m * groups + gi])));
                    acc[m][j] = _mm256_add_ps(acc[m][j], _mm256_fmadd_ps(offset, _mm256_set1_ps(sx[m * groups + gi]), dot));
                }
            }
        }
    }
    for (int m = 0; m < M; m++)
        for (int j = 0; j < 2; j++) {
            float v[8];
            _mm256_storeu_ps(v, acc[m][j]);
            for (int r = 0; r < 8; r++) out[(size_t)m * N + 16 * p + 8 * j + r] = float_to_bf16(v[r]);
        }
}

static void sub16k_rows(int M, const uint8_t *lw, const uint8_t *ks, int p, int K, const int8_t *xq, const float *dx,
                        const float *sx, uint16_t *out, int N) {
    switch (M) { /* constant M: the accumulators stay in registers */
    case 1: sub16k(1, lw, ks, p, K, xq, dx, sx, out, N); break;
    case 2: sub16k(2, lw, ks, p, K, xq, dx, sx, out, N); break;
    case 3: sub16k(3, lw, ks, p, K, xq, dx, sx, out, N); break;
    default: sub16k(4, lw, ks, p, K, xq, dx, sx, out, N); break;
    }
}

struct int4l_ctx { int rows, K, N; const uint8_t *w, *ks; const int8_t *xq; const float *dx, *sx; uint16_t *out; };

static void int4l_item(const void *ctx, int b) { /* one block of 64 output rows, for every activation row */
    const struct int4l_ctx *c = ctx;
    int groups = c->K / G4;
    const uint8_t *w = c->w + (size_t)b * 32 * c->K, *ks = c->ks + (size_t)b * (c->K / SUPER4) * REC4;
    for (int p = 0; p < 4; p++)
        for (int m0 = 0; m0 < c->rows; m0 += 4) /* the sub-block's weights stay in L2 for the next four rows */
            sub16k_rows(c->rows - m0 < 4 ? c->rows - m0 : 4, w + (size_t)p * 8 * c->K, ks, p, c->K,
                        c->xq + (size_t)m0 * c->K, c->dx + m0 * groups, c->sx + m0 * groups,
                        c->out + (size_t)m0 * c->N + (size_t)b * 64, c->N);
}

/* out (M, N) bf16 = x (M, K) bf16 times laid int4 weights (lhama_int4_lay) with k-scale records (ks (N/64, K/256,
   REC4) bytes: native.kscale_records): int4_avx2.c's lhama_int4k_gemm_records, the same bits. N a multiple of 64, K of
   256, g 32. Returns 0, -1 when scratch allocation fails, -2 for another group size or K. */
int lhama_int4k_gemm_laid(const uint16_t *x, const uint8_t *w, const uint8_t *ks, uint16_t *out, int M, int K, int N,
                          int g, int threads) {
    if (g != G4 || K % SUPER4) return -2;
    int groups = K / G4;
    int8_t *xq = aligned_alloc(64, (size_t)((M * K + 63) / 64) * 64);
    float *dx = malloc(sizeof(float) * groups * 2 * M);
    if (!xq || !dx) { free(xq); free(dx); return -1; }
    float *sx = dx + groups * M;
    for (int m = 0; m < M; m++) quantize_row(x + (size_t)m * K, K, G4, xq + (size_t)m * K, dx + m * groups, sx + m * groups);
    struct int4l_ctx c = {M, K, N, w, ks, xq, dx, sx, out};
    parallel_items(int4l_item, &c, N / 64, threads);
    free(xq);
    free(dx);
    return 0;
}

/* Back to PyTorch's AVX2 packing (two 32-row halves per 64-row block; per half and input 16 bytes, byte j = row j (low
   nibble) and row 16 + j (high)) from the laid order, one 64-row block at a time through q (K, 64): q[k][r] = row r's
   4-bit value for input k (input-major: each pass reads and writes nearby bytes). */
static void laid_to_q(const uint8_t *w, int K, uint8_t *q) {
    for (int p = 0; p < 4; p++)
        for (int s = 0; s < K / 4; s++)
            for (int b = 0; b < 32; b++) {
                uint8_t *lo = q + (size_t)(4 * s + b % 4) * 64 + 16 * p + b / 4, byte = w[(size_t)p * 8 * K + (size_t)s * 32 + b];
                lo[0] = byte & 15;
                lo[8] = byte >> 4;
            }
}

static void q_to_stored(const uint8_t *q, int K, uint8_t *w) {
    for (int k = 0; k < K; k++)
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 16; j++)
                w[(size_t)h * 16 * K + (size_t)16 * k + j] =
                    (uint8_t)(q[(size_t)k * 64 + 32 * h + j] | q[(size_t)k * 64 + 32 * h + 16 + j] << 4);
}

/* A block copied out (src, PyTorch's packing) -> laid in w: rows 16 p .. 16 p + 15 of input k are the 16 low nibbles
   (p even) or high nibbles (p odd) of half p / 2's 16 bytes for k; per step of 4 inputs the 8 + 8 rows of each go
   together as one byte, then the four inputs are interleaved byte by byte (0.16 s for lhama-default's 643 MB of int4
   weights, 1 thread). */
static void stored_to_laid(const uint8_t *src, int K, uint8_t *w) {
    const __m128i nib = _mm_set1_epi8(0x0F);
    for (int p = 0; p < 4; p++)
        for (int s = 0; s < K / 4; s++) {
            __m128i c[4];
            for (int o = 0; o < 4; o++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(src + (size_t)(p / 2) * 16 * K + (size_t)16 * (4 * s + o)));
                v = (p % 2) ? _mm_and_si128(_mm_srli_epi16(v, 4), nib) : _mm_and_si128(v, nib);
                c[o] = _mm_or_si128(v, _mm_slli_epi16(_mm_srli_si128(v, 8), 4)); /* byte l: row l | row 8 + l << 4 */
            }
            __m128i a = _mm_unpacklo_epi8(c[0], c[1]), b = _mm_unpacklo_epi8(c[2], c[3]);
            _mm_storeu_si128((__m128i *)(w + (size_t)p * 8 * K + (size_t)s * 32), _mm_unpacklo_epi16(a, b));
            _mm_storeu_si128((__m128i *)(w + (size_t)p * 8 * K + (size_t)s * 32 + 16), _mm_unpackhi_epi16(a, b));
        }
}

/* Re-orders N rows (a multiple of 64) of packed int4 weights (N, K/2) in place: laid = 1 stored -> laid, 0 laid ->
   stored. Returns 0, or -1 when scratch allocation fails (nothing changed). */
static int relay4(uint8_t *w, int N, int K, int laid) {
    uint8_t *q = malloc((size_t)64 * K);
    if (!q) return -1;
    for (int b = 0; b < N / 64; b++) {
        uint8_t *wb = w + (size_t)b * 32 * K;
        if (laid) { memcpy(q, wb, (size_t)32 * K); stored_to_laid(q, K, wb); }
        else { laid_to_q(wb, K, q); q_to_stored(q, K, wb); }
    }
    free(q);
    return 0;
}

int lhama_int4_lay(uint8_t *w, int N, int K) { return relay4(w, N, K, 1); }

int lhama_int4_unlay(uint8_t *w, int N, int K) { return relay4(w, N, K, 0); }
