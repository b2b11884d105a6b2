/* Fused CPU kernels for CBAM on NCHW-contiguous float32/float64 tensors.
 *
 * x is (N, C, P) with P = H * W. Each kernel makes one pass over the full tensor(s):
 *   pool_hw  : avg, max and first arg-max over P of every (n, c) row            (reads x)
 *   pool_c   : mean, max and first arg-max over C of x * ca, for every (n, p)   (reads x)
 *   apply    : out = x * ca * sa                                               (reads x, writes out)
 *   bwd_dots : gsa[n,p] = sum_c g*x*ca[c];  gca[n,c] = sum_p g*x*sa[p]          (reads g, x)
 *   bwd_gx   : gx = ca * (g * sa + gm[p]) + gavg[c]                            (reads g, writes gx)
 *   row_dot  : d[r] = sum_p a[r, p] * b[r / group, p]                          (reads a, b)
 *              group 1: the SE/ECA gate gradient; group C: CBAM's channel-mean gradient sum_p x * gm[n]
 *              (a batched matrix-vector product that torch.bmm runs at a third of this speed)
 *   first_eq : arg[r] = first p with x[r, p] == m[r] (NaN matches NaN)         (reads ~half of x)
 * (The spatial average and max of pool_hw are faster from torch's own reductions; first_eq then finds the
 * arg-max for the backward with an early-exit scan.)
 * The small pooled tensors (N, C) and (N, P) are contiguous. The _nhwc kernels at the end are the same
 * passes for channels_last tensors. Loops over the contiguous axis are
 * written so that gcc vectorises them; OpenMP splits the work over (n, block) pairs.
 */
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#define PBLOCK 1024
#define LANES 8

#define DEFINE_KERNELS(T, IT, S)                                                                          \
void pool_hw_##S(const T *x, int64_t rows, int64_t P, T *avg, T *mx, int64_t *arg, int nt) {          \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t r = 0; r < rows; ++r) {                                                              \
        const T *row = x + r * P;                                                                     \
        T sl[LANES], ml[LANES]; IT al[LANES]; int64_t p = 0;                                         \
        for (int l = 0; l < LANES; ++l) { sl[l] = 0; ml[l] = row[0]; al[l] = 0; }                     \
        for (; p + LANES <= P; p += LANES)                                                            \
            for (int l = 0; l < LANES; ++l) {                                                         \
                T v = row[p + l]; sl[l] += v;                                                         \
                int gt = (v > ml[l]) | (v != v); /* NaN propagates, as torch.amax */                 \
                ml[l] = gt ? v : ml[l]; al[l] = gt ? (IT)(p + l) : al[l];                             \
            }                                                                                         \
        T s = 0, m = ml[0]; int64_t a = al[0];                                                        \
        for (int l = 0; l < LANES; ++l) {                                                             \
            s += sl[l];                                                                               \
            if ((ml[l] > m) | (ml[l] != ml[l] && m == m) | (ml[l] == m && al[l] < a)) { m = ml[l]; a = al[l]; } \
        }                                                                                             \
        for (; p < P; ++p) { T v = row[p]; s += v; if ((v > m) | (v != v && m == m)) { m = v; a = p; } } \
        avg[r] = s / (T)P; mx[r] = m; arg[r] = a;                                                     \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
void pool_c_##S(const T *x, const T *ca, int64_t N, int64_t C, int64_t P,                           \
                T *mean, T *mx, int64_t *arg, int nt) {                                               \
    int64_t nb = (P + PBLOCK - 1) / PBLOCK;                                                           \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t job = 0; job < N * nb; ++job) {                                                      \
        int64_t n = job / nb, p0 = (job % nb) * PBLOCK, p1 = p0 + PBLOCK < P ? p0 + PBLOCK : P;       \
        int64_t L = p1 - p0;                                                                          \
        T s[PBLOCK], m[PBLOCK]; int64_t a[PBLOCK];                                                    \
        const T *xn = x + n * C * P; const T *can = ca + n * C;                                       \
        T w0 = can[0];                                                                                \
        for (int64_t i = 0; i < L; ++i) { T v = xn[p0 + i] * w0; s[i] = v; m[i] = v; a[i] = 0; }      \
        for (int64_t c = 1; c < C; ++c) {                                                             \
            const T *xc = xn + c * P + p0; T w = can[c];                                              \
            for (int64_t i = 0; i < L; ++i) {                                                         \
                T v = xc[i] * w; s[i] += v;                                                           \
                int gt = v > m[i] || v != v; m[i] = gt ? v : m[i]; a[i] = gt ? c : a[i];                        \
            }                                                                                         \
        }                                                                                             \
        T invC = (T)1 / (T)C;                                                                         \
        for (int64_t i = 0; i < L; ++i) {                                                             \
            mean[n * P + p0 + i] = s[i] * invC; mx[n * P + p0 + i] = m[i]; arg[n * P + p0 + i] = a[i];\
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
void apply_##S(const T *x, const T *ca, const T *sa, int64_t N, int64_t C, int64_t P, T *out, int nt) {\
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t r = 0; r < N * C; ++r) {                                                             \
        const T *xr = x + r * P; const T *san = sa + (r / C) * P; T w = ca[r]; T *o = out + r * P;    \
        for (int64_t p = 0; p < P; ++p) o[p] = xr[p] * w * san[p];                                   \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
void bwd_dots_##S(const T *g, const T *x, const T *ca, const T *sa, int64_t N, int64_t C, int64_t P,  \
                  T *gsa, T *gca, int nt) {                                                           \
    int64_t nb = (P + PBLOCK - 1) / PBLOCK;                                                           \
    /* gca partial sums per P-block, reduced afterwards so every job writes its own memory. */        \
    T *part = (T *)malloc(sizeof(T) * N * nb * C);                                                    \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t job = 0; job < N * nb; ++job) {                                                      \
        int64_t n = job / nb, b = job % nb, p0 = b * PBLOCK, p1 = p0 + PBLOCK < P ? p0 + PBLOCK : P;  \
        int64_t L = p1 - p0;                                                                          \
        T acc[PBLOCK];                                                                                \
        for (int64_t i = 0; i < L; ++i) acc[i] = 0;                                                   \
        const T *san = sa + n * P + p0; const T *can = ca + n * C; T *pc = part + (n * nb + b) * C;   \
        for (int64_t c = 0; c < C; ++c) {                                                             \
            const T *gc = g + (n * C + c) * P + p0; const T *xc = x + (n * C + c) * P + p0;           \
            T w = can[c], dl[LANES], d = 0; int64_t i = 0;                                            \
            for (int l = 0; l < LANES; ++l) dl[l] = 0;                                                \
            for (; i + LANES <= L; i += LANES)                                                        \
                for (int l = 0; l < LANES; ++l) {                                                     \
                    T gx = gc[i + l] * xc[i + l]; acc[i + l] += gx * w; dl[l] += gx * san[i + l];     \
                }                                                                                     \
            for (; i < L; ++i) { T gx = gc[i] * xc[i]; acc[i] += gx * w; d += gx * san[i]; }          \
            for (int l = 0; l < LANES; ++l) d += dl[l];                                               \
            pc[c] = d;                                                                                \
        }                                                                                             \
        for (int64_t i = 0; i < L; ++i) gsa[n * P + p0 + i] = acc[i];                                 \
    }                                                                                                 \
    for (int64_t n = 0; n < N; ++n)                                                                   \
        for (int64_t c = 0; c < C; ++c) {                                                             \
            T d = 0;                                                                                  \
            for (int64_t b = 0; b < nb; ++b) d += part[(n * nb + b) * C + c];                         \
            gca[n * C + c] = d;                                                                       \
        }                                                                                             \
    free(part);                                                                                       \
}                                                                                                     \
                                                                                                      \
void bwd_gx_##S(const T *g, const T *ca, const T *sa, const T *gm, const T *gavg, int64_t N, int64_t C,\
                int64_t P, T *gx, int nt) {                                                           \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t r = 0; r < N * C; ++r) {                                                             \
        const T *gr = g + r * P; const T *san = sa + (r / C) * P; const T *gmn = gm + (r / C) * P;    \
        T w = ca[r], b = gavg[r]; T *o = gx + r * P;                                                  \
        for (int64_t p = 0; p < P; ++p) o[p] = w * (gr[p] * san[p] + gmn[p]) + b;                     \
    }                                                                                                 \
}

#define DEFINE_ROW_DOT(T, S)                                                                          \
void row_dot_##S(const T *a, const T *b, int64_t rows, int64_t P, int64_t group, T *d, int nt) {      \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t r = 0; r < rows; ++r) {                                                              \
        const T *ar = a + r * P, *br = b + (r / group) * P; T dl[LANES], s = 0; int64_t p = 0;        \
        for (int l = 0; l < LANES; ++l) dl[l] = 0;                                                    \
        for (; p + LANES <= P; p += LANES)                                                            \
            for (int l = 0; l < LANES; ++l) dl[l] += ar[p + l] * br[p + l];                           \
        for (; p < P; ++p) s += ar[p] * br[p];                                                        \
        for (int l = 0; l < LANES; ++l) s += dl[l];                                                   \
        d[r] = s;                                                                                     \
    }                                                                                                 \
}

#define DEFINE_FIRST_EQ(T, S)                                                                         \
void first_eq_##S(const T *x, const T *m, int64_t rows, int64_t P, int64_t *arg, int nt) {             \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t r = 0; r < rows; ++r) {                                                              \
        const T *row = x + r * P; T v = m[r]; int64_t a = 0;                                          \
        if (v == v) { while (a < P - 1 && row[a] != v) ++a; }                                         \
        else { while (a < P - 1 && row[a] == row[a]) ++a; }                                           \
        arg[r] = a;                                                                                   \
    }                                                                                                 \
}

DEFINE_FIRST_EQ(float, f32)
DEFINE_FIRST_EQ(double, f64)
DEFINE_ROW_DOT(float, f32)
DEFINE_ROW_DOT(double, f64)
DEFINE_KERNELS(float, int32_t, f32)
DEFINE_KERNELS(double, int64_t, f64)

/* The same CBAM passes for channels_last tensors: x is (N, P, C) in memory, C contiguous.
 *   pool_hw_nhwc : avg, max and first arg-max over P of every (n, c)   (one read of x, vectorised over c)
 *   pool_c_nhwc  : mean, max and first arg-max over C of x * ca          (one read of x)
 *   apply_nhwc   : out = x * ca * sa                                      (reads x, writes out)
 *   bwd_dots_nhwc: gsa[n,p] = sum_c g*x*ca[c];  gca[n,c] = sum_p g*x*sa[p]  (reads g, x)
 *   bwd_gx_nhwc  : gx = ca * (g * sa + gm[p]) + gavg[c]                 (reads g, writes gx)
 */
#define CBLOCK 256
#define PROWS 64

#define DEFINE_NHWC(T, S)                                                                             \
void pool_hw_nhwc_##S(const T *x, int64_t N, int64_t C, int64_t P, T *avg, T *mx, int64_t *arg, int nt) {\
    int64_t ncb = (C + CBLOCK - 1) / CBLOCK;                                                          \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t job = 0; job < N * ncb; ++job) {                                                     \
        int64_t n = job / ncb, c0 = (job % ncb) * CBLOCK, c1 = c0 + CBLOCK < C ? c0 + CBLOCK : C;     \
        int64_t L = c1 - c0;                                                                          \
        T s[CBLOCK], m[CBLOCK]; int64_t a[CBLOCK];                                                    \
        const T *xn = x + n * P * C + c0;                                                             \
        for (int64_t i = 0; i < L; ++i) { s[i] = xn[i]; m[i] = xn[i]; a[i] = 0; }                     \
        for (int64_t p = 1; p < P; ++p) {                                                             \
            const T *row = xn + p * C;                                                                \
            for (int64_t i = 0; i < L; ++i) {                                                         \
                T v = row[i]; s[i] += v;                                                              \
                int gt = (v > m[i]) | ((v != v) & (m[i] == m[i]));                                   \
                m[i] = gt ? v : m[i]; a[i] = gt ? p : a[i];                                           \
            }                                                                                         \
        }                                                                                             \
        T invP = (T)1 / (T)P;                                                                         \
        for (int64_t i = 0; i < L; ++i) {                                                             \
            avg[n * C + c0 + i] = s[i] * invP; mx[n * C + c0 + i] = m[i]; arg[n * C + c0 + i] = a[i]; \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
static void pool_c_nhwc_scalar_##S(const T *x, const T *ca, int64_t N, int64_t C, int64_t P,         \
                     T *mean, T *mx, int64_t *arg, int nt) {                                          \
    /* One pass per row with LANES accumulators (float64, and float32 rows too long for int32 lanes). */ \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t r = 0; r < N * P; ++r) {                                                             \
        const T *row = x + r * C; const T *can = ca + (r / P) * C;                                    \
        T sl[LANES], ml[LANES]; int64_t il[LANES]; int64_t c = 0;                                     \
        T first = row[0] * can[0];                                                                    \
        for (int l = 0; l < LANES; ++l) { sl[l] = 0; ml[l] = first; il[l] = 0; }                      \
        for (; c + LANES <= C; c += LANES)                                                            \
            for (int l = 0; l < LANES; ++l) {                                                         \
                T v = row[c + l] * can[c + l]; sl[l] += v;                                            \
                int gt = (v > ml[l]) | ((v != v) & (ml[l] == ml[l]));                                 \
                ml[l] = gt ? v : ml[l]; il[l] = gt ? c + l : il[l];                                   \
            }                                                                                         \
        T sum = 0, m = ml[0]; int64_t a = il[0];                                                      \
        for (int l = 0; l < LANES; ++l) {                                                             \
            sum += sl[l];                                                                             \
            int nan_l = ml[l] != ml[l], nan_m = m != m;                                               \
            int better = nan_l ? (!nan_m || il[l] < a) : (!nan_m && (ml[l] > m || (ml[l] == m && il[l] < a))); \
            if (better) { m = ml[l]; a = il[l]; }                                                     \
        }                                                                                             \
        for (; c < C; ++c) {                                                                          \
            T v = row[c] * can[c]; sum += v;                                                          \
            if ((v > m) | ((v != v) & (m == m))) { m = v; a = c; }                                    \
        }                                                                                             \
        mean[r] = sum / (T)C; mx[r] = m; arg[r] = a;                                                  \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
void apply_nhwc_##S(const T *x, const T *ca, const T *sa, int64_t N, int64_t C, int64_t P, T *out, int nt) {\
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t r = 0; r < N * P; ++r) {                                                             \
        const T *xr = x + r * C; const T *can = ca + (r / P) * C; T w = sa[r]; T *o = out + r * C;    \
        for (int64_t c = 0; c < C; ++c) o[c] = xr[c] * can[c] * w;                                    \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
void bwd_dots_nhwc_##S(const T *g, const T *x, const T *ca, const T *sa, int64_t N, int64_t C, int64_t P,\
                       T *gsa, T *gca, int nt) {                                                      \
    int64_t npb = (P + PROWS - 1) / PROWS;                                                            \
    /* gca partial sums per block of PROWS pixels, reduced afterwards. */                             \
    T *part = (T *)malloc(sizeof(T) * N * npb * C);                                                   \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t job = 0; job < N * npb; ++job) {                                                     \
        int64_t n = job / npb, b = job % npb, p0 = b * PROWS, p1 = p0 + PROWS < P ? p0 + PROWS : P;   \
        const T *can = ca + n * C; T *pc = part + (n * npb + b) * C;                                  \
        for (int64_t c = 0; c < C; ++c) pc[c] = 0;                                                    \
        for (int64_t p = p0; p < p1; ++p) {                                                           \
            const T *gr = g + (n * P + p) * C; const T *xr = x + (n * P + p) * C;                     \
            T w = sa[n * P + p], dl[LANES], d = 0; int64_t c = 0;                                     \
            for (int l = 0; l < LANES; ++l) dl[l] = 0;                                                \
            for (; c + LANES <= C; c += LANES)                                                        \
                for (int l = 0; l < LANES; ++l) {                                                     \
                    T gx = gr[c + l] * xr[c + l]; dl[l] += gx * can[c + l]; pc[c + l] += gx * w;      \
                }                                                                                     \
            for (; c < C; ++c) { T gx = gr[c] * xr[c]; d += gx * can[c]; pc[c] += gx * w; }           \
            for (int l = 0; l < LANES; ++l) d += dl[l];                                               \
            gsa[n * P + p] = d;                                                                       \
        }                                                                                             \
    }                                                                                                 \
    for (int64_t n = 0; n < N; ++n) {                                                                 \
        T *gn = gca + n * C;                                                                          \
        for (int64_t c = 0; c < C; ++c) gn[c] = 0;                                                    \
        for (int64_t b = 0; b < npb; ++b) {                                                           \
            const T *pc = part + (n * npb + b) * C;                                                   \
            for (int64_t c = 0; c < C; ++c) gn[c] += pc[c];                                           \
        }                                                                                             \
    }                                                                                                 \
    free(part);                                                                                       \
}                                                                                                     \
                                                                                                      \
void bwd_gx_nhwc_##S(const T *g, const T *ca, const T *sa, const T *gm, const T *gavg, int64_t N,     \
                     int64_t C, int64_t P, T *gx, int nt) {                                           \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t r = 0; r < N * P; ++r) {                                                             \
        const T *gr = g + r * C; const T *can = ca + (r / P) * C; const T *gan = gavg + (r / P) * C;  \
        T w = sa[r], b = gm[r]; T *o = gx + r * C;                                                    \
        for (int64_t c = 0; c < C; ++c) o[c] = can[c] * (gr[c] * w + b) + gan[c];                     \
    }                                                                                                 \
}

DEFINE_NHWC(float, f32)
DEFINE_NHWC(double, f64)

void pool_c_nhwc_f64(const double *x, const double *ca, int64_t N, int64_t C, int64_t P, double *mean, double *mx,
                     int64_t *arg, int nt) {
    pool_c_nhwc_scalar_f64(x, ca, N, C, P, mean, mx, arg, nt);
}

/* float32 channel pooling of channels_last x * ca with GCC/Clang vector extensions: the compiler does not
 * if-convert the NaN-aware arg-max select of the scalar loop, which makes it 4x slower than this. */
typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

void pool_c_nhwc_f32(const float *x, const float *ca, int64_t N, int64_t C, int64_t P, float *mean, float *mx,
                     int64_t *arg, int nt) {
    if (C > INT32_MAX - 8) { pool_c_nhwc_scalar_f32(x, ca, N, C, P, mean, mx, arg, nt); return; } /* int32 lanes */
    _Pragma("omp parallel for num_threads(nt) schedule(static)")
    for (int64_t r = 0; r < N * P; ++r) {
        const float *row = x + r * C; const float *can = ca + (r / P) * C;
        int64_t c = 0;
        float first = row[0] * can[0];
        vf8 s = {0}, m = first - (vf8){0};
        vi8 idx = {0}, lane = {0, 1, 2, 3, 4, 5, 6, 7};
        for (; c + 8 <= C; c += 8) {
            vf8 a, w;
            memcpy(&a, row + c, sizeof a);
            memcpy(&w, can + c, sizeof w);
            vf8 v = a * w;
            s += v;
            vi8 gt = (v > m) | ((v != v) & (m == m)); /* -1 where v is the new maximum (NaN wins) */
            m = (vf8)(((vi8)v & gt) | ((vi8)m & ~gt));
            idx = ((lane + (int32_t)c) & gt) | (idx & ~gt);
        }
        float sum = 0, mm = m[0]; int64_t aa = idx[0];
        for (int l = 0; l < 8; ++l) {
            sum += s[l];
            int nan_l = m[l] != m[l], nan_m = mm != mm;
            int better = nan_l ? (!nan_m || idx[l] < aa) : (!nan_m && (m[l] > mm || (m[l] == mm && idx[l] < aa)));
            if (better) { mm = m[l]; aa = idx[l]; }
        }
        for (; c < C; ++c) {
            float v = row[c] * can[c]; sum += v;
            if ((v > mm) | ((v != v) & (mm == mm))) { mm = v; aa = c; }
        }
        mean[r] = sum / (float)C; mx[r] = mm; arg[r] = aa;
    }
}

/* 'Same' conv2d, stride 1, for few channels (CBAM's 7x7 spatial conv: 2 -> 1, and its input gradient 1 -> 2):
 * x (N, I, H, W) and w (O, I, k, k) contiguous, b (O) or NULL, out (N, O, H, W); zero padding k / 2.
 * oneDNN runs this shape at a few GFLOP/s; here every output row accumulates I * k * k shifted input rows,
 * vectorised along the row. Jobs are (n, o, row) triples. */
#define DEFINE_SAME_CONV(T, S)                                                                        \
void same_conv_##S(const T *x, const T *w, const T *b, int64_t N, int64_t I, int64_t O, int64_t H,     \
                   int64_t W, int64_t k, T *out, int nt) {                                            \
    int64_t p = k / 2;                                                                                \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")                                      \
    for (int64_t job = 0; job < N * O * H; ++job) {                                                   \
        int64_t y = job % H, no = job / H, o = no % O, n = no / O;                                    \
        T *orow = out + (n * O + o) * H * W + y * W;                                                  \
        T b0 = b ? b[o] : (T)0;                                                                       \
        for (int64_t j = 0; j < W; ++j) orow[j] = b0;                                                 \
        for (int64_t i = 0; i < I; ++i) {                                                             \
            const T *plane = x + (n * I + i) * H * W; const T *wk = w + (o * I + i) * k * k;          \
            for (int64_t ky = 0; ky < k; ++ky) {                                                      \
                int64_t iy = y + ky - p;                                                              \
                if (iy < 0 || iy >= H) continue;                                                      \
                const T *irow = plane + iy * W;                                                       \
                for (int64_t kx = 0; kx < k; ++kx) {                                                  \
                    T wv = wk[ky * k + kx]; int64_t d = kx - p;                                       \
                    int64_t j0 = d < 0 ? -d : 0, j1 = d > 0 ? W - d : W;                              \
                    for (int64_t j = j0; j < j1; ++j) orow[j] += wv * irow[j + d];                    \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
}

DEFINE_SAME_CONV(float, f32)
DEFINE_SAME_CONV(double, f64)
