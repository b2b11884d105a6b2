/* Native CPU kernels of the localisation metrics (attnlab.metrics.native loads them; see it for the contract).
 *
 * Every kernel works image by image (OpenMP over images, thread-local buffers) and gives exactly the numbers
 * of the batched PyTorch code: the same IEEE double operations in the same order where floating point is
 * involved (min-max normalisation, threshold search, IoU of whole-pixel boxes), integers elsewhere.
 *   largest_box : box of the largest 8- or 4-connected component of each binary mask (ties: the component
 *                 whose last pixel in raster order comes first), (0, 0, 0, 0) for an empty mask
 *   sweep_*     : MaxBoxAccV2's best IoU at every CAM threshold: masks norm(map) > thr[k] for k from the top
 *                 down are nested, so one union-find grows their components (boxes, areas at the root, the
 *                 component's last pixel) and each step scores only the components that changed
 *   pxap_hist_* : PxAP's histograms of normalised scores by bin (edges[j] <= v < edges[j + 1]), split by mask
 * Boxes are (x0, y0, x1, y1) with x1, y1 exclusive.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int32_t *parent, *x0, *y0, *x1, *y1, *area; } Forest;

static inline int32_t find(int32_t *parent, int32_t x) {
    while (parent[x] != x) { parent[x] = parent[parent[x]]; x = parent[x]; }
    return x;
}

/* Join the trees of a and b, the larger root on top (so a root is its component's last pixel); returns the
 * root of the union, or -1 when they were one tree already. */
static inline int32_t join(Forest *f, int32_t a, int32_t b) {
    int32_t ra = find(f->parent, a), rb = find(f->parent, b);
    if (ra == rb) return -1;
    int32_t hi = ra > rb ? ra : rb, lo = ra > rb ? rb : ra;
    f->parent[lo] = hi;
    if (f->x0[lo] < f->x0[hi]) f->x0[hi] = f->x0[lo];
    if (f->y0[lo] < f->y0[hi]) f->y0[hi] = f->y0[lo];
    if (f->x1[lo] > f->x1[hi]) f->x1[hi] = f->x1[lo];
    if (f->y1[lo] > f->y1[hi]) f->y1[hi] = f->y1[lo];
    f->area[hi] += f->area[lo];
    return hi;
}

static inline void seed(Forest *f, int32_t p, int32_t y, int32_t x) {
    f->parent[p] = p; f->area[p] = 1;
    f->x0[p] = f->x1[p] = x;
    f->y0[p] = f->y1[p] = y;
}

static int forest_alloc(Forest *f, int64_t P) {
    int32_t *mem = (int32_t *)malloc(sizeof(int32_t) * 6 * (size_t)P);
    if (!mem) return 0;
    f->parent = mem; f->x0 = mem + P; f->y0 = mem + 2 * P; f->x1 = mem + 3 * P; f->y1 = mem + 4 * P;
    f->area = mem + 5 * P;
    return 1;
}

/* Neighbours of p as offsets, with their bounds: W, NW, N, NE, E, SE, S, SW (the first four are the earlier ones in
 * raster order); 4-connectivity takes W, N, E, S. */
static inline int neighbours(int32_t y, int32_t x, int32_t H, int32_t W, int conn, int earlier_only, int32_t *out) {
    int n = 0;
    const int dy[8] = {0, -1, -1, -1, 0, 1, 1, 1}, dx[8] = {-1, -1, 0, 1, 1, 1, 0, -1};
    for (int i = 0; i < (earlier_only ? 4 : 8); ++i) {
        if (conn == 4 && dy[i] != 0 && dx[i] != 0) continue;
        int32_t yy = y + dy[i], xx = x + dx[i];
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        out[n++] = yy * W + xx;
    }
    return n;
}

/* How many of the sorted a[0 .. n) are below v (strict: a < v; else a <= v), for v in [0, 1]: a table of the
 * counts at G points of [0, 1] gives a start, and a walk in either direction ends at the exact count (whatever
 * the start, so rounding in the table cannot change the answer). */
#define GRID 4096
static void count_table(const double *a, int64_t n, int strict, int64_t *table) {
    int64_t k = 0;  /* the counts only grow with v */
    for (int64_t g = 0; g < GRID; ++g) {
        double v = (double)g / GRID;
        while (k < n && (strict ? a[k] < v : a[k] <= v)) ++k;
        table[g] = k;
    }
}

static inline int64_t count_below(const double *a, int64_t n, const int64_t *table, double v, int strict) {
    int64_t g = (int64_t)(v * GRID);
    g = g < 0 ? 0 : (g >= GRID ? GRID - 1 : g);
    int64_t k = table[g];
    if (strict) {
        while (k > 0 && !(a[k - 1] < v)) --k;
        while (k < n && a[k] < v) ++k;
    } else {
        while (k > 0 && !(a[k - 1] <= v)) --k;
        while (k < n && a[k] <= v) ++k;
    }
    return k;
}

static inline double iou_best(const Forest *f, int32_t r, const int64_t *gt, int64_t M) {
    double a0 = f->x0[r], a1 = f->y0[r], a2 = f->x1[r] + 1, a3 = f->y1[r] + 1, best = 0;
    double area_a = (a2 - a0) * (a3 - a1);
    for (int64_t m = 0; m < M; ++m) {
        const int64_t *g = gt + 4 * m;
        double b0 = (double)g[0], b1 = (double)g[1], b2 = (double)g[2], b3 = (double)g[3];
        double ix = (a2 < b2 ? a2 : b2) - (a0 > b0 ? a0 : b0), iy = (a3 < b3 ? a3 : b3) - (a1 > b1 ? a1 : b1);
        ix = ix > 0 ? ix : 0; iy = iy > 0 ? iy : 0;
        double inter = ix * iy;
        double wb = b2 - b0, hb = b3 - b1;
        double area_b = (wb > 0 ? wb : 0) * (hb > 0 ? hb : 0);
        double uni = area_a + area_b - inter;
        double v = uni > 0 ? inter / (uni > 1e-12 ? uni : 1e-12) : 0;
        if (v > best) best = v;
    }
    return best;
}

void largest_box(const uint8_t *mask, int64_t B, int64_t H, int64_t W, int conn, int64_t *box, int nt) {
    int64_t P = H * W;
    int failed = 0;
    _Pragma("omp parallel num_threads(nt)")
    {
        Forest f = {0};
        int ok = forest_alloc(&f, P);
        if (!ok) {
            _Pragma("omp atomic write")
            failed = 1;
        }
        _Pragma("omp for schedule(dynamic, 16)")
        for (int64_t b = 0; b < B; ++b) {
            if (!ok) continue;
            const uint8_t *m = mask + b * P;
            int32_t nb[8];
            for (int32_t y = 0, p = 0; y < H; ++y)
                for (int32_t x = 0; x < W; ++x, ++p) {
                    if (!m[p]) continue;
                    seed(&f, p, y, x);
                    int n = neighbours(y, x, (int32_t)H, (int32_t)W, conn, 1, nb);
                    for (int i = 0; i < n; ++i) if (m[nb[i]]) join(&f, p, nb[i]);
                }
            int32_t pick = -1;
            for (int32_t p = 0; p < P; ++p)  /* roots in raster order: ties keep the first */
                if (m[p] && f.parent[p] == p && (pick < 0 || f.area[p] > f.area[pick])) pick = p;
            int64_t *o = box + 4 * b;
            if (pick < 0) { o[0] = o[1] = o[2] = o[3] = 0; continue; }
            o[0] = f.x0[pick]; o[1] = f.y0[pick]; o[2] = f.x1[pick] + 1; o[3] = f.y1[pick] + 1;
        }
        free(f.parent);
    }
    if (failed) box[0] = -1;  /* the caller checks: out of memory */
}

#define DEFINE_KERNELS(T, S)                                                                                  \
/* min-max normalisation as attnlab.metrics.wsol._normalise: (x - min) / max(x - min), 0 for a constant map */ \
static void normalise_##S(const T *x, int64_t P, double *v) {                                                 \
    T lo = x[0];                                                                                              \
    for (int64_t p = 1; p < P; ++p) if (x[p] < lo) lo = x[p];                                                 \
    double dlo = (double)lo, hi = 0;                                                                          \
    for (int64_t p = 0; p < P; ++p) { v[p] = (double)x[p] - dlo; if (v[p] > hi) hi = v[p]; }                \
    if (hi > 0) { double d = hi > 1e-300 ? hi : 1e-300; for (int64_t p = 0; p < P; ++p) v[p] = v[p] / d; }    \
    else for (int64_t p = 0; p < P; ++p) v[p] = 0;                                                            \
}                                                                                                             \
                                                                                                              \
void pxap_hist_##S(const T *maps, const uint8_t *mask, const uint8_t *ignore, int64_t B, int64_t P,           \
                   const double *edges, int64_t E, int64_t *pos, int64_t *neg, int nt) {                      \
    int failed = 0;                                                                                           \
    int64_t table[GRID];                                                                                      \
    count_table(edges, E, 0, table);                                                                          \
    _Pragma("omp parallel num_threads(nt)")                                                                   \
    {                                                                                                         \
        int64_t *hp = (int64_t *)calloc((size_t)(2 * E), sizeof(int64_t));                                   \
        double *v = (double *)malloc(sizeof(double) * (size_t)P);                                             \
        int ok = hp && v;                                                                                     \
        if (!ok) {                                                                                            \
            _Pragma("omp atomic write")                                                                       \
            failed = 1;                                                                                       \
        }                                                                                                     \
        _Pragma("omp for schedule(dynamic, 16)")                                                              \
        for (int64_t b = 0; b < B; ++b) {                                                                     \
            if (!ok) continue;                                                                                \
            normalise_##S(maps + b * P, P, v);                                                                \
            const uint8_t *m = mask + b * P, *ig = ignore ? ignore + b * P : 0;                               \
            for (int64_t p = 0; p < P; ++p) {                                                                 \
                if (ig && ig[p]) continue;                                                                    \
                int64_t lo = count_below(edges, E, table, v[p], 0);  /* number of edges <= v */               \
                if (lo == 0) continue;  /* below the first edge: not counted */                              \
                hp[(m[p] ? 0 : E) + lo - 1] += 1;                                                             \
            }                                                                                                 \
        }                                                                                                     \
        if (ok) {                                                                                             \
            _Pragma("omp critical")                                                                           \
            for (int64_t j = 0; j < E; ++j) { pos[j] += hp[j]; neg[j] += hp[E + j]; }                         \
        }                                                                                                     \
        free(hp); free(v);                                                                                    \
    }                                                                                                         \
    if (failed) pos[0] = -1;                                                                                  \
}                                                                                                             \
                                                                                                              \
void sweep_##S(const T *maps, int64_t B, int64_t H, int64_t W, const double *thr, int64_t NT, int conn,          \
               const int64_t *gt, int64_t M, int multi, double *out, int nt) {                                \
    int64_t P = H * W;                                                                                        \
    int failed = 0;                                                                                           \
    int64_t table[GRID];                                                                                      \
    count_table(thr, NT, 1, table);                                                                           \
    _Pragma("omp parallel num_threads(nt)")                                                                   \
    {                                                                                                         \
        Forest f = {0};                                                                                       \
        double *v = (double *)malloc(sizeof(double) * (size_t)P), *iou = (double *)malloc(sizeof(double) * (size_t)P); \
        int32_t *lv = (int32_t *)malloc(sizeof(int32_t) * (size_t)P);                                         \
        int32_t *order = (int32_t *)malloc(sizeof(int32_t) * (size_t)P);                                      \
        int32_t *alive = (int32_t *)malloc(sizeof(int32_t) * (size_t)P);                                      \
        int64_t *start = (int64_t *)malloc(sizeof(int64_t) * (size_t)(NT + 2));                               \
        uint8_t *dirty = (uint8_t *)malloc((size_t)P);                                                        \
        int ok = forest_alloc(&f, P) && v && iou && lv && order && alive && start && dirty;                   \
        if (!ok) {                                                                                            \
            _Pragma("omp atomic write")                                                                       \
            failed = 1;                                                                                       \
        }                                                                                                     \
        _Pragma("omp for schedule(dynamic, 16)")                                                              \
        for (int64_t b = 0; b < B; ++b) {                                                                     \
            if (!ok) continue;                                                                                \
            normalise_##S(maps + b * P, P, v);                                                                \
            memset(start, 0, sizeof(int64_t) * (size_t)(NT + 2));                                             \
            for (int64_t p = 0; p < P; ++p) {  /* level: the number of thresholds below the value */          \
                int64_t lo = count_below(thr, NT, table, v[p], 1);                                            \
                lv[p] = (int32_t)lo; start[lo + 1] += 1;                                                      \
            }                                                                                                 \
            for (int64_t k = 0; k <= NT; ++k) start[k + 1] += start[k];                                       \
            for (int64_t p = 0; p < P; ++p) order[start[lv[p]]++] = (int32_t)p; /* start[k] -> end of level k */ \
            const int64_t *g = gt + b * M * 4;                                                                \
            int64_t n_alive = 0;                                                                              \
            double best = 0;                                                                                  \
            int32_t nb[8];                                                                                    \
            for (int64_t k = NT - 1; k >= 0; --k) {                                                           \
                int64_t lvl = k + 1, first = start[lvl - 1], last = start[lvl];  /* pixels at level k + 1 */ \
                if (first < last) {                                                                           \
                    for (int64_t i = first; i < last; ++i) {                                                  \
                        int32_t p = order[i], y = p / (int32_t)W;                                             \
                        seed(&f, p, y, p - y * (int32_t)W); dirty[p] = 1; alive[n_alive++] = p;               \
                    }                                                                                         \
                    for (int64_t i = first; i < last; ++i) {                                                  \
                        int32_t p = order[i], y = p / (int32_t)W;                                             \
                        int n = neighbours(y, p - y * (int32_t)W, (int32_t)H, (int32_t)W, conn, 0, nb);       \
                        for (int j = 0; j < n; ++j) {                                                         \
                            if (lv[nb[j]] < lvl) continue;                                                    \
                            int32_t r = join(&f, p, nb[j]);                                                   \
                            if (r >= 0) dirty[r] = 1;                                                         \
                        }                                                                                     \
                    }                                                                                         \
                    int64_t kept = 0;                                                                         \
                    int32_t pick = -1;                                                                        \
                    best = 0;                                                                                 \
                    for (int64_t i = 0; i < n_alive; ++i) {                                                   \
                        int32_t r = alive[i];                                                                 \
                        if (f.parent[r] != r) continue;                                                       \
                        alive[kept++] = r;                                                                    \
                        if (dirty[r]) { iou[r] = iou_best(&f, r, g, M); dirty[r] = 0; }                       \
                        if (multi) { if (iou[r] > best) best = iou[r]; }                                      \
                        else if (pick < 0 || f.area[r] > f.area[pick] || (f.area[r] == f.area[pick] && r < pick)) pick = r; \
                    }                                                                                         \
                    n_alive = kept;                                                                           \
                    if (!multi) best = pick < 0 ? 0 : iou[pick];                                              \
                }                                                                                             \
                out[b * NT + k] = best;                                                                       \
            }                                                                                                 \
        }                                                                                                     \
        free(f.parent);                                                                                       \
        free(v); free(iou); free(lv); free(order); free(alive); free(start); free(dirty);                      \
    }                                                                                                         \
    if (failed) out[0] = -1;                                                                                  \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)
