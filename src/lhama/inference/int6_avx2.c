/* The 6-bit product (lhama_int6k_gemm's arithmetic, int4_vnni.c) on AVX2 with the weights "laid" for it: the same
 * values, re-ordered in place at load (lhama_int6k_lay; lhama_int6k_unlay restores the stored order) so that one
 * 256-bit load gives 64 weights' low 4 bits and one 128-bit broadcast their high 2 bits, with no unpacking:
 *   per block of 64 rows, four sub-blocks of 16 rows (p = 0..3), each one stream per buffer:
 *   - weight (the block's 32 K bytes): sub-block p, step s of 4 inputs, 32 bytes: byte 4 l + o = the low 4 bits of
 *     row 16 p + l, input 4 s + o (low nibble) and of row 16 p + 8 + l (high nibble), l = 0..7;
 *   - hi (the block's 16 K bytes): sub-block p, step s, 16 bytes: byte t, bits 2 f, 2 f + 1 = the high 2 bits of
 *     byte b = t + 16 (f % 2) of the above, rows 16 p + l (f = 0, 1) or 16 p + 8 + l (f = 2, 3).
 * Per group of 16 inputs (Q6_K's scales: codes (K/16) int8 and one fp16 super-scale per 256 inputs and row, blocked as
 * native.blocked lays them out) the exact int32 sums (vpmaddubsw: 63 x 127 x 2 per int16, widened every 2 steps) are
 * scaled in fp32 exactly as int4_vnni.c does (same mul / fma / add per output, -ffp-contract=off): the same bits
 * (tests/inference/test_native_exact.py). Each activation row is quantised to int8 per group as there.
 * Build: with int4_avx2.c and int8_avx2.c into one library (lhama.inference.native).
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avx2_common.h"

#define G6 16     /* inputs per group */
#define SUPER6 256 /* inputs per super-scale */

/* One sub-block of 16 rows (p) of a 64-row block, M (1..4) activation rows: out[m][16 p .. 16 p + 15]. */
static inline __attribute__((always_inline)) void sub16(
        int M, const uint8_t *lw, const uint8_t *hw, const int8_t *codes, const uint16_t *supers, int p, int K,
        const int8_t *xq, const float *dx, const float *sx, uint16_t *out, int N) {
    const __m256i nib = _mm256_set1_epi8(0x0F), top2 = _mm256_set1_epi8(0x30), ones = _mm256_set1_epi16(1);
    const __m256i shl = _mm256_setr_epi32(4, 4, 4, 4, 2, 2, 2, 2), shr = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
    const int groups = K / G6;
    __m256 acc[4][2];
    for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
    for (int sb = 0; sb < K / SUPER6; sb++) {
        __m256 d[2];
        for (int j = 0; j < 2; j++) d[j] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(supers + (size_t)sb * 64 + 16 * p + 8 * j)));
        for (int gi = sb * (SUPER6 / G6); gi < (sb + 1) * (SUPER6 / G6); gi++) {
            __m256i s[4][2];
            for (int half = 0; half < 2; half++) {
                __m256i acc16[4][2];
                for (int m = 0; m < M; m++) acc16[m][0] = acc16[m][1] = _mm256_setzero_si256();
                for (int st = 0; st < 2; st++) {
                    int step = gi * 4 + half * 2 + st;
                    /* 1 KB ahead in the weights, 512 B in the high bits (measured: 2 threads, output layer 7.04 vs 8.11 ms) */
                    if (!(step & 1)) _mm_prefetch((const char *)(lw + (size_t)step * 32 + 1024), _MM_HINT_T0);
                    if (!(step & 3)) _mm_prefetch((const char *)(hw + (size_t)step * 16 + 512), _MM_HINT_T0);
                    __m256i lo = _mm256_loadu_si256((const __m256i *)(lw + (size_t)step * 32));
                    __m256i h = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(hw + (size_t)step * 16)));
                    __m256i qa = _mm256_or_si256(_mm256_and_si256(lo, nib), _mm256_and_si256(_mm256_sllv_epi32(h, shl), top2));
                    __m256i qb = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo, 4), nib),
                                                 _mm256_and_si256(_mm256_srlv_epi32(h, shr), top2));
                    for (int m = 0; m < M; m++) {
                        __m256i xb = _mm256_set1_epi32(*(const int32_t *)(xq + (size_t)m * K + (size_t)step * 4));
                        acc16[m][0] = _mm256_add_epi16(acc16[m][0], _mm256_maddubs_epi16(qa, xb));
                        acc16[m][1] = _mm256_add_epi16(acc16[m][1], _mm256_maddubs_epi16(qb, xb));
                    }
                }
                for (int m = 0; m < M; m++)
                    for (int j = 0; j < 2; j++) {
                        __m256i wide = _mm256_madd_epi16(acc16[m][j], ones);
                        s[m][j] = half ? _mm256_add_epi32(s[m][j], wide) : wide;
                    }
            }
            for (int j = 0; j < 2; j++) { /* int4_vnni.c's Q6_K-style scaling: scale = d code, offset = -32 scale */
                __m256i code = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(codes + (size_t)gi * 64 + 16 * p + 8 * j)));
                __m256 scale = _mm256_mul_ps(d[j], _mm256_cvtepi32_ps(code));
                __m256 offset = _mm256_mul_ps(_mm256_set1_ps(-32.0f), scale);
                for (int m = 0; m < M; m++) {
                    __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(s[m][j]), _mm256_mul_ps(scale, _mm256_set1_ps(dx[m * groups + gi])));
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

static void sub16_rows(int M, const uint8_t *lw, const uint8_t *hw, const int8_t *codes, const uint16_t *supers, int p,
                       int K, const int8_t *xq, const float *dx, const float *sx, uint16_t *out, int N) {
    switch (M) { /* constant M: the accumulators stay in registers */
    case 1: sub16(1, lw, hw, codes, supers, p, K, xq, dx, sx, out, N); break;
    case 2: sub16(2, lw, hw, codes, supers, p, K, xq, dx, sx, out, N); break;
    case 3: sub16(3, lw, hw, codes, supers, p, K, xq, dx, sx, out, N); break;
    default: sub16(4, lw, hw, codes, supers, p, K, xq, dx, sx, out, N); break;
    }
}

struct int6_ctx { int rows, K, N; const uint8_t *w, *hi; const int8_t *codes; const uint16_t *supers;
                  const int8_t *xq; const float *dx, *sx; uint16_t *out; };

static void int6_item(const void *ctx, int b) { /* one block of 64 output rows, for every activation row */
    const struct int6_ctx *c = ctx;
    int groups = c->K / G6;
    const uint8_t *w = c->w + (size_t)b * 32 * c->K, *hi = c->hi + (size_t)b * 16 * c->K;
    const int8_t *codes = c->codes + (size_t)b * 64 * groups;
    const uint16_t *supers = c->supers + (size_t)b * 64 * (c->K / SUPER6);
    for (int p = 0; p < 4; p++)
        for (int m0 = 0; m0 < c->rows; m0 += 4) /* the sub-block's weights stay in L2 for the next four rows */
            sub16_rows(c->rows - m0 < 4 ? c->rows - m0 : 4, w + (size_t)p * 8 * c->K, hi + (size_t)p * 4 * c->K, codes,
                       supers, p, c->K, c->xq + (size_t)m0 * c->K, c->dx + m0 * groups, c->sx + m0 * groups,
                       c->out + (size_t)m0 * c->N + (size_t)b * 64, c->N);
}

/* out (M, N) bf16 = x (M, K) bf16 times laid 6-bit weights (w, hi: lhama_int6k_lay) with blocked Q6_K scales (codes
   (N/64, K/16, 64) int8, supers (N/64, K/256, 64) fp16): int4_vnni.c's lhama_int6k_gemm, the same bits. N a multiple
   of 64, K of 256, g 16. Returns 0, -1 when scratch allocation fails, -2 for another group size. */
int lhama_int6k_gemm_laid(const uint16_t *x, const uint8_t *w, const uint8_t *hi, const int8_t *codes,
                          const uint16_t *supers, uint16_t *out, int M, int K, int N, int g, int threads) {
    if (g != G6 || K % SUPER6) return -2;
    int groups = K / G6;
    int8_t *xq = aligned_alloc(64, (size_t)((M * K + 63) / 64) * 64);
    float *dx = malloc(sizeof(float) * groups * 2 * M);
    if (!xq || !dx) { free(xq); free(dx); return -1; }
    float *sx = dx + groups * M;
    for (int m = 0; m < M; m++) quantize_row(x + (size_t)m * K, K, G6, xq + (size_t)m * K, dx + m * groups, sx + m * groups);
    struct int6_ctx c = {M, K, N, w, hi, codes, supers, xq, dx, sx, out};
    parallel_items(int6_item, &c, N / 64, threads);
    free(xq);
    free(dx);
    return 0;
}

/* The stored order (int4_vnni.c's lhama_int6k_gemm: PyTorch's AVX2 int4 packing, 32-row blocks, for the low 4 bits;
   hi (N/64, K/4, 64) in the VNNI kernel's lane order) <-> the laid order, one 64-row block at a time through q (K, 64):
   q[k][r] = the 6-bit value of row r, input k (input-major: every pass below reads and writes nearby bytes). */
static void stored_q(const uint8_t *w, const uint8_t *hi, int K, uint8_t *q) {
    for (int k = 0; k < K; k++)
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 16; j++) {
                uint8_t byte = w[(size_t)h * 16 * K + (size_t)16 * k + j];
                q[(size_t)k * 64 + 32 * h + j] = byte & 15;
                q[(size_t)k * 64 + 32 * h + 16 + j] = byte >> 4;
            }
    for (int k = 0; k < K; k++)
        for (int r = 0; r < 64; r++) {
            int rr = r % 16;
            uint8_t byte = hi[(size_t)(k / 4) * 64 + 16 * (r / 16) + 4 * (rr % 4) + k % 4];
            q[(size_t)k * 64 + r] |= (uint8_t)(((byte >> (2 * (rr / 4))) & 3) << 4);
        }
}

static void laid_q(const uint8_t *q, int K, uint8_t *w, uint8_t *hi) {
    memset(hi, 0, (size_t)16 * K);
    for (int p = 0; p < 4; p++)
        for (int s = 0; s < K / 4; s++)
            for (int b = 0; b < 32; b++) {
                int l = b / 4, o = b % 4;
                uint8_t qa = q[(size_t)(4 * s + o) * 64 + 16 * p + l], qb = q[(size_t)(4 * s + o) * 64 + 16 * p + 8 + l];
                w[(size_t)p * 8 * K + (size_t)s * 32 + b] = (uint8_t)((qa & 15) | (qb & 15) << 4);
                uint8_t *t = hi + (size_t)p * 4 * K + (size_t)s * 16 + b % 16;
                *t |= (uint8_t)((qa >> 4) << (2 * (b / 16)) | (qb >> 4) << (2 * (2 + b / 16)));
            }
}

static void laid_to_q(const uint8_t *w, const uint8_t *hi, int K, uint8_t *q) {
    for (int p = 0; p < 4; p++)
        for (int s = 0; s < K / 4; s++)
            for (int b = 0; b < 32; b++) {
                int l = b / 4, o = b % 4;
                uint8_t byte = w[(size_t)p * 8 * K + (size_t)s * 32 + b], t = hi[(size_t)p * 4 * K + (size_t)s * 16 + b % 16];
                q[(size_t)(4 * s + o) * 64 + 16 * p + l] = (uint8_t)((byte & 15) | ((t >> (2 * (b / 16))) & 3) << 4);
                q[(size_t)(4 * s + o) * 64 + 16 * p + 8 + l] = (uint8_t)((byte >> 4) | ((t >> (2 * (2 + b / 16))) & 3) << 4);
            }
}

static void q_to_stored(const uint8_t *q, int K, uint8_t *w, uint8_t *hi) {
    for (int k = 0; k < K; k++)
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 16; j++)
                w[(size_t)h * 16 * K + (size_t)16 * k + j] =
                    (uint8_t)((q[(size_t)k * 64 + 32 * h + j] & 15) | (q[(size_t)k * 64 + 32 * h + 16 + j] & 15) << 4);
    memset(hi, 0, (size_t)16 * K);
    for (int k = 0; k < K; k++)
        for (int r = 0; r < 64; r++) {
            int rr = r % 16;
            hi[(size_t)(k / 4) * 64 + 16 * (r / 16) + 4 * (rr % 4) + k % 4] |= (uint8_t)((q[(size_t)k * 64 + r] >> 4) << (2 * (rr / 4)));
        }
}

/* Re-orders N rows (a multiple of 64) of 6-bit weights in place: laid = 1 stored -> laid, 0 laid -> stored.
   Returns 0, or -1 when scratch allocation fails (nothing changed). */
static int relay(uint8_t *w, uint8_t *hi, int N, int K, int laid) {
    uint8_t *q = malloc((size_t)64 * K);
    if (!q) return -1;
    for (int b = 0; b < N / 64; b++) {
        uint8_t *wb = w + (size_t)b * 32 * K, *hb = hi + (size_t)b * 16 * K;
        if (laid) { stored_q(wb, hb, K, q); laid_q(q, K, wb, hb); }
        else { laid_to_q(wb, hb, K, q); q_to_stored(q, K, wb, hb); }
    }
    free(q);
    return 0;
}

int lhama_int6k_lay(uint8_t *w, uint8_t *hi, int N, int K) { return relay(w, hi, N, K, 1); }

int lhama_int6k_unlay(uint8_t *w, uint8_t *hi, int N, int K) { return relay(w, hi, N, K, 0); }
