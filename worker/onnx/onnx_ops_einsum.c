/* ONNX Einsum (opset 12): any number of operands, explicit ("ij,jk->ik") and implicit
 * ("ij,jk") output, ellipses broadcast NumPy's way, repeated labels within an operand
 * (diagonals) and labels summed away. One direct loop over every label's index: each
 * operand reads at the sum of index x stride over its labels (a repeated label adds its
 * dims' strides, a broadcast dim adds 0), products accumulate in double (int64 for integer
 * types). Exact for every shape but not a GEMM: fine for the small contractions exported
 * models carry, slow for a large batched matrix product. So two f32 operands whose products
 * are not tiny go to GEMMs instead (s_lowered): each operand gathered into [batch, rows, k]
 * by the same label strides (which already cover diagonals and broadcast dims) unless it is
 * laid out so already, or as [batch, k, rows] (then read transposed), one gq_onnx_sgemm per
 * batch entry, the result gathered into the output's label order unless it is in it. */
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "par.h"
#include "util.h"

#define S_LETTERS 52                       /* A-Z then a-z: id order is ASCII order */
#define S_LABELS (S_LETTERS + GQ_MAX_DIMS) /* then one id per ellipsis dim */
#define S_MAX_STEPS ((int64_t)1 << 34)     /* multiply-adds one node may ask for */
#define S_MAX_OPS 16                       /* operands */

typedef struct {
    int nin;
    int ndims[S_MAX_OPS]; /* labels per operand, ellipsis expanded */
    int lab[S_MAX_OPS][GQ_MAX_DIMS];
    int nout, out[GQ_MAX_DIMS]; /* the output's labels */
    int64_t size[S_LABELS];     /* -1: not used */
    int nsum, sum[S_LABELS];    /* labels summed away */
} s_eq_t;

static int s_letter(char c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? 26 + c - 'a' : -1;
}

/* One term's labels into lab (ellipsis dims as -1 - position among them); *ell whether it
 * has one. */
static gq_status s_term(const char *t, size_t len, int *lab, int *n, bool *ell, char *err,
                        size_t errlen)
{
    *n = 0, *ell = false;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == ' ')
            continue;
        if (t[i] == '.' && i + 2 < len && t[i + 1] == '.' && t[i + 2] == '.' && !*ell) {
            *ell = true, i += 2;
            if (*n < GQ_MAX_DIMS)
                lab[(*n)++] = -1; /* expanded later */
            continue;
        }
        int l = s_letter(t[i]);
        if (l < 0 || *n >= GQ_MAX_DIMS) {
            gq_errf(err, errlen, "equation term '%.*s': '%c' is not a label or too many dims",
                    (int)len, t, t[i]);
            return GQ_EPARAM;
        }
        lab[(*n)++] = l;
    }
    return GQ_OK;
}

/* Expands the ellipsis mark of a term of rank dims-with-ellipsis e into ids S_LETTERS + E - e
 * .. S_LETTERS + E - 1 (right-aligned, as NumPy broadcasts). */
static gq_status s_expand(int *lab, int *n, int rank, bool ell, int E, int *e_out, char *err,
                          size_t errlen)
{
    int explicit_n = *n - (ell ? 1 : 0), e = rank - explicit_n;
    if (e < 0 || (!ell && e != 0) || rank > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "a term has %d labels for an operand of rank %d", explicit_n, rank);
        return GQ_ESHAPE;
    }
    if (e_out) {
        *e_out = e;
        return GQ_OK;
    }
    int tmp[GQ_MAX_DIMS], m = 0;
    for (int i = 0; i < *n; i++)
        if (lab[i] >= 0)
            tmp[m++] = lab[i];
        else
            for (int j = 0; j < e; j++)
                tmp[m++] = S_LETTERS + E - e + j;
    memcpy(lab, tmp, (size_t)m * sizeof *lab);
    *n = m;
    return GQ_OK;
}

static gq_status s_parse(const char *eqn, gq_onnx_val_t *const *in, int nin, s_eq_t *q, char *err,
                         size_t errlen)
{
    const char *arrow = strstr(eqn, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eqn) : strlen(eqn);
    bool ell[S_MAX_OPS];
    int E = 0, k = 0, e[S_MAX_OPS];
    gq_status rc = GQ_OK;
    memset(q, 0, sizeof *q);
    for (size_t at = 0; at <= lhs_len; k++) {
        size_t end = at;
        while (end < lhs_len && eqn[end] != ',')
            end++;
        if (k >= nin) {
            gq_errf(err, errlen, "equation '%s' has more terms than the %d inputs", eqn, nin);
            return GQ_EPARAM;
        }
        if ((rc = s_term(eqn + at, end - at, q->lab[k], &q->ndims[k], &ell[k], err, errlen)) ||
            (rc = s_expand(q->lab[k], &q->ndims[k], in[k]->desc.ndim, ell[k], 0, &e[k], err,
                           errlen)))
            return rc;
        E = e[k] > E ? e[k] : E;
        at = end + 1;
    }
    if (k != nin) {
        gq_errf(err, errlen, "equation '%s' has %d terms for %d inputs", eqn, k, nin);
        return GQ_EPARAM;
    }
    q->nin = nin;
    int count[S_LABELS] = {0};
    for (int i = 0; i < S_LABELS; i++)
        q->size[i] = -1;
    for (k = 0; k < nin; k++) {
        if ((rc =
                 s_expand(q->lab[k], &q->ndims[k], in[k]->desc.ndim, ell[k], E, NULL, err, errlen)))
            return rc;
        bool seen[S_LABELS] = {false};
        for (int d = 0; d < q->ndims[k]; d++) {
            int l = q->lab[k][d];
            int64_t s = in[k]->desc.shape[d];
            bool bcast = l >= S_LETTERS; /* ellipsis dims broadcast; letters must agree */
            if (q->size[l] < 0 || (bcast && q->size[l] == 1))
                q->size[l] = s;
            else if (s != q->size[l] && !(bcast && s == 1)) {
                gq_errf(err, errlen, "input %d dim %d is %lld, the label's size elsewhere %lld", k,
                        d, (long long)s, (long long)q->size[l]);
                return GQ_ESHAPE;
            }
            count[l] += !seen[l], seen[l] = true;
        }
    }
    bool in_out[S_LABELS] = {false};
    if (arrow) {
        int n, parsed[GQ_MAX_DIMS];
        bool oell;
        const char *o = arrow + 2;
        if ((rc = s_term(o, strlen(o), parsed, &n, &oell, err, errlen)))
            return rc;
        q->nout = 0;
        for (int i = 0; i < n; i++) {
            int ids[GQ_MAX_DIMS], m = 0;
            if (parsed[i] < 0)
                for (int j = 0; j < E; j++)
                    ids[m++] = S_LETTERS + j;
            else
                ids[m++] = parsed[i];
            for (int j = 0; j < m; j++) {
                if (q->size[ids[j]] < 0 || in_out[ids[j]] || q->nout >= GQ_MAX_DIMS) {
                    gq_errf(err, errlen, "output label %d of '%s' is not an input label, or twice",
                            i, eqn);
                    return GQ_EPARAM;
                }
                in_out[ids[j]] = true;
                q->out[q->nout++] = ids[j];
            }
        }
    } else { /* implicit: the ellipsis dims, then the labels used once, in ASCII order */
        for (int j = 0; j < E; j++)
            q->out[q->nout++] = S_LETTERS + j, in_out[S_LETTERS + j] = true;
        for (int l = 0; l < S_LETTERS; l++)
            if (count[l] == 1 && q->nout < GQ_MAX_DIMS)
                q->out[q->nout++] = l, in_out[l] = true;
    }
    for (int l = 0; l < S_LABELS; l++)
        if (q->size[l] >= 0 && !in_out[l])
            q->sum[q->nsum++] = l;
    return GQ_OK;
}

/* Advances the index of the labels ls[0..n) (last fastest); false after the last. */
static bool s_next(int64_t *idx, const int *ls, int n, const int64_t *size)
{
    for (int i = n - 1; i >= 0; i--) {
        if (++idx[ls[i]] < size[ls[i]])
            return true;
        idx[ls[i]] = 0;
    }
    return false;
}

/* dst = the elements of src at every index of labels ls[0..n) (last fastest), src's element
 * stride for label l in st[l] (0: src does not vary with it). Up to GQ_MAX_DIMS labels by
 * gq_onnx_strided_copy (dims merged, contiguous runs copied whole), more one by one. */
static void s_gather(float *dst, const float *src, const int *ls, int n, const int64_t *st,
                     const int64_t *size)
{
    if (n <= GQ_MAX_DIMS) {
        gq_tdesc_t od = {.dtype = GQ_F32, .ndim = n};
        int64_t sst[GQ_MAX_DIMS];
        for (int i = 0; i < n; i++)
            od.shape[i] = size[ls[i]], sst[i] = st[ls[i]];
        gq_onnx_strided_copy(&od, sizeof *src, (const char *)src, 0, sst, (char *)dst);
        return;
    }
    int64_t idx[S_LABELS] = {0}, inner = size[ls[n - 1]], ist = st[ls[n - 1]];
    do {
        int64_t off = 0;
        for (int i = 0; i < n - 1; i++)
            off += idx[ls[i]] * st[ls[i]];
        for (int64_t j = 0; j < inner; j++)
            *dst++ = src[off + j * ist];
    } while (s_next(idx, ls, n - 1, size));
}

/* Whether an operand of numel elements is exactly its labels ls[0..n) in that order,
 * contiguous (each label's stride the product of the sizes after it; size-1 labels aside):
 * then the GEMM reads it in place. */
static bool s_in_order(const int *ls, int n, const int64_t *st, const int64_t *size, int64_t numel)
{
    int64_t want = 1;
    for (int i = n - 1; i >= 0; i--) {
        if (size[ls[i]] != 1 && st[ls[i]] != want)
            return false;
        want *= size[ls[i]];
    }
    return want == numel;
}

/* l = three label runs x, y, z (each of the given count) as x, z, y: the operand read
 * transposed. */
static void s_swap_runs(const int *l, int nx, int ny, int nz, int *out)
{
    memcpy(out, l, (size_t)nx * sizeof *l);
    memcpy(out + nx, l + nx + ny, (size_t)nz * sizeof *l);
    memcpy(out + nx + nz, l + nx, (size_t)ny * sizeof *l);
}

/* The batch of products c[i] = a[i] b[i] (a [M, K], or [K, M] when ta; b [K, N], or [N, K]
 * when tb): on gq_onnx_sgemm_rows when a's rows are contiguous and N whole vectors (b packed
 * once per entry, no per-call packing or beta pass, split over the pool by batch entry and
 * row band), else an OpenBLAS sgemm per entry. */
typedef struct {
    int64_t M, N, K, nband;
    const float *a, *pk;
    const float **rows;
    float *c;
} s_rows_job_t;

#define S_BAND 96 /* rows per task: 16 tiles of 6 */

static void s_rows_task(void *ctx, int64_t t, int tid)
{
    (void)tid;
    const s_rows_job_t *j = ctx;
    int64_t i = t / j->nband, r0 = t % j->nband * S_BAND;
    int64_t m = j->M - r0 < S_BAND ? j->M - r0 : S_BAND;
    const float **rows = j->rows + i * j->M + r0;
    for (int64_t r = 0; r < m; r++)
        rows[r] = j->a + (i * j->M + r0 + r) * j->K;
    const gq_onnx_rows_t pr = {rows, j->K, j->pk + i * j->K * j->N};
    gq_onnx_sgemm_rows(m, j->N, &pr, 1, NULL, false, j->c + (i * j->M + r0) * j->N, j->N);
}

static void s_products(int64_t B, int64_t M, int64_t N, int64_t K, bool ta, bool tb, const float *a,
                       const float *b, float *c)
{
    size_t cp = 0, cr = 0;
    float *pk = NULL;
    const float **rows = NULL;
    if (!ta && N % 8 == 0 && K <= 1024) {
        pk = gq_onnx_scratch((size_t)(B * K * N) * sizeof *pk, &cp);
        rows = gq_onnx_scratch((size_t)(B * M) * sizeof *rows, &cr);
    }
    if (pk && rows) {
        for (int64_t i = 0; i < B; i++)
            gq_onnx_rows_pack(b + i * K * N, N, K, tb ? K : 1, tb ? 1 : N, pk + i * K * N);
        s_rows_job_t j = {M, N, K, (M + S_BAND - 1) / S_BAND, a, pk, rows, c};
        gq_par_for_work(B * j.nband, B * M * N * K, s_rows_task, &j);
    } else {
        for (int64_t i = 0; i < B; i++)
            gq_onnx_sgemm(ta, tb, M, N, K, 1.0f, a + i * M * K, ta ? M : K, b + i * K * N,
                          tb ? K : N, 0.0f, c + i * M * N, N);
    }
    gq_onnx_scratch_free(pk, cp);
    gq_onnx_scratch_free(rows, cr);
}

/* The product of the sizes of labels ls[0..n). */
static int64_t s_size(const int *ls, int n, const int64_t *size)
{
    int64_t v = 1;
    for (int i = 0; i < n; i++)
        v *= size[ls[i]];
    return v;
}

/* Two f32 operands as batched GEMMs: the output's labels in both operands are the batch, in
 * one only its rows (a) or columns (b), the summed labels the inner dim k (a label summed in
 * one operand only is in k with the other's stride 0, so that operand repeats along it).
 * st[k][l]: operand k's element stride for label l. *done false (nothing done) when each
 * GEMM would be under 64 multiply-adds, or the copies over 4x the operands' and output's
 * bytes plus 64 MB (a broadcast operand repeated): the direct loop then. */
static gq_status s_lowered(const s_eq_t *q, gq_onnx_val_t *const *in, int64_t st[2][S_LABELS],
                           gq_onnx_val_t *out, bool *done, char *err, size_t errlen)
{
    int bl[GQ_MAX_DIMS], ml[GQ_MAX_DIMS], nl[GQ_MAX_DIMS], nb = 0, nm = 0, nn = 0;
    bool used[2][S_LABELS] = {{false}};
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < q->ndims[k]; d++)
            used[k][q->lab[k][d]] = true;
    for (int i = 0; i < q->nout; i++) {
        int l = q->out[i];
        if (used[0][l] && used[1][l])
            bl[nb++] = l;
        else if (used[0][l])
            ml[nm++] = l;
        else
            nl[nn++] = l;
    }
    int64_t B = s_size(bl, nb, q->size), M = s_size(ml, nm, q->size), N = s_size(nl, nn, q->size),
            K = s_size(q->sum, q->nsum, q->size);
    /* a [B, M, K], b [B, K, N], c [B, M, N], by label lists */
    int la[S_LABELS], lb[S_LABELS], lc[S_LABELS], na = 0, nbb = 0, nc = 0;
    for (int i = 0; i < nb; i++)
        la[na++] = lb[nbb++] = lc[nc++] = bl[i];
    for (int i = 0; i < nm; i++)
        la[na++] = lc[nc++] = ml[i];
    for (int i = 0; i < q->nsum; i++)
        la[na++] = lb[nbb++] = q->sum[i];
    for (int i = 0; i < nn; i++)
        lb[nbb++] = lc[nc++] = nl[i];
    /* every size is under the product of all of them, which s_einsum bounded */
    size_t sa = (size_t)(B * M * K) * sizeof(float), sb = (size_t)(B * K * N) * sizeof(float),
           sc = (size_t)(B * M * N) * sizeof(float), ca = 0, cb = 0, cc = 0;
    size_t cap = 4 * (in[0]->nbytes + in[1]->nbytes + out->nbytes) + ((size_t)64 << 20);
    *done = M * N * K >= 64 && sa + sb + sc <= cap;
    if (!*done)
        return GQ_OK;
    /* Operands already laid out as [batch, rows, k] or [batch, k, rows] (then transposed
     * by the GEMM) are read in place, a result in the output's order written there. */
    int swapped[S_LABELS];
    int64_t na_el = gq_tdesc_numel(&in[0]->desc), nb_el = gq_tdesc_numel(&in[1]->desc);
    bool a_in = s_in_order(la, na, st[0], q->size, na_el), ta = false;
    bool b_in = s_in_order(lb, nbb, st[1], q->size, nb_el), tb = false;
    if (!a_in) {
        s_swap_runs(la, nb, nm, q->nsum, swapped);
        a_in = ta = s_in_order(swapped, na, st[0], q->size, na_el);
    }
    if (!b_in) {
        s_swap_runs(lb, nb, q->nsum, nn, swapped);
        b_in = tb = s_in_order(swapped, nbb, st[1], q->size, nb_el);
    }
    bool c_out = nc == q->nout && !memcmp(lc, q->out, (size_t)nc * sizeof *lc);
    float *a = a_in ? in[0]->data : gq_onnx_scratch(sa, &ca);
    float *b = b_in ? in[1]->data : gq_onnx_scratch(sb, &cb);
    float *c = c_out ? out->data : gq_onnx_scratch(sc, &cc);
    if (a && b && c) {
        if (!a_in)
            s_gather(a, in[0]->data, la, na, st[0], q->size);
        if (!b_in)
            s_gather(b, in[1]->data, lb, nbb, st[1], q->size);
        s_products(B, M, N, K, ta, tb, a, b, c);
        /* c's strides by label, then the output in its label order */
        int64_t cst[S_LABELS] = {0}, s = 1;
        for (int i = nc - 1; i >= 0; i--)
            cst[lc[i]] = s, s *= q->size[lc[i]];
        if (!c_out)
            s_gather(out->data, c, q->out, q->nout, cst, q->size);
    }
    gq_status rc = a && b && c ? GQ_OK : GQ_ENOMEM;
    if (rc)
        gq_errf(err, errlen, "out of memory for the GEMM copies of a [%lld, %lld, %lld] product",
                (long long)M, (long long)K, (long long)N);
    if (!a_in)
        gq_onnx_scratch_free(a, ca);
    if (!b_in)
        gq_onnx_scratch_free(b, cb);
    if (!c_out)
        gq_onnx_scratch_free(c, cc);
    return rc;
}

static gq_status s_einsum(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    char eqn[256];
    s_eq_t q;
    gq_status rc = gq_onnx_attr_str(n, "equation", "", eqn, sizeof eqn, err, errlen);
    if (rc || (rc = gq_onnx_need(in, nin, 1, err, errlen)))
        return rc;
    if (nin > S_MAX_OPS) {
        gq_errf(err, errlen, "%d operands, at most %d", nin, S_MAX_OPS);
        return GQ_ESHAPE;
    }
    gq_dtype_t dt = in[0]->desc.dtype;
    for (int k = 0; k < nin; k++)
        if (!in[k] || in[k]->desc.dtype != dt || !gq_onnx_dtype_real(dt)) {
            gq_errf(err, errlen, "input %d: every input must be present and of one real type", k);
            return GQ_EDTYPE;
        }
    if ((rc = s_parse(eqn, in, nin, &q, err, errlen)))
        return rc;
    gq_tdesc_t od = {.dtype = dt, .ndim = q.nout};
    int64_t steps = 1;
    for (int i = 0; i < q.nout; i++)
        od.shape[i] = q.size[q.out[i]];
    for (int l = 0; l < S_LABELS; l++)
        if (q.size[l] >= 0 && __builtin_mul_overflow(steps, q.size[l] ? q.size[l] : 1, &steps))
            steps = S_MAX_STEPS + 1;
    if (steps > S_MAX_STEPS) {
        gq_errf(err, errlen, "'%s' needs more than %lld multiply-adds", eqn,
                (long long)S_MAX_STEPS);
        return GQ_ETOOBIG;
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    /* per operand: its labels and the element stride its dims with each add up to (a
     * broadcast dim adds nothing) */
    int64_t st[S_MAX_OPS][GQ_MAX_DIMS];
    int sl[S_MAX_OPS][GQ_MAX_DIMS], nsl[S_MAX_OPS] = {0};
    for (int k = 0; k < nin; k++) {
        int64_t s = 1;
        for (int d = q.ndims[k] - 1; d >= 0; d--) {
            int l = q.lab[k][d], j = 0;
            while (j < nsl[k] && sl[k][j] != l)
                j++;
            if (j == nsl[k])
                sl[k][nsl[k]++] = l, st[k][j] = 0;
            if (in[k]->desc.shape[d] != 1 || q.size[l] == 1)
                st[k][j] += s;
            s *= in[k]->desc.shape[d];
        }
    }
    /* Two f32 operands, no empty dim: GEMMs, unless they would be tiny (s_lowered). */
    bool nz = true, done = false;
    for (int l = 0; l < S_LABELS; l++)
        nz = nz && q.size[l] != 0;
    if (nin == 2 && dt == GQ_F32 && nz) {
        int64_t lst[2][S_LABELS] = {{0}};
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < nsl[k]; j++)
                lst[k][sl[k][j]] = st[k][j];
        if ((rc = s_lowered(&q, in, lst, out, &done, err, errlen)) || done)
            return rc;
    }
    bool ints = gq_onnx_dtype_int(dt) || dt == GQ_BOOL;
    int64_t idx[S_LABELS] = {0}, total = gq_tdesc_numel(&od);
    bool empty_sum = false;
    for (int i = 0; i < q.nsum; i++)
        empty_sum = empty_sum || q.size[q.sum[i]] == 0;
    for (int64_t o = 0; o < total; o++) {
        double acc = 0;
        int64_t iacc = 0;
        for (int i = 0; i < q.nsum; i++)
            idx[q.sum[i]] = 0;
        do {
            if (empty_sum)
                break;
            double p = 1;
            int64_t ip = 1;
            for (int k = 0; k < nin; k++) {
                int64_t off = 0;
                for (int j = 0; j < nsl[k]; j++)
                    off += idx[sl[k][j]] * st[k][j];
                if (ints)
                    ip *= gq_onnx_geti(in[k]->data, dt, off);
                else
                    p *= gq_onnx_getd(in[k]->data, dt, off);
            }
            acc += p, iacc += ip;
        } while (s_next(idx, q.sum, q.nsum, q.size));
        if (ints)
            gq_onnx_seti(out->data, dt, o, iacc);
        else
            gq_onnx_setd(out->data, dt, o, acc);
        s_next(idx, q.out, q.nout, q.size);
    }
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_einsum[] = {
    {"Einsum", 12, s_einsum},
};
const int gq_onnx_kernels_einsum_count = GQ_ONNX_COUNT(gq_onnx_kernels_einsum);
