/* The AVX2 port of int4_vnni.c, for CPUs without AVX512 (e.g. AMD Zen 3): the same entry points, the same scale
 * layouts (bf16 pairs; k-scales; 6-bit high bits; int8 rows), the 4-bit weights as PyTorch packs them here (below),
 * and the same arithmetic, step for step, so its outputs are the VNNI kernel's bits:
 *   - activations quantised exactly as there (int8 per group of g, absmax / 127; int16 per row for int8 weights);
 *   - the integer sums are exact in both (vpdpbusd there; vpmaddubsw + vpmaddwd here, no saturation: a 4-bit or 6-bit
 *     weight times |x| <= 127 gives pairs <= 16002; int16 partial sums are widened before they could reach 2^15);
 *   - the fp32 scaling is the same sequence of mul / fma / add per output lane (compiled with -ffp-contract=off)
 *     (tests/inference/test_native_exact.py). The int8 product (lhama_int8_gemm) is in int8_avx2.c, linked with this.
 * Inside a block of 64 rows, four inputs are interleaved so that each 32-bit lane holds one row's four 4-bit values
 * (see block64): the 6-bit layout's high bits then lie in the same bytes (shifted by 2 d), and the int32 sums are put
 * back in row order once per group. The 4-bit weights are read in PyTorch's AVX2 packing (blocks of 32 rows), the one
 * _convert_weight_to_int4pack_for_cpu writes on a CPU without AVX512.
 * Work sharing: an OpenMP loop over blocks of rows (the VNNI kernel's `pool` option is accepted and ignored).
 * Build: gcc -O3 -mavx2 -mfma -mf16c -ffp-contract=off -fopenmp -shared -fPIC.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

#define KSUPER 256 /* inputs per super-scale of the k-scales layouts */

#include "avx2_common.h"

/* A block's scales, each pointer at the block's first row (NULL where the layout has none): int4_vnni.c's, or "blocked":
   the same arrays with their row axis N split as (N/64, ..., 64), so that a block of 64 rows reads each array as one
   sequential stream (ld = 64) instead of one line per group from rows N apart (ld = N). */
struct scales { const uint16_t *sz; const uint8_t *codes; const uint32_t *highs; const uint16_t *supers; const uint8_t *hi;
                int blocked; const uint8_t *ks; };

/* k-scales as "records" (ks; native.kscale_records): per block of 64 rows and super-block of KSUPER inputs, d and dmin
   (64 fp16 each), then per group the 6-bit sc and m codes already put together (64 bytes each): one stream per block
   for all of a group's scales, and no bit assembly per group (the same values: the same bits). */
#define KS_DMIN 128
#define KS_CODES 256
static inline size_t ks_record(int g) { return KS_CODES + (size_t)128 * (KSUPER / g); }

/* A super-block's k-scale parts for rows 8 c .. 8 c + 7 (c = 0..7): d, 0 - dmin (fp32) and the codes' top bits, read
   and converted once per KSUPER inputs instead of once per group (the same values). */
struct super_parts { __m256 d[8], nd[8]; __m256i top[8]; };

static inline void super_scales(const struct scales *sc_, int gi, int K, int N, int g, struct super_parts *sp) {
    if (sc_->blocked) N = 64;
    size_t sb = (size_t)(gi * g / KSUPER);
    if (sc_->ks) {
        const uint8_t *rec = sc_->ks + sb * ks_record(g);
        for (int c = 0; c < 8; c++) {
            sp->d[c] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + 16 * c)));
            __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + KS_DMIN + 16 * c)));
            sp->nd[c] = _mm256_sub_ps(_mm256_setzero_ps(), dmin);
        }
        return;
    }
    for (int c = 0; c < 8; c++) {
        sp->top[c] = _mm256_loadu_si256((const __m256i *)(sc_->highs + sb * N + 8 * c));
        sp->d[c] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc_->supers + sb * N + 8 * c)));
        __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc_->supers + ((size_t)K / KSUPER + sb) * N + 8 * c)));
        sp->nd[c] = _mm256_sub_ps(_mm256_setzero_ps(), dmin);
    }
}

/* (scale, offset) of rows 8 c .. 8 c + 7 for group gi: int4_vnni.c's formulas on 8 lanes (k-scales: with the group's
   super-block parts sp). */
static inline void group_scales(const struct scales *sc_, const struct super_parts *sp, int c, int gi, int K, int N,
                                int g, __m256 *scale, __m256 *offset) {
    if (sc_->blocked) N = 64;
    if (sc_->ks) { /* records: sc and m as bytes */
        const uint8_t *cp = sc_->ks + (size_t)(gi * g / KSUPER) * ks_record(g) + KS_CODES + 128 * ((gi * g % KSUPER) / g);
        __m256i code = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(cp + 8 * c)));
        __m256i mcode = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(cp + 64 + 8 * c)));
        *scale = _mm256_mul_ps(sp->d[c], _mm256_cvtepi32_ps(code));
        *offset = _mm256_mul_ps(sp->nd[c], _mm256_cvtepi32_ps(mcode));
    } else if (sc_->highs) { /* Q4_K-style: scale = d sc, offset = -dmin m, sc and m 6-bit (low 4 bits in codes, top 2 in highs) */
        __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(sc_->codes + (size_t)gi * N + 8 * c)));
        __m256i top = _mm256_srl_epi32(sp->top[c], _mm_cvtsi32_si128(4 * ((gi * g % KSUPER) / g)));
        __m256i six = _mm256_set1_epi32(0x30);
        __m256i code = _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(15)),
                                       _mm256_and_si256(_mm256_slli_epi32(top, 4), six));
        __m256i mcode = _mm256_or_si256(_mm256_srli_epi32(lo, 4), _mm256_and_si256(_mm256_slli_epi32(top, 2), six));
        *scale = _mm256_mul_ps(sp->d[c], _mm256_cvtepi32_ps(code));
        *offset = _mm256_mul_ps(sp->nd[c], _mm256_cvtepi32_ps(mcode));
    } else if (sc_->codes) { /* Q6_K-style: scale = d code (signed), offset = -32 scale */
        __m256i code = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(sc_->codes + (size_t)gi * N + 8 * c)));
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc_->supers + (size_t)(gi * g / KSUPER) * N + 8 * c)));
        *scale = _mm256_mul_ps(d, _mm256_cvtepi32_ps(code));
        *offset = _mm256_mul_ps(_mm256_set1_ps(-32.0f), *scale);
    } else { /* (scale, zero) bf16 pairs: offset = zero - 8 scale */
        __m256i pair = _mm256_loadu_si256((const __m256i *)(sc_->sz + ((size_t)gi * N) * 2 + 16 * c));
        *scale = _mm256_castsi256_ps(_mm256_slli_epi32(pair, 16));
        __m256 zero = _mm256_castsi256_ps(_mm256_and_si256(pair, _mm256_set1_epi32((int)0xFFFF0000u)));
        *offset = _mm256_fnmadd_ps(_mm256_set1_ps(8.0f), *scale, zero);
    }
}

/* The next block's scale lines for group gi (64 rows on): a block reads each group's scales from another row of the
   (K/g, N) arrays, more streams than the hardware prefetcher follows (measured: the 151,936-row output layer read
   4.3 GB/s without these, against 16 GB/s for a plain sum, 1 thread). Prefetches past the end do not fault. */
static inline void prefetch_scales(const struct scales *sc_, int gi, int K, int N, int g) {
    if (sc_->blocked) return; /* sequential streams: the hardware prefetcher follows them */
    if (sc_->sz) {
        const char *p = (const char *)(sc_->sz + ((size_t)gi * N + 64) * 2);
        for (int line = 0; line < 256; line += 64) _mm_prefetch(p + line, _MM_HINT_T1);
        return;
    }
    _mm_prefetch((const char *)(sc_->codes + (size_t)gi * N + 64), _MM_HINT_T1);
    if (gi * g % KSUPER) return;  /* the super-block's lines: once per KSUPER inputs */
    size_t sb = (size_t)(gi * g / KSUPER);
    for (int half = 0; half < (sc_->highs ? 2 : 1); half++)
        _mm_prefetch((const char *)(sc_->supers + ((size_t)half * K / KSUPER + sb) * N + 64), _MM_HINT_T1);
    if (sc_->highs)
        for (int line = 0; line < 256; line += 64) _mm_prefetch((const char *)(sc_->highs + sb * N + 64) + line, _MM_HINT_T1);
}

/* One block of 64 rows for M (1..4) activation rows, in PyTorch's AVX2 packing (BLOCK_N = 32: per 32 rows and input,
   16 bytes, byte j = row j (low nibble) and row 16 + j (high nibble)); rows 0..31 and 32..63 are two such blocks, taken
   as the two 128-bit lanes L. Per step of 4 inputs the 4 x 2 x 16 bytes become 4 registers D[d] whose 32-bit lane
   4 L + i holds raw byte 4 d + i of the four inputs: low nibbles row 32 L + 4 d + i, high nibbles row 32 L + 16 + 4 d + i.
   maddubs sums input pairs in int16 (kept there up to `flush` steps), madd with ones makes int32 row sums. */
static inline __attribute__((always_inline)) void block64(
        int M, const uint8_t *w, const struct scales *sc_, int K, int N, int g,
        const int8_t *xq, const float *dx, const float *sx, uint16_t *out) {
    const uint8_t *hi = sc_->hi, *w2 = w + (size_t)16 * K;
    const __m256i nib = _mm256_set1_epi8(0x0F), top2 = _mm256_set1_epi8(0x30), ones = _mm256_set1_epi16(1);
    const int flush = hi ? 2 : 8; /* steps per int16 partial sum: 2 (6-bit: 4 x 63 x 127) or 8 (4-bit: 16 x 15 x 127) */
    const int groups = K / g;
    __m256 acc[4][8];
    struct super_parts sp;
    for (int m = 0; m < M; m++)
        for (int c = 0; c < 8; c++) acc[m][c] = _mm256_setzero_ps();
    for (int start = 0, gi = 0; start < K; start += g, gi++) {
        __m256i s[4][8], p[4][8];
        for (int m = 0; m < M; m++)
            for (int r = 0; r < 8; r++) s[m][r] = p[m][r] = _mm256_setzero_si256();
        prefetch_scales(sc_, gi, K, N, g);
        if ((sc_->highs || sc_->ks) && gi * g % KSUPER == 0) super_scales(sc_, gi, K, N, g, &sp);
        for (int k = start, step = 1; k < start + g; k += 4, step++) {
            _mm_prefetch((const char *)(w + (size_t)32 * K + 16 * k), _MM_HINT_T1);  /* the next block's line, into L2 */
            _mm_prefetch((const char *)(w2 + (size_t)32 * K + 16 * k), _MM_HINT_T1);
            if (hi) _mm_prefetch((const char *)(hi + (size_t)16 * K + (size_t)(k / 4) * 64), _MM_HINT_T1);
            __m256i b[4];
            for (int t = 0; t < 4; t++)
                b[t] = _mm256_loadu2_m128i((const __m128i *)(w2 + 16 * (k + t)), (const __m128i *)(w + 16 * (k + t)));
            __m256i a0 = _mm256_unpacklo_epi8(b[0], b[1]), a1 = _mm256_unpackhi_epi8(b[0], b[1]);
            __m256i c0 = _mm256_unpacklo_epi8(b[2], b[3]), c1 = _mm256_unpackhi_epi8(b[2], b[3]);
            __m256i D[4] = {_mm256_unpacklo_epi16(a0, c0), _mm256_unpackhi_epi16(a0, c0),
                            _mm256_unpacklo_epi16(a1, c1), _mm256_unpackhi_epi16(a1, c1)};
            __m256i q[8];
            for (int d = 0; d < 4; d++) {
                q[d] = _mm256_and_si256(D[d], nib);
                q[4 + d] = _mm256_and_si256(_mm256_srli_epi16(D[d], 4), nib);
            }
            if (hi) { /* the high 2 bits of row 16 j + 4 d + i (j = 0..3), input o: byte 16 j + 4 i + o, bits 2 d */
                const uint8_t *hp = hi + (size_t)(k / 4) * 64;  /* low nibbles: j = 0, 2; high: j = 1, 3 */
                __m256i h[2] = {_mm256_loadu2_m128i((const __m128i *)(hp + 32), (const __m128i *)hp),
                                _mm256_loadu2_m128i((const __m128i *)(hp + 48), (const __m128i *)(hp + 16))};
                for (int half = 0; half < 2; half++) {
                    __m256i t[4] = {_mm256_slli_epi16(h[half], 4), _mm256_slli_epi16(h[half], 2), h[half],
                                    _mm256_srli_epi16(h[half], 2)};
                    for (int d = 0; d < 4; d++) q[4 * half + d] = _mm256_or_si256(q[4 * half + d], _mm256_and_si256(t[d], top2));
                }
            }
            for (int m = 0; m < M; m++) {
                __m256i xb = _mm256_set1_epi32(*(const int32_t *)(xq + (size_t)m * K + k));
                for (int r = 0; r < 8; r++) p[m][r] = _mm256_add_epi16(p[m][r], _mm256_maddubs_epi16(q[r], xb));
            }
            if (step % flush == 0 || k + 4 == start + g)
                for (int m = 0; m < M; m++)
                    for (int r = 0; r < 8; r++) {
                        s[m][r] = _mm256_add_epi32(s[m][r], _mm256_madd_epi16(p[m][r], ones));
                        p[m][r] = _mm256_setzero_si256();
                    }
        }
        for (int c = 0; c < 8; c++) { /* rows 8 c..8 c + 7: lane c / 4 of registers r, r + 1 */
            int r = (c % 4 >= 2 ? 4 : 0) + 2 * (c % 2), lane = c / 4;
            __m256 scale, offset;
            group_scales(sc_, &sp, c, gi, K, N, g, &scale, &offset);
            for (int m = 0; m < M; m++) {
                __m256i sum = lane ? _mm256_permute2x128_si256(s[m][r], s[m][r + 1], 0x31)
                                   : _mm256_permute2x128_si256(s[m][r], s[m][r + 1], 0x20);
                __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(scale, _mm256_set1_ps(dx[m * groups + gi])));
                acc[m][c] = _mm256_add_ps(acc[m][c], _mm256_fmadd_ps(offset, _mm256_set1_ps(sx[m * groups + gi]), dot));
            }
        }
    }
    for (int m = 0; m < M; m++)
        for (int c = 0; c < 8; c++) {
            float v[8];
            _mm256_storeu_ps(v, acc[m][c]);
            for (int r = 0; r < 8; r++) out[(size_t)m * N + 8 * c + r] = float_to_bf16(v[r]);
        }
}

static void block64_rows(int M, const uint8_t *w, const struct scales *sc_, int K, int N, int g, const int8_t *xq,
                         const float *dx, const float *sx, uint16_t *out) {
    if (g == 32) { /* lhama's plans' group size as a constant: no integer division per group (1.05-1.15x) */
        switch (M) {
        case 1: block64(1, w, sc_, K, N, 32, xq, dx, sx, out); return;
        case 2: block64(2, w, sc_, K, N, 32, xq, dx, sx, out); return;
        case 3: block64(3, w, sc_, K, N, 32, xq, dx, sx, out); return;
        default: block64(4, w, sc_, K, N, 32, xq, dx, sx, out); return;
        }
    }
    switch (M) { /* constant M: the accumulators stay in registers */
    case 1: block64(1, w, sc_, K, N, g, xq, dx, sx, out); break;
    case 2: block64(2, w, sc_, K, N, g, xq, dx, sx, out); break;
    case 3: block64(3, w, sc_, K, N, g, xq, dx, sx, out); break;
    default: block64(4, w, sc_, K, N, g, xq, dx, sx, out); break;
    }
}

struct int4_ctx { int rows, K, N, g; const uint8_t *w; struct scales sc; const int8_t *xq; const float *dx, *sx; uint16_t *out; };

static void int4_item(const void *p, int b) { /* one block of 64 output rows, for every activation row */
    const struct int4_ctx *c = p;
    int groups = c->K / c->g;
    size_t r = (size_t)b * 64, supers = (size_t)c->K / KSUPER;
    /* blocked: each array's block b starts after b blocks of (its rows) x 64 entries */
    size_t rc = c->sc.blocked ? r * groups : r, rh = c->sc.blocked ? r * supers : r;
    size_t rs = c->sc.blocked ? r * supers * (c->sc.highs ? 2 : 1) : r;
    struct scales sc = {c->sc.sz ? c->sc.sz + rc * 2 : NULL, c->sc.codes ? c->sc.codes + rc : NULL,
                        c->sc.highs ? c->sc.highs + rh : NULL, c->sc.supers ? c->sc.supers + rs : NULL,
                        c->sc.hi ? c->sc.hi + (size_t)b * 16 * c->K : NULL, c->sc.blocked,
                        c->sc.ks ? c->sc.ks + (size_t)b * supers * ks_record(c->g) : NULL};
    for (int m0 = 0; m0 < c->rows; m0 += 4)
        block64_rows(c->rows - m0 < 4 ? c->rows - m0 : 4, c->w + (size_t)b * 32 * c->K, &sc, c->K, c->N, c->g,
                     c->xq + (size_t)m0 * c->K, c->dx + m0 * groups, c->sx + m0 * groups,
                     c->out + (size_t)m0 * c->N + (size_t)b * 64);
}

static int int4_gemm(const uint16_t *x, const uint8_t *w, struct scales sc, uint16_t *out, int M, int K, int N, int g,
                     int threads) {
    int groups = K / g;
    int8_t *xq = aligned_alloc(64, (size_t)((M * K + 63) / 64) * 64);
    float *dx = malloc(sizeof(float) * groups * 2 * M);
    if (!xq || !dx) { free(xq); free(dx); return -1; }
    float *sx = dx + groups * M;
    for (int m = 0; m < M; m++)
        quantize_row(x + (size_t)m * K, K, g, xq + (size_t)m * K, dx + m * groups, sx + m * groups);
    struct int4_ctx c = {M, K, N, g, w, sc, xq, dx, sx, out};
    parallel_items(int4_item, &c, N / 64, threads);
    free(xq);
    free(dx);
    return 0;
}

/* The entry points of int4_vnni.c (layouts documented there). */
int lhama_int4_gemm(const uint16_t *x, const uint8_t *w, const uint16_t *sz, uint16_t *out, int M, int K, int N, int g,
                    int threads, int pool) {
    (void)pool;
    return int4_gemm(x, w, (struct scales){sz, NULL, NULL, NULL, NULL, 0, NULL}, out, M, K, N, g, threads);
}

/* The same products with blocked scales (struct scales): sz (N/64, K/g, 64, 2); codes (N/64, K/g, 64), highs
   (N/64, K/256, 64), supers (N/64, 2, K/256, 64) for k-scales, (N/64, K/256, 64) for 6-bit. Same bits. */
int lhama_int4_gemm_blocked(const uint16_t *x, const uint8_t *w, const uint16_t *sz, uint16_t *out, int M, int K, int N,
                            int g, int threads) {
    return int4_gemm(x, w, (struct scales){sz, NULL, NULL, NULL, NULL, 1, NULL}, out, M, K, N, g, threads);
}

int lhama_int4k_gemm_blocked(const uint16_t *x, const uint8_t *w, const uint8_t *codes, const uint32_t *highs,
                             const uint16_t *supers, uint16_t *out, int M, int K, int N, int g, int threads) {
    return int4_gemm(x, w, (struct scales){NULL, codes, highs, supers, NULL, 1, NULL}, out, M, K, N, g, threads);
}

/* k-scales as records (ks: (N/64, K/KSUPER, ks_record(g)) bytes, native.kscale_records). Same bits. */
int lhama_int4k_gemm_records(const uint16_t *x, const uint8_t *w, const uint8_t *ks, uint16_t *out, int M, int K, int N,
                             int g, int threads) {
    return int4_gemm(x, w, (struct scales){NULL, NULL, NULL, NULL, NULL, 1, ks}, out, M, K, N, g, threads);
}

int lhama_int6k_gemm_blocked(const uint16_t *x, const uint8_t *w, const uint8_t *hi, const int8_t *codes,
                             const uint16_t *supers, uint16_t *out, int M, int K, int N, int g, int threads) {
    return int4_gemm(x, w, (struct scales){NULL, (const uint8_t *)codes, NULL, supers, hi, 1, NULL}, out, M, K, N, g, threads);
}

int lhama_int4k_gemm(const uint16_t *x, const uint8_t *w, const uint8_t *codes, const uint32_t *highs,
                     const uint16_t *supers, uint16_t *out, int M, int K, int N, int g, int threads, int pool) {
    (void)pool;
    return int4_gemm(x, w, (struct scales){NULL, codes, highs, supers, NULL, 0, NULL}, out, M, K, N, g, threads);
}

int lhama_int6k_gemm(const uint16_t *x, const uint8_t *w, const uint8_t *hi, const int8_t *codes, const uint16_t *supers,
                     uint16_t *out, int M, int K, int N, int g, int threads, int pool) {
    (void)pool;
    return int4_gemm(x, w, (struct scales){NULL, (const uint8_t *)codes, NULL, supers, hi, 0, NULL}, out, M, K, N, g, threads);
}

int lhama_int4_version(void) { return 10; }
