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
#define _GNU_SOURCE
#include <immintrin.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- Work sharing: a products' items (blocks of output rows) over `threads` threads.
 * pool = 0: an OpenMP loop (static split, ending in a barrier: every thread must have run its
 * share, so on a busy machine the caller waits for a descheduled thread's whole time slice).
 * pool = 1: the kernel's own workers claim items one at a time from an atomic ticket; the caller
 * claims too and then waits only for items a worker has claimed and not finished. A worker the OS
 * has not scheduled claims nothing and is not waited for. Idle workers spin ~0.1 ms, then sleep on a
 * futex. */
#define KSUPER 256  /* inputs per fp32 super-scale of the k-scales layout (lhama_int4k_gemm) */

typedef void (*item_fn)(const void *ctx, int item);
struct job { item_fn fn; const void *ctx; int items, threads; };
static struct job jobs[2];                /* double-buffered: a stale worker never reads a job being written */
static _Atomic uint64_t ticket;           /* generation << 32 | next item */
static _Atomic int done_items;            /* items finished in the current generation */
static _Atomic uint32_t wake_seq;         /* futex word, bumped by each new job */
static _Atomic int sleepers;
static int started;                       /* workers started (by this process) */
static pid_t pool_pid;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static int try_claim(int worker) {        /* runs one item if one is free; returns 1 if it did */
    uint64_t s = atomic_load(&ticket);
    uint32_t gen = (uint32_t)(s >> 32), next = (uint32_t)s;
    const struct job *j = &jobs[gen & 1];
    if (worker >= j->threads - 1 || next >= (uint32_t)j->items) return 0;
    if (!atomic_compare_exchange_strong(&ticket, &s, s + 1)) return 1;  /* lost a race: look again */
    j->fn(j->ctx, (int)next);          /* the job cannot change before this item is counted done */
    atomic_fetch_add(&done_items, 1);
    return 1;
}

static void *worker_main(void *arg) {
    int worker = (int)(intptr_t)arg;
    for (;;) {
        int spins = 0;
        while (spins < 4000) spins = try_claim(worker) ? 0 : (_mm_pause(), spins + 1);
        uint32_t seen = atomic_load(&wake_seq);
        atomic_fetch_add(&sleepers, 1);
        if (!try_claim(worker)) syscall(SYS_futex, &wake_seq, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
        atomic_fetch_sub(&sleepers, 1);
    }
    return NULL;
}

static int ensure_workers(int count) {    /* returns the workers running (may be fewer: no threads) */
    pthread_mutex_lock(&pool_lock);
    if (pool_pid != getpid()) { started = 0; pool_pid = getpid(); }  /* a forked child has no workers */
    while (started < count && started < 63) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, worker_main, (void *)(intptr_t)started);
        pthread_attr_destroy(&attr);
        if (failed) break;
        started++;
    }
    int have = started;
    pthread_mutex_unlock(&pool_lock);
    return have;
}

static void parallel_items(item_fn fn, const void *ctx, int items, int threads, int pool) {
    if (threads <= 1 || items <= 1) {
        for (int i = 0; i < items; i++) fn(ctx, i);
        return;
    }
    if (!pool) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int i = 0; i < items; i++) fn(ctx, i);
        return;
    }
    static atomic_flag in_use = ATOMIC_FLAG_INIT;  /* one caller at a time; another one runs serially */
    if (atomic_flag_test_and_set(&in_use)) {
        for (int i = 0; i < items; i++) fn(ctx, i);
        return;
    }
    int workers = ensure_workers(threads - 1);
    uint32_t gen = (uint32_t)(atomic_load(&ticket) >> 32) + 1;
    jobs[gen & 1] = (struct job){fn, ctx, items, workers + 1 < threads ? workers + 1 : threads};
    atomic_store(&done_items, 0);
    atomic_store(&ticket, (uint64_t)gen << 32);
    atomic_fetch_add(&wake_seq, 1);
    if (atomic_load(&sleepers) > 0) syscall(SYS_futex, &wake_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    for (;;) {
        uint64_t s = atomic_load(&ticket);
        if ((uint32_t)s >= (uint32_t)items) break;
        if (atomic_compare_exchange_strong(&ticket, &s, s + 1)) {
            fn(ctx, (int)(uint32_t)s);
            atomic_fetch_add(&done_items, 1);
        }
    }
    for (int spins = 0; atomic_load(&done_items) < items; spins++) {  /* items claimed by workers, running */
        if (spins < 2000) _mm_pause(); else sched_yield();
    }
    atomic_flag_clear(&in_use);
}

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
/* A block's scales, each pointer already at the block's first row (NULL where the layout has none):
   bf16 pairs (sz); or Q4_K-style k-scales (codes: low 4 bits of sc and m, highs: their top 2 bits,
   supers: fp16 d, dmin); or Q6_K-style (codes: int8, supers: fp16 d; hi: the weights' top 2 bits). */
struct scales { const uint16_t *sz; const uint8_t *codes; const uint32_t *highs; const uint16_t *supers; const uint8_t *hi; };

static inline __attribute__((always_inline)) void block64(
        int M, const uint8_t *w, const struct scales *sc_, int K, int N, int g,
        const int8_t *xq, const float *dx, const float *sx, uint16_t *out) {
    const uint8_t *hi = sc_->hi;
    const __m512i nib = _mm512_set1_epi8(0x0F), two = _mm512_set1_epi8(0x03);
    /* 6-bit: the 16-bit lanes of 128-bit lane i shift the broadcast high-bit bytes right by 2 i */
    const __m512i shifts = _mm512_set_epi64(0x0006000600060006, 0x0006000600060006, 0x0004000400040004,
                                            0x0004000400040004, 0x0002000200020002, 0x0002000200020002, 0, 0);
    /* lanes of rows 0..15 take bytes r, 32 + r of the first register (k, k + 1) and r, 32 + r of
       the second (k + 2, k + 3); rows 16..31 the same 16 further on. */
    uint8_t i0[64], i1[64];
    for (int r = 0; r < 16; r++) {
        int b0[4] = {r, 32 + r, 64 + r, 96 + r};
        for (int j = 0; j < 4; j++) { i0[4 * r + j] = (uint8_t)b0[j]; i1[4 * r + j] = (uint8_t)(b0[j] + 16); }
    }
    const __m512i idx0 = _mm512_loadu_si512(i0), idx1 = _mm512_loadu_si512(i1);
    const __m512i high16 = _mm512_set1_epi32((int)0xFFFF0000u), nib32 = _mm512_set1_epi32(15), three32 = _mm512_set1_epi32(3);
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
            if (hi) {  /* 6-bit: 16 bytes per register, lane 16 i + s in bits 2 i, 2 i + 1 of byte s */
                const uint8_t *hp = hi + (size_t)(k / 4) * 64;
                for (int j = 0; j < 4; j++) {
                    __m512i h = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(hp + 16 * j)));
                    h = _mm512_and_si512(_mm512_srlv_epi16(h, shifts), two);
                    q[j] = _mm512_or_si512(q[j], _mm512_slli_epi16(h, 4));
                }
            }
            for (int m = 0; m < M; m++) {
                __m512i xb = _mm512_set1_epi32(*(const int32_t *)(xq + (size_t)m * K + k));
                for (int j = 0; j < 4; j++) s[m][j] = _mm512_dpbusd_epi32(s[m][j], q[j], xb);
            }
        }
        for (int j = 0; j < 4; j++) {
            __m512 scale, offset;
            if (sc_->highs) {  /* Q4_K-style: scale = d sc, offset (the low level) = -dmin m, sc and m 6-bit */
                size_t sb = (size_t)(gi * g / KSUPER);
                __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sc_->codes + (size_t)gi * N + 16 * j)));
                __m512i top = _mm512_srl_epi32(_mm512_loadu_si512(sc_->highs + sb * N + 16 * j),
                                               _mm_cvtsi32_si128(4 * ((gi * g % KSUPER) / g)));
                __m512i code = _mm512_or_si512(_mm512_and_si512(lo, nib32), _mm512_slli_epi32(_mm512_and_si512(top, three32), 4));
                __m512i mcode = _mm512_or_si512(_mm512_srli_epi32(lo, 4),
                                                _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(top, 2), three32), 4));
                __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc_->supers + sb * N + 16 * j)));
                __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc_->supers + ((size_t)K / KSUPER + sb) * N + 16 * j)));
                scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(code));
                offset = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), dmin), _mm512_cvtepi32_ps(mcode));
            } else if (sc_->codes) {  /* Q6_K-style: scale = d code (signed), offset = -32 scale */
                __m512i code = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(sc_->codes + (size_t)gi * N + 16 * j)));
                __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc_->supers + (size_t)(gi * g / KSUPER) * N + 16 * j)));
                scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(code));
                offset = _mm512_mul_ps(_mm512_set1_ps(-32.0f), scale);
            } else {
                __m512i pair = _mm512_loadu_si512(sc_->sz + ((size_t)gi * N) * 2 + 32 * j);  /* (scale, zero) bf16 pairs */
                scale = _mm512_castsi512_ps(_mm512_slli_epi32(pair, 16));
                __m512 zero = _mm512_castsi512_ps(_mm512_and_si512(pair, high16));
                offset = _mm512_fnmadd_ps(_mm512_set1_ps(8.0f), scale, zero);  /* zero - 8 scale */
            }
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

static void block64_rows(int M, const uint8_t *w, const struct scales *sc_, int K, int N, int g, const int8_t *xq,
                         const float *dx, const float *sx, uint16_t *out) {
    switch (M) {  /* constant M: the compiler keeps the accumulators in registers */
    case 1: block64(1, w, sc_, K, N, g, xq, dx, sx, out); break;
    case 2: block64(2, w, sc_, K, N, g, xq, dx, sx, out); break;
    case 3: block64(3, w, sc_, K, N, g, xq, dx, sx, out); break;
    default: block64(4, w, sc_, K, N, g, xq, dx, sx, out); break;
    }
}

struct int4_ctx { int rows, K, N, g; const uint8_t *w; struct scales sc;
                  const int8_t *xq; const float *dx, *sx; uint16_t *out; };

static void int4_item(const void *p, int b) {  /* one block of 64 output rows, for every activation row */
    const struct int4_ctx *c = p;
    int groups = c->K / c->g;
    size_t r = (size_t)b * 64;
    struct scales sc = {c->sc.sz ? c->sc.sz + r * 2 : NULL, c->sc.codes ? c->sc.codes + r : NULL,
                        c->sc.highs ? c->sc.highs + r : NULL, c->sc.supers ? c->sc.supers + r : NULL,
                        c->sc.hi ? c->sc.hi + (size_t)b * 16 * c->K : NULL};
    for (int m0 = 0; m0 < c->rows; m0 += 4)  /* the block's weights (K/2 x 64 bytes) stay in L2 for the next four rows */
        block64_rows(c->rows - m0 < 4 ? c->rows - m0 : 4, c->w + (size_t)b * 32 * c->K, &sc, c->K, c->N, c->g,
                     c->xq + (size_t)m0 * c->K, c->dx + m0 * groups, c->sx + m0 * groups,
                     c->out + (size_t)m0 * c->N + (size_t)b * 64);
}

/* out (M, N) bf16 = x (M, K) bf16 times the packed (N, K/2) weights; N a multiple of 64, K of g
   and 4; each block of 64 weight rows is read from memory once and applied to the activation rows
   four at a time (from L2 after the first four: a batch of decode rows or a prompt does not read
   the weights once per four rows), and each row's result is the same as its own one-row product. `threads` share the row blocks (pool: see
   parallel_items). Returns 0, or -1 when scratch allocation fails. */
static int int4_gemm(const uint16_t *x, const uint8_t *w, struct scales sc, uint16_t *out, int M, int K, int N, int g,
                     int threads, int pool) {
    int groups = K / g;
    int8_t *xq = aligned_alloc(64, (size_t)((M * K + 63) / 64) * 64);
    float *dx = malloc(sizeof(float) * groups * 2 * M);
    if (!xq || !dx) { free(xq); free(dx); return -1; }
    float *sx = dx + groups * M;
    for (int m = 0; m < M; m++)
        quantize_row(x + (size_t)m * K, K, g, xq + (size_t)m * K, dx + m * groups, sx + m * groups);
    struct int4_ctx c = {M, K, N, g, w, sc, xq, dx, sx, out};
    parallel_items(int4_item, &c, N / 64, threads, pool);
    free(xq);
    free(dx);
    return 0;
}

int lhama_int4_gemm(const uint16_t *x, const uint8_t *w, const uint16_t *sz, uint16_t *out, int M, int K, int N, int g,
                    int threads, int pool) {
    return int4_gemm(x, w, (struct scales){sz, NULL, NULL, NULL, NULL}, out, M, K, N, g, threads, pool);
}

/* The same product with "k-scales" in llama.cpp's Q4_K block format (0.5 bits per weight at g = 32, against 1 for
   bf16 pairs): per group and row a 6-bit scale code sc and low code m, their low 4 bits in codes (K/g, N) uint8
   (sc in bits 0-3, m in 4-7) and their top 2 bits in highs (K/KSUPER, N) uint32 (group i of the super-block: sc's
   in bits 4 i, 4 i + 1, m's in 4 i + 2, 4 i + 3), and two fp16 super-scales d, dmin per KSUPER inputs and row,
   supers (2, K/KSUPER, N): w = d sc q - dmin m for q in 0..15. K a multiple of KSUPER and g. */
int lhama_int4k_gemm(const uint16_t *x, const uint8_t *w, const uint8_t *codes, const uint32_t *highs,
                     const uint16_t *supers, uint16_t *out, int M, int K, int N, int g, int threads, int pool) {
    return int4_gemm(x, w, (struct scales){NULL, codes, highs, supers, NULL}, out, M, K, N, g, threads, pool);
}

/* 6-bit weights q in 0..63: the low 4 bits packed as lhama_int4k_gemm's, the high 2 bits in hi (N/64, K/4, 4, 16)
   uint8 (for each block of 64 rows, step of 4 inputs and register j of rows 16 j..16 j + 15: lane t = 4 r + input
   offset in bits 2 (t / 16), 2 (t / 16) + 1 of byte t % 16), and Q6_K's scales: codes (K/g, N) int8 and one fp16
   super-scale d per KSUPER inputs and row, supers (K/KSUPER, N): w = d code (q - 32). 6.5625 bits per weight at g = 16. */
int lhama_int6k_gemm(const uint16_t *x, const uint8_t *w, const uint8_t *hi, const int8_t *codes, const uint16_t *supers,
                     uint16_t *out, int M, int K, int N, int g, int threads, int pool) {
    return int4_gemm(x, w, (struct scales){NULL, (const uint8_t *)codes, NULL, supers, hi}, out, M, K, N, g, threads, pool);
}

/* int8 weights (N, K) row-major with one scale per row (bf16), as PyTorch's _weight_int8pack_mm takes them.
   Each activation row is rounded to int16 (absmax / 16383: 15 bits, far finer than the int8 weights) and
   vpdpwssd sums 32 int8 x int16 products per instruction in int32, flushed to fp32 every 8192 inputs
   (|sum| < 2^30: no overflow): out[m, n] = scale[n] dx[m] sum_k w[n, k] xq[m, k]. Four weight rows
   at a time, up to four activation rows per pass over the weights; each row's result is the same as
   its own one-row product. */
#define INT8_FLUSH 8192
static inline __attribute__((always_inline)) void rows4_int8(
        int M, const int8_t *w, const uint16_t *scale, int K, int N, int n0, int nrows, const int16_t *xq,
        const float *dx, uint16_t *out) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int start = 0; start < K; start += INT8_FLUSH) {
        int end = start + INT8_FLUSH < K ? start + INT8_FLUSH : K;
        __m512i s[4][4];
        for (int r = 0; r < 4; r++)
            for (int m = 0; m < M; m++) s[r][m] = _mm512_setzero_si512();
        for (int k = start; k < end; k += 32) {
            __m512i xv[4];
            for (int m = 0; m < M; m++) xv[m] = _mm512_loadu_si512(xq + (size_t)m * K + k);
            for (int r = 0; r < 4; r++) {
                __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + (size_t)(n0 + (r < nrows ? r : 0)) * K + k)));
                for (int m = 0; m < M; m++) s[r][m] = _mm512_dpwssd_epi32(s[r][m], wv, xv[m]);
            }
        }
        for (int r = 0; r < 4; r++)
            for (int m = 0; m < M; m++) acc[r][m] = _mm512_add_ps(acc[r][m], _mm512_cvtepi32_ps(s[r][m]));
    }
    for (int r = 0; r < nrows; r++) {
        union { uint32_t u; float f; } sc = {(uint32_t)scale[n0 + r] << 16};
        for (int m = 0; m < M; m++)
            out[(size_t)m * N + n0 + r] = float_to_bf16(_mm512_reduce_add_ps(acc[r][m]) * (sc.f * dx[m]));
    }
}

static void rows4_int8_m(int M, const int8_t *w, const uint16_t *scale, int K, int N, int n0, int nrows,
                         const int16_t *xq, const float *dx, uint16_t *out) {
    switch (M) {
    case 1: rows4_int8(1, w, scale, K, N, n0, nrows, xq, dx, out); break;
    case 2: rows4_int8(2, w, scale, K, N, n0, nrows, xq, dx, out); break;
    case 3: rows4_int8(3, w, scale, K, N, n0, nrows, xq, dx, out); break;
    default: rows4_int8(4, w, scale, K, N, n0, nrows, xq, dx, out); break;
    }
}

/* x (K) bf16 -> xq (K) int16 (absmax -> 16383, round to nearest even); returns the scale. */
static float quantize_row16(const uint16_t *x, int K, int16_t *xq) {
    __m512 vmax = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(load16(x + k)));
    float amax = _mm512_reduce_max_ps(vmax);
    __m512 inv = _mm512_set1_ps(amax > 0.0f ? 16383.0f / amax : 0.0f);
    for (int k = 0; k < K; k += 16)
        _mm256_storeu_si256((__m256i *)(xq + k), _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(load16(x + k), inv))));
    return amax / 16383.0f;
}

struct int8_ctx { int rows, K, N; const int8_t *w; const uint16_t *scale; const int16_t *xq; const float *dx;
                  uint16_t *out; };

#define INT8_ITEM 16  /* output rows per work item (four quads) */

static void int8_item(const void *p, int item) {  /* INT8_ITEM output rows, for every activation row */
    const struct int8_ctx *c = p;
    for (int m0 = 0; m0 < c->rows; m0 += 4)  /* the item's weights (16 x K bytes) stay in L2 for the next four rows */
        for (int n0 = item * INT8_ITEM; n0 < c->N && n0 < (item + 1) * INT8_ITEM; n0 += 4)
            rows4_int8_m(c->rows - m0 < 4 ? c->rows - m0 : 4, c->w, c->scale, c->K, c->N, n0,
                         c->N - n0 < 4 ? c->N - n0 : 4, c->xq + (size_t)m0 * c->K, c->dx + m0,
                         c->out + (size_t)m0 * c->N);
}

/* out (M, N) bf16 = x (M, K) bf16 times int8 w (N, K) times scale (N) bf16; K a multiple of 32.
   Returns 0, or -1 when scratch allocation fails. */
int lhama_int8_gemm(const uint16_t *x, const int8_t *w, const uint16_t *scale, uint16_t *out, int M, int K, int N,
                    int threads, int pool) {
    int16_t *xq = aligned_alloc(64, (size_t)((M * K * 2 + 63) / 64) * 64);
    float *dx = malloc(sizeof(float) * M);
    if (!xq || !dx) { free(xq); free(dx); return -1; }
    for (int m = 0; m < M; m++) dx[m] = quantize_row16(x + (size_t)m * K, K, xq + (size_t)m * K);
    struct int8_ctx c = {M, K, N, w, scale, xq, dx, out};
    parallel_items(int8_item, &c, (N + INT8_ITEM - 1) / INT8_ITEM, threads, pool);
    free(xq);
    free(dx);
    return 0;
}

int lhama_int4_version(void) { return 9; }
