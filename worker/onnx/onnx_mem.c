/* What shape inference (onnx_infer.c) tells about a plan once the graph inputs are bound:
 * the memory of a run's values (liveness from producer to last reader, and one arena with
 * offsets assigned greedily), the printed plan, and the check of a run's outputs against
 * the inferred types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_infer.h"
#include "optable.h"
#include "util.h"

/* One value's buffer: bytes (64-byte aligned), live from step start to step end. */
typedef struct {
    size_t bytes, off;
    int start, end;
} s_buf_t;

static size_t s_align(size_t n)
{
    return n > SIZE_MAX - 63 ? SIZE_MAX & ~(size_t)63 : (n + 63) & ~(size_t)63;
}

/* info[0..p->nslots) inferred for binding bind (the caller frees *info). */
static gq_status s_infer(const gq_onnx_plan_t *p, const gq_onnx_info_t *parent_info,
                         const gq_onnx_bind_t *bind, gq_onnx_syms_t *syms, gq_onnx_info_t **info,
                         char *err, size_t errlen)
{
    if (!(*info = calloc((size_t)p->nslots + 1, sizeof **info))) {
        gq_errf(err, errlen, "out of memory inferring shapes");
        return GQ_ENOMEM;
    }
    gq_status rc = gq_onnx_infer(p, parent_info, bind, syms, *info, NULL, NULL, err, errlen);
    if (rc) {
        free(*info);
        *info = NULL;
    }
    return rc;
}

static int s_by_size(const void *a, const void *b)
{
    const s_buf_t *x = a, *y = b;
    return x->bytes != y->bytes ? (x->bytes < y->bytes) - (x->bytes > y->bytes)
                                : (x->start > y->start) - (x->start < y->start);
}

static int s_by_off(const void *a, const void *b)
{
    const s_buf_t *x = *(const s_buf_t *const *)a, *y = *(const s_buf_t *const *)b;
    return (x->off > y->off) - (x->off < y->off);
}

/* Places every buffer, largest first, at the lowest offset where it overlaps no placed
 * buffer that is live at the same time; returns the arena's size. */
static gq_status s_arena(s_buf_t *b, int n, size_t *size)
{
    const s_buf_t **conf = malloc(((size_t)n + 1) * sizeof *conf);
    if (!conf)
        return GQ_ENOMEM;
    qsort(b, (size_t)n, sizeof *b, s_by_size);
    *size = 0;
    for (int i = 0; i < n; i++) {
        int nc = 0;
        for (int j = 0; j < i; j++)
            if (b[j].start <= b[i].end && b[i].start <= b[j].end)
                conf[nc++] = &b[j];
        qsort(conf, (size_t)nc, sizeof *conf, s_by_off);
        size_t off = 0;
        for (int j = 0; j < nc; j++) {
            if (off + b[i].bytes <= conf[j]->off)
                break;
            if (conf[j]->off + conf[j]->bytes > off)
                off = conf[j]->off + conf[j]->bytes;
        }
        b[i].off = off;
        if (off + b[i].bytes > *size)
            *size = off + b[i].bytes;
    }
    free(conf);
    return GQ_OK;
}

static gq_status s_memory(const gq_onnx_plan_t *p, const gq_onnx_info_t *parent_info,
                          const gq_onnx_bind_t *bind, gq_onnx_syms_t *syms, gq_onnx_mem_t *m,
                          char *err, size_t errlen)
{
    gq_onnx_info_t *info = NULL;
    memset(m, 0, sizeof *m);
    gq_status rc = s_infer(p, parent_info, bind, syms, &info, err, errlen);
    if (rc)
        return rc;
    size_t cap = 1;
    for (int k = 0; k < p->nsteps; k++)
        cap += (size_t)p->steps[k].nout + 1;
    s_buf_t *b = calloc(cap, sizeof *b);
    size_t *live = calloc((size_t)p->nsteps + 1, sizeof *live);
    int n = 0;
    rc = b && live ? GQ_OK : GQ_ENOMEM;
    for (int k = 0; k < p->nsteps && !rc; k++) {
        const gq_onnx_step_t *st = &p->steps[k];
        for (int o = 0; o < st->nout; o++) {
            int sl = st->out[o];
            size_t nb;
            if (sl < 0)
                continue;
            if (!gq_onnx_info_known(&info[sl], &nb)) {
                m->nunknown++;
                continue;
            }
            int end = p->last_use[sl] < k ? k : p->last_use[sl];
            b[n++] = (s_buf_t){
                .bytes = s_align(nb), .start = k, .end = end < p->nsteps ? end : p->nsteps - 1};
            m->nvalues++;
            for (int j = k; j <= b[n - 1].end; j++)
                live[j] += nb;
        }
        gq_onnx_mem_t bm[2];
        gq_onnx_bind_t none = {0};
        bm[1] = (gq_onnx_mem_t){0}; /* Loop and Scan have one subgraph, their body */
        for (int br = 0; br < 2 && st->branch[br] && !rc; br++)
            rc = s_memory(st->branch[br], info, &none, syms, &bm[br], err, errlen);
        if (st->branch[0] && !rc) { /* the branch that runs: the larger */
            int w = bm[1].peak_bytes > bm[0].peak_bytes;
            live[k] += bm[w].peak_bytes;
            b[n++] = (s_buf_t){.bytes = s_align(bm[0].arena_bytes > bm[1].arena_bytes
                                                    ? bm[0].arena_bytes
                                                    : bm[1].arena_bytes),
                               .start = k,
                               .end = k};
            m->nunknown += bm[w].nunknown;
        }
    }
    for (int k = 0; k < p->nsteps && !rc; k++)
        if (live[k] > m->peak_bytes)
            m->peak_bytes = live[k], m->peak_step = k;
    if (!rc)
        rc = s_arena(b, n, &m->arena_bytes);
    if (rc == GQ_ENOMEM)
        gq_errf(err, errlen, "out of memory planning memory");
    free(b), free(live), free(info);
    return rc;
}

gq_status gq_onnx_plan_memory(const gq_onnx_plan_t *self, int64_t batch, gq_onnx_mem_t *mem,
                              char *err, size_t errlen)
{
    gq_onnx_syms_t syms = {.n = 0};
    gq_onnx_bind_t bind = {.batch = batch};
    return s_memory(self, NULL, &bind, &syms, mem, err, errlen);
}

size_t gq_onnx_plan_peak_bytes(const gq_onnx_plan_t *self, int64_t batch)
{
    gq_onnx_mem_t m;
    char err[GQ_ERRLEN];
    return gq_onnx_plan_memory(self, batch, &m, err, sizeof err) ? 0 : m.peak_bytes;
}

static void s_print(const gq_onnx_plan_t *p, const gq_onnx_info_t *info, gq_onnx_syms_t *syms,
                    FILE *f, int depth)
{
    char t[160];
    int ind = 2 * depth;
    fprintf(f, "%*s%d steps, %d folded at plan time, %d plan constants\n", ind, "", p->nsteps,
            p->nfolded, p->nfold);
    for (int i = 0; i < p->ninputs; i++)
        fprintf(f, "%*sinput  %-28s %s\n", ind, "", p->names[p->inputs[i]],
                gq_onnx_info_str(&info[p->inputs[i]], syms, t, sizeof t));
    for (int k = 0; k < p->nsteps; k++) {
        const gq_onnx_step_t *st = &p->steps[k];
        fprintf(f, "%*s%4d %-18s %-28.28s ->", ind, "", k, st->k->op, gq_onnx_node_name(st->node));
        for (int o = 0; o < st->nout; o++)
            fprintf(f, "%s %s", o ? "," : "",
                    st->out[o] < 0 ? "-" : gq_onnx_info_str(&info[st->out[o]], syms, t, sizeof t));
        fprintf(f, "\n");
        for (int b = 0; b < 2 && st->branch[b]; b++) {
            gq_onnx_info_t *bi = NULL;
            gq_onnx_bind_t none = {0};
            char err[GQ_ERRLEN];
            fprintf(f, "%*s     %s:\n", ind, "", !st->branch[1] ? "body" : b ? "else" : "then");
            if (s_infer(st->branch[b], info, &none, syms, &bi, err, sizeof err)) {
                fprintf(f, "%*s%s\n", ind + 6, "", err);
                continue;
            }
            s_print(st->branch[b], bi, syms, f, depth + 3);
            free(bi);
        }
    }
    for (int o = 0; o < p->noutputs; o++)
        fprintf(
            f, "%*soutput %-28s %s\n", ind, "", p->outputs[o] >= 0 ? p->names[p->outputs[o]] : "?",
            p->outputs[o] >= 0 ? gq_onnx_info_str(&info[p->outputs[o]], syms, t, sizeof t) : "?");
}

void gq_onnx_plan_print(const gq_onnx_plan_t *self, FILE *f)
{
    gq_onnx_syms_t syms = {.n = 0};
    gq_onnx_bind_t bind = {0};
    gq_onnx_info_t *info = NULL;
    char err[GQ_ERRLEN];
    if (s_infer(self, NULL, &bind, &syms, &info, err, sizeof err)) {
        fprintf(f, "%s\n", err);
        return;
    }
    s_print(self, info, &syms, f, 0);
    free(info);
}

gq_status gq_onnx_plan_check_outputs(const gq_onnx_plan_t *self, const gq_view_t *in, int nin,
                                     const gq_view_t *out, int nout, char *err, size_t errlen)
{
    gq_onnx_syms_t syms = {.n = 0};
    gq_onnx_bind_t bind = {.in = in, .nin = nin};
    gq_onnx_info_t *info = NULL;
    gq_status rc = s_infer(self, NULL, &bind, &syms, &info, err, errlen);
    for (int o = 0; o < nout && o < self->noutputs && !rc; o++) {
        const gq_onnx_info_t *v = self->outputs[o] >= 0 ? &info[self->outputs[o]] : NULL;
        const gq_tdesc_t *d = &out[o].desc;
        bool ok =
            !v || ((!v->dtype || v->dtype == d->dtype) && (v->rank < 0 || v->rank == d->ndim));
        for (int k = 0; ok && v && k < v->rank; k++)
            ok = v->dim[k].sym || v->dim[k].c == d->shape[k];
        if (!ok) {
            char a[160], b[160];
            gq_errf(err, errlen, "output %d '%s': shape inference says %s, the run gave %s", o,
                    self->names[self->outputs[o]], gq_onnx_info_str(v, &syms, a, sizeof a),
                    gq_tdesc_str(d, b, sizeof b));
            rc = GQ_EINTERNAL;
        }
    }
    free(info);
    return rc;
}
