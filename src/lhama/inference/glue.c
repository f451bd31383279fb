/* The lean decode step's per-row glue between its products, in C: RMSNorm (with the residual add before it), the
 * query/key/value bias + rotary embedding + KV-cache write, and SiLU(gate) * up; bf16 rows in and out.
 *
 * Each function computes what the PyTorch ops of lhama.inference.lean compute, bit for bit (see glue.py: a check at
 * load compares them with PyTorch on random rows and turns the C path off on any difference):
 *   - an elementwise bf16 op is the fp32 op on the widened values, rounded to bf16 (nearest even), as ATen does;
 *   - SiLU of a bf16 value is read from a 65536-entry table that glue.py fills with PyTorch's own SiLU;
 *   - RMSNorm's mean of squares adds them in ATen's order for a contiguous row (its cascade sum: vectors of
 *     ``lanes`` floats, four side by side, in chunks of 16, the lanes added last; see ``sum_squares``), then divides;
 *   - no fused multiply-add anywhere (built with -ffp-contract=off; -mavx2 where the CPU has it changes the speed, not
 *     the results: the same IEEE adds, multiplies, divisions and square roots).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_LANES 16
#define MAX_WIDTH 8192
#define LEVELS 4

static inline float widen(uint16_t v) {
    union { uint32_t u; float f; } c = {(uint32_t)v << 16};
    return c.f;
}

static inline uint16_t narrow(float f) { /* round to nearest even; NaN -> 0x7FC0 (c10::BFloat16); no branch */
    union { float f; uint32_t u; } c = {f};
    const uint32_t rounded = (c.u + 0x7FFF + ((c.u >> 16) & 1)) >> 16;
    return (uint16_t)(f != f ? 0x7FC0 : rounded);
}

/* Sum of sq[0..n) in the order of ATen's cascade sum over a contiguous row of floats held in vectors of `lanes`:
 * the row is cut into vectors; vectors 4i..4i+3 feed four vector accumulators (level 0); after every 2^p such rows
 * (p = max(4, ceil(log2(rows)) / 4)) level 0 is added into level 1, and level j into level j + 1 whenever the rows
 * so far are a multiple of 2^(p (j + 1)) (four levels); leftover rows go to level 0; then level 0 + 1 + 2 + 3, the
 * leftover vectors into the first accumulator, the four accumulators in order, the leftover scalars and the lanes. */
static float sum_squares(const float *sq, int n, int lanes) {
    if (n < lanes) lanes = 1; /* a row shorter than a vector: ATen sums scalars, four side by side, the same way */
    float acc[LEVELS][4][MAX_LANES];
    memset(acc, 0, sizeof acc);
    const int vectors = n / lanes, rows = vectors / 4;
    int log2_rows = 1;
    while (rows > 2 && (1L << log2_rows) < rows) log2_rows++;
    const int power = log2_rows / LEVELS > 4 ? log2_rows / LEVELS : 4;
    const long step = 1L << power, mask = step - 1;
    long i = 0;
    while (i + step <= rows) {
        for (long j = 0; j < step; j++, i++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < lanes; l++) acc[0][k][l] += sq[(4 * i + k) * lanes + l];
        for (int level = 1; level < LEVELS; level++) {
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < lanes; l++) {
                    acc[level][k][l] += acc[level - 1][k][l];
                    acc[level - 1][k][l] = 0.0f;
                }
            if (i & (mask << (level * power))) break;
        }
    }
    for (; i < rows; i++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < lanes; l++) acc[0][k][l] += sq[(4 * i + k) * lanes + l];
    for (int level = 1; level < LEVELS; level++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < lanes; l++) acc[0][k][l] += acc[level][k][l];
    for (long v = (long)rows * 4; v < vectors; v++)
        for (int l = 0; l < lanes; l++) acc[0][0][l] += sq[v * lanes + l];
    for (int k = 1; k < 4; k++)
        for (int l = 0; l < lanes; l++) acc[0][0][l] += acc[0][k][l];
    float total = 0.0f;
    for (int t = vectors * lanes; t < n; t++) total += sq[t];
    for (int l = 0; l < lanes; l++) total += acc[0][0][l];
    return total;
}

/* mean(fp32(x)^2) over one row of n, as ATen's ``pow(2).mean(-1)`` (exposed for the check at load: the output rows of
 * an RMSNorm hide most one-ulp differences of it). */
float lhama_glue_mean_squares(const uint16_t *x, int n, int lanes) {
    float sq[MAX_WIDTH];
    if (n > MAX_WIDTH || lanes < 1 || lanes > MAX_LANES) return NAN;
    for (int t = 0; t < n; t++) sq[t] = widen(x[t]) * widen(x[t]);
    return sum_squares(sq, n, lanes) / (float)n;
}

/* out = weight * bf16(h * rsqrt(mean(h^2) + eps)) with h = fp32(x), one row of n. */
static void rms_row(const uint16_t *x, const uint16_t *weight, float eps, uint16_t *out, int n, int lanes) {
    float h[MAX_WIDTH], sq[MAX_WIDTH];
    for (int t = 0; t < n; t++) {
        h[t] = widen(x[t]);
        sq[t] = h[t] * h[t];
    }
    const float mean = sum_squares(sq, n, lanes) / (float)n;
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int t = 0; t < n; t++) out[t] = narrow(widen(weight[t]) * widen(narrow(h[t] * scale)));
}

/* For each of `rows` rows (n wide, `stride` apart in x): x += add (bf16, in place; `add` may be NULL, its rows
 * `add_stride` apart), then out = RMSNorm(x) (rows n apart). Returns 0, or -1 for a width it does not take. */
int lhama_glue_add_rms(uint16_t *x, int stride, const uint16_t *add, int add_stride, const uint16_t *weight, float eps,
                       uint16_t *out, int rows, int n, int lanes) {
    if (n > MAX_WIDTH || lanes < 1 || lanes > MAX_LANES) return -1;
    for (int r = 0; r < rows; r++) {
        uint16_t *row = x + (long)r * stride;
        if (add != NULL)
            for (int t = 0; t < n; t++) row[t] = narrow(widen(row[t]) + widen(add[(long)r * add_stride + t]));
        rms_row(row, weight, eps, out + (long)r * n, n, lanes);
    }
    return 0;
}

/* One row's query/key heads after bias and rotary embedding: dst[h] = q*cos + rotate_half(q)*sin, each product and
 * the sum rounded to bf16 (three ATen ops); q = bf16(src + bias). */
static void rope_head(const uint16_t *src, const uint16_t *bias, const uint16_t *cos, const uint16_t *sin,
                      uint16_t *dst, int dim) {
    const int half = dim / 2;
    uint16_t q[1024];
    for (int t = 0; t < dim; t++) q[t] = bias != NULL ? narrow(widen(src[t]) + widen(bias[t])) : src[t];
    for (int t = 0; t < dim; t++) {
        const float rot = t < half ? -widen(q[t + half]) : widen(q[t - half]);
        dst[t] = narrow(widen(narrow(widen(q[t]) * widen(cos[t]))) + widen(narrow(rot * widen(sin[t]))));
    }
}

/* qkv: `rows` rows `stride` apart, each (heads + 2 kv_heads) heads of `dim` (the fused product without its bias;
 * `bias` that wide or NULL); cos, sin: (rows, dim). Writes the rotated query heads to query (rows, heads, dim), the
 * rotated key heads and the value heads into the caches: row r's head h at keys + r * row_step + h * head_step +
 * (column + r * column_step) * dim (values alike). */
int lhama_glue_rope_write(const uint16_t *qkv, int stride, const uint16_t *bias, const uint16_t *cos,
                          const uint16_t *sin, int rows, int heads, int kv_heads, int dim, uint16_t *query,
                          uint16_t *keys, uint16_t *values, long row_step, long head_step, int column,
                          int column_step) {
    if (dim > 1024 || dim % 2) return -1;
    for (int r = 0; r < rows; r++) {
        const uint16_t *in = qkv + (long)r * stride, *c = cos + (long)r * dim, *s = sin + (long)r * dim;
        const long at = (long)r * row_step + (long)(column + r * column_step) * dim;
        for (int h = 0; h < heads; h++)
            rope_head(in + h * dim, bias ? bias + h * dim : NULL, c, s, query + ((long)r * heads + h) * dim, dim);
        for (int h = 0; h < kv_heads; h++) {
            const int k = heads + h, v = heads + kv_heads + h;
            rope_head(in + k * dim, bias ? bias + k * dim : NULL, c, s, keys + at + h * head_step, dim);
            uint16_t *dst = values + at + h * head_step;
            for (int t = 0; t < dim; t++)
                dst[t] = bias != NULL ? narrow(widen(in[v * dim + t]) + widen(bias[v * dim + t])) : in[v * dim + t];
        }
    }
    return 0;
}

/* out (rows, n) = bf16(silu[gate] * up) for gate, up = each row's two halves (rows `stride` apart); `silu`: the
 * 65536-entry table of SiLU on every bf16 bit pattern. */
int lhama_glue_silu_mul(const uint16_t *restrict gate_up, int stride, const uint16_t *restrict silu,
                        uint16_t *restrict out, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        const uint16_t *gate = gate_up + (long)r * stride, *up = gate + n;
        for (int t = 0; t < n; t++) out[(long)r * n + t] = narrow(widen(silu[gate[t]]) * widen(up[t]));
    }
    return 0;
}

/* What the glue calls of one decode step share, filled once per step by glue.py (``Glue.step``): each
 * ``lhama_glue_step_*`` function below is the explicit call above with these arguments read from here (fewer ctypes
 * arguments to convert per call: ~113 calls per step on lhama-default). */
struct lhama_glue_step {
    uint16_t *hidden;         /* (rows, width), rows hidden_stride apart: takes the residual adds in place */
    uint16_t *normed;         /* (rows, width): each RMSNorm's output */
    const uint16_t *cos, *sin; /* (rows, dim) */
    uint16_t *query;          /* (rows, heads, dim): the rotated query heads */
    const uint16_t *silu;     /* the 65536-entry SiLU table */
    uint16_t *silu_out;       /* (rows, intermediate): SiLU(gate) * up */
    long row_step, head_step; /* the KV caches' layout, as lhama_glue_rope_write's */
    int hidden_stride, rows, width, lanes, heads, kv_heads, dim, column, column_step, intermediate;
};

int lhama_glue_step_add_rms(const struct lhama_glue_step *s, const uint16_t *add, int add_stride,
                            const uint16_t *weight, float eps) {
    return lhama_glue_add_rms(s->hidden, s->hidden_stride, add, add_stride, weight, eps, s->normed, s->rows, s->width,
                              s->lanes);
}

int lhama_glue_step_rope_write(const struct lhama_glue_step *s, const uint16_t *qkv, int stride, const uint16_t *bias,
                               uint16_t *keys, uint16_t *values) {
    return lhama_glue_rope_write(qkv, stride, bias, s->cos, s->sin, s->rows, s->heads, s->kv_heads, s->dim, s->query,
                                 keys, values, s->row_step, s->head_step, s->column, s->column_step);
}

int lhama_glue_step_silu_mul(const struct lhama_glue_step *s, const uint16_t *gate_up, int stride) {
    return lhama_glue_silu_mul(gate_up, stride, s->silu, s->silu_out, s->rows, s->intermediate);
}
