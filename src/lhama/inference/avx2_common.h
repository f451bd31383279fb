/* Helpers shared by the AVX2 kernel files (int4_avx2.c, int8_avx2.c, int6_avx2.c): the OpenMP loop over work items,
 * the bf16/fp32 conversions and reductions and the int8 activation rows, each file's copy of the same bits. Static inline: each file compiles alone.
 * The library's name keeps the sha256 of this header too (lhama.inference.native). */
#ifndef LHAMA_AVX2_COMMON_H
#define LHAMA_AVX2_COMMON_H
#include <immintrin.h>
#include <stdint.h>

typedef void (*item_fn)(const void *ctx, int item);

static void parallel_items(item_fn fn, const void *ctx, int items, int threads) {
    if (threads <= 1 || items <= 1) {
        for (int i = 0; i < items; i++) fn(ctx, i);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int i = 0; i < items; i++) fn(ctx, i);
}

static inline uint16_t float_to_bf16(float f) {
    union { float f; uint32_t u; } c = {f};
    return (uint16_t)((c.u + 0x7FFF + ((c.u >> 16) & 1)) >> 16);
}

static inline __m256 load8(const uint16_t *x) { /* 8 bf16 -> fp32 */
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)x)), 16));
}

static inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

static inline float hmax8(__m256 v) { /* max is exact: any order gives the VNNI kernel's value */
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 0x4E));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 0xB1));
    return _mm_cvtss_f32(m);
}

static inline int hsum8_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_extracti128_si256(v, 1), _mm256_castsi256_si128(v));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* x (K) bf16 -> xq (K) int8, dx (K/g), sx (K/g) = dx * sum(xq): int4_vnni.c's quantize_row
   (the int4 and 6-bit products' activations). */
static inline void quantize_row(const uint16_t *x, int K, int g, int8_t *xq, float *dx, float *sx) {
    for (int start = 0, gi = 0; start < K; start += g, gi++) {
        __m256 vmax = _mm256_setzero_ps();
        for (int k = start; k < start + g; k += 8) vmax = _mm256_max_ps(vmax, abs8(load8(x + k)));
        float amax = hmax8(vmax);
        __m256 inv = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        __m256i sum = _mm256_setzero_si256();
        for (int k = start; k < start + g; k += 8) {
            __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(load8(x + k), inv)); /* |q| <= 127 */
            sum = _mm256_add_epi32(sum, q);
            __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            _mm_storel_epi64((__m128i *)(xq + k), _mm_packs_epi16(w, w));
        }
        dx[gi] = amax / 127.0f;
        sx[gi] = dx[gi] * (float)hsum8_epi32(sum);
    }
}

#endif
