/* bench_roundtrip: what one small gpuq job costs next to the ZeroMQ it is built on, all
 * measured in one run on one machine, with every answer checked.
 *
 *   (a) raw REQ/REP round trip and (b) raw PUSH/PULL throughput: 64-byte messages over tcp
 *       loopback to a peer in a forked process (a process, like the servers of (c) and
 *       (d): both sides pay for the same process boundaries and the same scheduler);
 *   (c) gq_client_run and (d) gq_client_submit/collect of tensor.scale over f32[16] (64
 *       bytes) against real gpuq-broker and gpuq-worker processes, fork/exec'd on free
 *       ports;
 *   extras: the job refused at admission (client -> broker -> client only), a raw relay
 *       (zmq_proxy process + DEALER echo process: ours' topology without our code), and the
 *       embedded "local" cluster.
 *
 * Then the ratios against the targets. Each phase also prints the CPU time and context
 * switches per operation of every process (--verbose: of every thread), where a profile
 * starts. Checked: echoes byte for byte, sequence numbers at the sink and through the
 * relay, all 16 values of every job. Exit status 1 on a wrong answer or failure (and with
 * --strict on a missed target), else 0. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>
#include "benchlib.h"
#include "gpuq.h"

#define S_NELEM 16 /* f32[16]: a 64-byte payload, like the raw messages */
#define S_PAYLOAD (S_NELEM * 4)
#define S_FACTOR 3.0
#define S_MAX_WINDOWS 8
#define S_MAX_REPEAT 8
#define S_ALARM_S 300

enum {
    S_PH_RAW = 1,
    S_PH_SYNC = 2,
    S_PH_PIPE = 4,
    S_PH_RELAY = 8,
    S_PH_LOCAL = 16,
    S_PH_ALL = 31,
};
static const char *const s_phase_names[] = {"raw", "sync", "pipe", "relay", "local"};

typedef struct {
    long rt;     /* measured round trips: raw, relay and sync */
    long warmup; /* round trips or jobs before the clock starts */
    long msgs;   /* raw PUSH/PULL messages */
    long jobs;   /* pipelined jobs (and relay messages) per timed segment */
    int repeat;  /* timed segments or batches per throughput; the best counts */
    int windows[S_MAX_WINDOWS];
    int nwindows;
    int threads; /* gpuq-worker --threads */
    int credits; /* gpuq-worker --credits; 0 = its default, 64 x threads */
    int phases;  /* S_PH_* */
    int pin;     /* this process on CPU 0, every server on CPU 1 */
    int verbose;
    int strict;
    int quick;
} s_opts_t;

typedef struct {
    pid_t broker, worker;
    char front[64], back[64];
} s_cluster_t;

/* A job with its own input tensor, resubmitted with new values each time round. */
typedef struct {
    gq_job_t *job;
    gq_tensor_t *in;
    uint64_t seq;
} s_slot_t;

static uint64_t s_checked_jobs;

static int s_server_cpu(const s_opts_t *o)
{
    return o->pin ? 1 : -1;
}

static void *s_raw_socket(void *ctx, int type, int unlimited)
{
    void *s = zmq_socket(ctx, type);
    int hwm = 0;
    if (s && unlimited) {
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    }
    return s;
}

static void s_fill_raw(unsigned char *buf, uint64_t seq)
{
    memset(buf, 0xa5, S_PAYLOAD);
    memcpy(buf, &seq, sizeof seq);
    buf[S_PAYLOAD - 1] = (unsigned char)seq;
}

static int s_raw_ok(const unsigned char *buf, int len, uint64_t seq)
{
    unsigned char want[S_PAYLOAD];
    s_fill_raw(want, seq);
    return len == S_PAYLOAD && !memcmp(buf, want, S_PAYLOAD);
}

/* Best of the per-segment rates, with all of them for the output. */
typedef struct {
    double best, rates[S_MAX_REPEAT];
    int n;
} s_rates_t;

static void s_rates_add(s_rates_t *r, double rate)
{
    if (r->n < S_MAX_REPEAT)
        r->rates[r->n++] = rate;
    if (rate > r->best)
        r->best = rate;
}

static const char *s_rates_str(const s_rates_t *r, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "best of %d:", r->n);
    for (int i = 0; i < r->n && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s %.1f", i ? "," : "", r->rates[i] / 1e3);
    return buf;
}

/* ---- raw peers: forked processes (no exec) with their own ZeroMQ context ---- */

typedef struct {
    pid_t pid;
    int ctl; /* parent -> child: how many messages the sink is to take next */
    int rep; /* child -> parent: the endpoint, then one fault count per batch */
    char ep[64];
} s_peer_t;

static void s_echo_loop(void *s)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0)
            return;
        size_t n = zmq_msg_size(&m);
        if (zmq_msg_send(&m, s, 0) < 0 || n == 0)
            return; /* an empty message says stop */
    }
}

static void s_sink_loop(void *s, int ctl, int rep)
{
    uint64_t seq = 0, n;
    while (!gqb_read_all(ctl, &n, sizeof n) && n) {
        uint64_t bad = 0;
        for (uint64_t i = 0; i < n; i++, seq++) {
            unsigned char buf[S_PAYLOAD];
            if (!s_raw_ok(buf, zmq_recv(s, buf, sizeof buf, 0), seq))
                bad++;
        }
        gqb_write_all(rep, &bad, sizeof bad);
    }
}

/* Must run while this process holds no ZeroMQ context: a forked child may not use its
 * parent's. */
static s_peer_t s_peer_fork(int type, int cpu)
{
    s_peer_t p;
    int ctl[2], rep[2];
    memset(&p, 0, sizeof p);
    if (pipe(ctl) || pipe(rep))
        gqb_die("pipe: %s", strerror(errno));
    fflush(NULL);
    if ((p.pid = fork()) < 0)
        gqb_die("fork: %s", strerror(errno));
    if (p.pid == 0) {
        if (cpu >= 0)
            gqb_pin_to(cpu);
        close(ctl[1]);
        close(rep[0]);
        void *ctx = zmq_ctx_new();
        void *s = s_raw_socket(ctx, type, 0);
        char ep[64] = "";
        size_t len = sizeof ep;
        if (!s || zmq_bind(s, "tcp://127.0.0.1:*") ||
            zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len))
            _exit(2);
        gqb_write_all(rep[1], ep, sizeof ep);
        if (type == ZMQ_REP)
            s_echo_loop(s);
        else
            s_sink_loop(s, ctl[0], rep[1]);
        zmq_close(s);
        zmq_ctx_term(ctx);
        _exit(0);
    }
    gqb_track_child(p.pid);
    close(ctl[0]);
    close(rep[1]);
    p.ctl = ctl[1];
    p.rep = rep[0];
    if (gqb_read_all(p.rep, p.ep, sizeof p.ep))
        gqb_die("the raw peer did not start");
    p.ep[sizeof p.ep - 1] = 0;
    return p;
}

static void s_peer_end(s_peer_t *p)
{
    close(p->ctl);
    close(p->rep);
    waitpid(p->pid, NULL, 0);
    gqb_forget_child(p->pid);
}

/* Round trips of one 64-byte message on a connected REQ or DEALER socket; latencies in
 * lat. Returns the number of wrong echoes. */
static long s_raw_round_trips(void *s, const s_opts_t *o, uint64_t seq0, gqb_probe_t *pr,
                              uint64_t *lat, double *wall)
{
    long bad = 0;
    uint64_t t_begin = 0;
    for (long i = 0; i < o->warmup + o->rt; i++) {
        unsigned char out[S_PAYLOAD], in[S_PAYLOAD];
        if (i == o->warmup) {
            gqb_probe_begin(pr);
            t_begin = gqb_now_ns();
        }
        s_fill_raw(out, seq0 + (uint64_t)i);
        uint64_t t0 = gqb_now_ns();
        if (zmq_send(s, out, sizeof out, 0) != S_PAYLOAD)
            gqb_die("send: %s", zmq_strerror(errno));
        int rc = zmq_recv(s, in, sizeof in, 0);
        uint64_t t1 = gqb_now_ns();
        if (!s_raw_ok(in, rc, seq0 + (uint64_t)i))
            bad++;
        if (i >= o->warmup)
            lat[i - o->warmup] = t1 - t0;
    }
    *wall = (double)(gqb_now_ns() - t_begin) / 1e9;
    return bad;
}

/* (a) */
static gqb_lat_t s_raw_reqrep(const s_opts_t *o, uint64_t *lat)
{
    gqb_phase = "raw REQ/REP";
    s_peer_t p = s_peer_fork(ZMQ_REP, s_server_cpu(o));
    void *ctx = zmq_ctx_new();
    void *req = s_raw_socket(ctx, ZMQ_REQ, 0);
    if (!req || zmq_connect(req, p.ep))
        gqb_die("connect %s: %s", p.ep, zmq_strerror(errno));
    gqb_probe_t pr = {0};
    gqb_probe_add(&pr, "bench", getpid());
    gqb_probe_add(&pr, "echo", p.pid);
    double wall;
    long bad = s_raw_round_trips(req, o, 0, &pr, lat, &wall);
    gqb_lat_t l = gqb_lat_of(lat, o->rt);
    printf("%-34s median %8.1f us   p99 %8.1f us   (%ld)\n", "(a) raw REQ/REP round trip", l.med_us,
           l.p99_us, o->rt);
    gqb_probe_print(&pr, o->rt, wall, o->verbose);
    char c;
    zmq_send(req, "", 0, 0);
    zmq_recv(req, &c, 1, 0);
    zmq_close(req);
    zmq_ctx_term(ctx);
    s_peer_end(&p);
    if (bad)
        gqb_die("%ld of the echoes were wrong", bad);
    return l;
}

/* (b): a batch is timed from its first send to the sink's report that it has them all;
 * the best of o->repeat batches counts. */
static double s_raw_pushpull(const s_opts_t *o)
{
    gqb_phase = "raw PUSH/PULL";
    s_peer_t p = s_peer_fork(ZMQ_PULL, s_server_cpu(o));
    void *ctx = zmq_ctx_new();
    void *push = s_raw_socket(ctx, ZMQ_PUSH, 0);
    if (!push || zmq_connect(push, p.ep))
        gqb_die("connect %s: %s", p.ep, zmq_strerror(errno));
    gqb_probe_t pr = {0};
    gqb_probe_add(&pr, "bench", getpid());
    gqb_probe_add(&pr, "sink", p.pid);
    uint64_t seq = 0, bad = 0;
    double wall = 0;
    s_rates_t rates = {0};
    for (int batch = 0; batch <= o->repeat; batch++) {
        uint64_t n = batch ? (uint64_t)o->msgs : (uint64_t)o->warmup * 10 + 1, rbad;
        if (batch == 1)
            gqb_probe_begin(&pr);
        gqb_write_all(p.ctl, &n, sizeof n);
        uint64_t t0 = gqb_now_ns();
        for (uint64_t i = 0; i < n; i++, seq++) {
            unsigned char buf[S_PAYLOAD];
            s_fill_raw(buf, seq);
            if (zmq_send(push, buf, sizeof buf, 0) != S_PAYLOAD)
                gqb_die("send: %s", zmq_strerror(errno));
        }
        if (gqb_read_all(p.rep, &rbad, sizeof rbad))
            gqb_die("the sink died");
        uint64_t t1 = gqb_now_ns();
        bad += rbad;
        if (batch) {
            wall += (double)(t1 - t0) / 1e9;
            s_rates_add(&rates, (double)n * 1e9 / (double)(t1 - t0));
        }
    }
    char buf[128];
    printf("%-34s %7.1f k msg/s   (%s)\n", "(b) raw PUSH/PULL throughput", rates.best / 1e3,
           s_rates_str(&rates, buf, sizeof buf));
    gqb_probe_print(&pr, o->msgs * o->repeat, wall, o->verbose);
    uint64_t zero = 0;
    gqb_write_all(p.ctl, &zero, sizeof zero);
    zmq_close(push);
    zmq_ctx_term(ctx);
    s_peer_end(&p);
    if (bad)
        gqb_die("the sink saw %llu wrong or missing messages", (unsigned long long)bad);
    return rates.best;
}

/* ---- raw relay: ours' topology (3 processes, 4 tcp hops) with no gpuq code ---- */

typedef struct {
    pid_t proxy, echo;
    char front[64], back[64];
} s_relay_t;

/* Sends every frame back as it came, the routing id frame included. */
static void s_dealer_echo_loop(void *s)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0 ||
            zmq_msg_send(&m, s, zmq_msg_more(&m) ? ZMQ_SNDMORE : 0) < 0)
            return;
    }
}

/* A zmq_proxy process (ROUTER for clients, DEALER behind) standing for the broker and a
 * DEALER echo process standing for the worker; HWMs unlimited like gpuq's sockets, so a
 * window of 1024 never blocks on them. Forked while this process holds no context. */
static void s_relay_start(s_relay_t *r, int cpu)
{
    int eps[2];
    memset(r, 0, sizeof *r);
    if (pipe(eps))
        gqb_die("pipe: %s", strerror(errno));
    fflush(NULL);
    if ((r->proxy = fork()) == 0) {
        if (cpu >= 0)
            gqb_pin_to(cpu);
        void *ctx = zmq_ctx_new();
        void *front = s_raw_socket(ctx, ZMQ_ROUTER, 1), *back = s_raw_socket(ctx, ZMQ_DEALER, 1);
        char ep[2][64] = {"", ""};
        size_t l0 = sizeof ep[0], l1 = sizeof ep[1];
        if (!front || !back || zmq_bind(front, "tcp://127.0.0.1:*") ||
            zmq_bind(back, "tcp://127.0.0.1:*") ||
            zmq_getsockopt(front, ZMQ_LAST_ENDPOINT, ep[0], &l0) ||
            zmq_getsockopt(back, ZMQ_LAST_ENDPOINT, ep[1], &l1))
            _exit(2);
        gqb_write_all(eps[1], ep, sizeof ep);
        zmq_proxy(front, back, NULL);
        _exit(0);
    }
    if (r->proxy < 0)
        gqb_die("fork: %s", strerror(errno));
    gqb_track_child(r->proxy);
    close(eps[1]);
    if (gqb_read_all(eps[0], r->front, sizeof r->front) ||
        gqb_read_all(eps[0], r->back, sizeof r->back))
        gqb_die("the relay did not start");
    close(eps[0]);
    r->front[sizeof r->front - 1] = r->back[sizeof r->back - 1] = 0;
    fflush(NULL);
    if ((r->echo = fork()) == 0) {
        if (cpu >= 0)
            gqb_pin_to(cpu);
        void *ctx = zmq_ctx_new();
        void *s = s_raw_socket(ctx, ZMQ_DEALER, 1);
        if (!s || zmq_connect(s, r->back))
            _exit(2);
        s_dealer_echo_loop(s);
        _exit(0);
    }
    if (r->echo < 0)
        gqb_die("fork: %s", strerror(errno));
    gqb_track_child(r->echo);
}

/* Round trips, then a window of messages kept in flight (the echo answers in order, so
 * sequence numbers come back in order). Returns messages per second. */
static double s_raw_relay(const s_opts_t *o, int window, uint64_t *lat, gqb_lat_t *rt)
{
    gqb_phase = "raw relay";
    s_relay_t r;
    s_relay_start(&r, s_server_cpu(o));
    void *ctx = zmq_ctx_new();
    void *c = s_raw_socket(ctx, ZMQ_DEALER, 1);
    if (!c || zmq_connect(c, r.front))
        gqb_die("connect %s: %s", r.front, zmq_strerror(errno));
    gqb_probe_t pr = {0};
    gqb_probe_add(&pr, "bench", getpid());
    gqb_probe_add(&pr, "proxy", r.proxy);
    gqb_probe_add(&pr, "echo", r.echo);
    double wall;
    long bad = s_raw_round_trips(c, o, 0, &pr, lat, &wall);
    *rt = gqb_lat_of(lat, o->rt);
    printf("%-34s median %8.1f us   p99 %8.1f us   (%ld)\n"
           "           (REQ/REP's 64 bytes through a zmq_proxy process and a DEALER echo "
           "process:\n"
           "           ours' 3 processes and 4 tcp hops, no gpuq code)\n",
           "    extra: raw relay round trip", rt->med_us, rt->p99_us, o->rt);
    gqb_probe_print(&pr, o->rt, wall, o->verbose);

    uint64_t seq0 = (uint64_t)(o->warmup + o->rt), next = seq0, expect = seq0;
    uint64_t t_seg = 0, t_begin = 0;
    long warm = o->warmup > window ? o->warmup : window;
    long total = warm + o->jobs * o->repeat, got = 0;
    s_rates_t rates = {0};
    unsigned char buf[S_PAYLOAD];
    for (; next - seq0 < (uint64_t)window && next - seq0 < (uint64_t)total; next++) {
        s_fill_raw(buf, next);
        zmq_send(c, buf, sizeof buf, 0);
    }
    while (got < total) {
        if (!s_raw_ok(buf, zmq_recv(c, buf, sizeof buf, 0), expect++))
            bad++;
        if (++got == warm) {
            gqb_probe_begin(&pr);
            t_begin = t_seg = gqb_now_ns();
        } else if (got > warm && (got - warm) % o->jobs == 0) {
            uint64_t now = gqb_now_ns();
            s_rates_add(&rates, (double)o->jobs * 1e9 / (double)(now - t_seg));
            t_seg = now;
        }
        if (next - seq0 < (uint64_t)total) {
            s_fill_raw(buf, next++);
            if (zmq_send(c, buf, sizeof buf, 0) != S_PAYLOAD)
                gqb_die("send: %s", zmq_strerror(errno));
        }
    }
    wall = (double)(gqb_now_ns() - t_begin) / 1e9;
    char rbuf[128];
    printf("%-34s window %4d: %7.1f k msg/s    (%s)\n", "    extra: raw relay pipelined", window,
           rates.best / 1e3, s_rates_str(&rates, rbuf, sizeof rbuf));
    gqb_probe_print(&pr, o->jobs * o->repeat, wall, o->verbose);
    zmq_close(c);
    zmq_ctx_term(ctx);
    gqb_kill_child(r.echo);
    gqb_kill_child(r.proxy);
    if (bad)
        gqb_die("%ld relayed echoes were wrong or out of order", bad);
    return rates.best;
}

/* ---- the gpuq cluster: gpuq-broker and one gpuq-worker process ---- */

static void s_cluster_start(s_cluster_t *c, const s_opts_t *o)
{
    gqb_phase = "starting gpuq-broker and gpuq-worker";
    int fp = gqb_free_port(), bp;
    do
        bp = gqb_free_port();
    while (bp == fp);
    snprintf(c->front, sizeof c->front, "tcp://127.0.0.1:%d", fp);
    snprintf(c->back, sizeof c->back, "tcp://127.0.0.1:%d", bp);
    char *bargv[] = {(char *)gqb_bin("gpuq-broker"),
                     "--frontend",
                     c->front,
                     "--backend",
                     c->back,
                     "--drain-ms",
                     "1000",
                     NULL};
    c->broker = gqb_spawn(bargv, s_server_cpu(o));
    char th[16], cr[16];
    snprintf(th, sizeof th, "%d", o->threads);
    snprintf(cr, sizeof cr, "%d", o->credits > 0 ? o->credits : 64 * o->threads);
    char *wargv[] = {(char *)gqb_bin("gpuq-worker"),
                     "--broker",
                     c->back,
                     "--threads",
                     th,
                     "--credits",
                     cr,
                     "--name",
                     "bench-w0",
                     NULL};
    c->worker = gqb_spawn(wargv, s_server_cpu(o));
    char err[256];
    gq_client_t *cl = gq_client_new(c->front, NULL, err, sizeof err);
    if (!cl)
        gqb_die("client for %s: %s", c->front, err);
    for (int waited = 0;; waited += 20) {
        gq_cluster_info_t info;
        if (gq_client_cluster_info(cl, &info, 500) == GQ_OK && info.workers == 1)
            break;
        if (waitpid(c->broker, NULL, WNOHANG) == c->broker ||
            waitpid(c->worker, NULL, WNOHANG) == c->worker)
            gqb_die("a server exited at start (ports %s, %s taken?)", c->front, c->back);
        if (waited > 10000)
            gqb_die("the worker did not register with the broker within 10 s");
        usleep(20000);
    }
    gq_client_destroy(&cl);
}

static void s_cluster_stop(s_cluster_t *c)
{
    gqb_stop_child(c->worker);
    gqb_stop_child(c->broker);
}

/* ---- jobs: tensor.scale(factor 3) over f32[16], values unique to each job ---- */

/* At most 18 significant bits: exact in f32, and so is three times it. */
static float s_value(uint64_t seq, int k)
{
    return (float)(seq & 0xffff) + 0.25f * (float)k;
}

static void s_slot_init(s_slot_t *s)
{
    int64_t shape[1] = {S_NELEM};
    s->in = gq_tensor_new(GQ_F32, shape, 1);
    s->job = gq_job_new("tensor.scale");
    if (!s->in || !s->job || gq_job_param_float(s->job, "factor", S_FACTOR) ||
        gq_job_input(s->job, s->in))
        gqb_die("cannot build a tensor.scale job");
    gq_job_set_user(s->job, s);
}

static void s_slot_free(s_slot_t *s)
{
    gq_job_destroy(&s->job);
    gq_tensor_destroy(&s->in);
}

/* The input is rewritten only while the job is not in flight, as the API asks. */
static void s_slot_fill(s_slot_t *s, uint64_t seq)
{
    float *x = gq_tensor_data(s->in);
    s->seq = seq;
    for (int k = 0; k < S_NELEM; k++)
        x[k] = s_value(seq, k);
}

static void s_slot_check(const s_slot_t *s)
{
    gq_job_t *j = s->job;
    if (gq_job_status(j) != GQ_OK)
        gqb_die("job %llu failed: %s (%s)", (unsigned long long)s->seq, gq_job_error(j),
                gq_strerror(gq_job_status(j)));
    gq_tensor_t *t = gq_job_output_count(j) == 1 ? gq_job_output(j, 0) : NULL;
    if (!t || gq_tensor_dtype(t) != GQ_F32 || gq_tensor_numel(t) != S_NELEM)
        gqb_die("job %llu: %d outputs, want one f32[16]", (unsigned long long)s->seq,
                gq_job_output_count(j));
    const float *y = gq_tensor_data(t);
    for (int k = 0; k < S_NELEM; k++) {
        float want = (float)((double)s_value(s->seq, k) * S_FACTOR);
        if (y[k] != want)
            gqb_die("job %llu value %d: got %g, want %g", (unsigned long long)s->seq, k,
                    (double)y[k], (double)want);
    }
    s_checked_jobs++;
}

/* (c): gq_client_run, one job at a time. With refused set, every job carries a factor over
 * the op table's limit: the broker refuses it at admission, so the round trip is client ->
 * broker -> client, the path of the raw REQ/REP, and what the full round trip adds to it
 * is the worker's leg. */
static gqb_lat_t s_ours_sync(const char *ep, const gq_client_opts_t *opts, const s_opts_t *o,
                             int refused, gqb_probe_t *pr, const char *label, const char *note,
                             uint64_t *lat)
{
    char err[256];
    gq_client_t *c = gq_client_new(ep, opts, err, sizeof err);
    if (!c)
        gqb_die("client for %s: %s", ep, err);
    s_slot_t s;
    s_slot_init(&s);
    if (refused)
        gq_job_param_float(s.job, "factor", 1e31);
    uint64_t t_begin = 0, queued = 0, compute = 0;
    for (long i = 0; i < o->warmup + o->rt; i++) {
        if (i == o->warmup) {
            gqb_probe_begin(pr);
            t_begin = gqb_now_ns();
        }
        s_slot_fill(&s, (uint64_t)i);
        uint64_t t0 = gqb_now_ns();
        int rc = gq_client_run(c, s.job);
        uint64_t t1 = gqb_now_ns();
        if (!refused)
            s_slot_check(&s);
        else if (rc != GQ_EPARAM || *gq_job_worker(s.job))
            gqb_die("a factor over the limit was not refused at admission: %s (%s)",
                    gq_job_error(s.job), gq_strerror(rc));
        if (i >= o->warmup) {
            gq_job_timing_t tm;
            gq_job_timing(s.job, &tm);
            queued += tm.queued_us;
            compute += tm.compute_us;
            lat[i - o->warmup] = t1 - t0;
        }
    }
    double wall = (double)(gqb_now_ns() - t_begin) / 1e9;
    gqb_lat_t l = gqb_lat_of(lat, o->rt);
    printf("%-34s median %8.1f us   p99 %8.1f us   (%ld)\n", label, l.med_us, l.p99_us, o->rt);
    if (note)
        printf("%s\n", note);
    if (!refused)
        printf("      gq_job_timing means: broker queue %.1f us, worker compute %.1f us\n",
               (double)queued / (double)o->rt, (double)compute / (double)o->rt);
    gqb_probe_print(pr, o->rt, wall, o->verbose);
    s_slot_free(&s);
    gq_client_destroy(&c);
    return l;
}

/* (d): a full window of jobs kept in flight with gq_client_submit/collect. After the
 * warm-up, o->repeat segments of o->jobs answers are timed back to back (the pipe stays
 * full) and the best rate counts: on a loaded 2-CPU machine a segment is slowed by what
 * else runs, never sped up. */
static double s_ours_pipe(const char *ep, const gq_client_opts_t *base, int window,
                          const s_opts_t *o, gqb_probe_t *pr, const char *label)
{
    gq_client_opts_t opts = *base;
    opts.window = window;
    char err[256];
    gq_client_t *c = gq_client_new(ep, &opts, err, sizeof err);
    if (!c)
        gqb_die("client for %s: %s", ep, err);
    s_slot_t *slots = calloc((size_t)window, sizeof *slots);
    if (!slots)
        gqb_die("out of memory for %d jobs", window);
    long warm = o->warmup > window ? o->warmup : window;
    long total = warm + o->jobs * o->repeat, submitted = 0, done = 0;
    uint64_t seq = 0, t_seg = 0, t_begin = 0;
    s_rates_t rates = {0};
    int rc;
    for (int i = 0; i < window && submitted < total; i++, submitted++) {
        s_slot_init(&slots[i]);
        s_slot_fill(&slots[i], seq++);
        if ((rc = gq_client_submit(c, slots[i].job)))
            gqb_die("submit: %s", gq_strerror(rc));
    }
    while (done < total) {
        gq_job_t *j;
        if ((rc = gq_client_collect(c, -1, &j)))
            gqb_die("collect: %s", gq_strerror(rc));
        s_slot_t *s = gq_job_user(j);
        s_slot_check(s);
        if (++done == warm) {
            gqb_probe_begin(pr);
            t_begin = t_seg = gqb_now_ns();
        } else if (done > warm && (done - warm) % o->jobs == 0) {
            uint64_t now = gqb_now_ns();
            s_rates_add(&rates, (double)o->jobs * 1e9 / (double)(now - t_seg));
            t_seg = now;
        }
        if (submitted < total) {
            s_slot_fill(s, seq++);
            if ((rc = gq_client_submit(c, s->job)))
                gqb_die("submit: %s", gq_strerror(rc));
            submitted++;
        }
    }
    double wall = (double)(gqb_now_ns() - t_begin) / 1e9;
    char buf[128];
    printf("%-34s window %4d: %7.1f k jobs/s   (%s)\n", label, window, rates.best / 1e3,
           s_rates_str(&rates, buf, sizeof buf));
    gqb_probe_print(pr, o->jobs * o->repeat, wall, o->verbose);
    for (int i = 0; i < window; i++)
        if (slots[i].job)
            s_slot_free(&slots[i]);
    free(slots);
    gq_client_destroy(&c);
    return rates.best;
}

/* ---- the embedded "local" cluster ---- */

static int s_tids(pid_t *tids, int max)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max)
        if (e->d_name[0] != '.')
            tids[n++] = (pid_t)atoi(e->d_name);
    if (d)
        closedir(d);
    return n;
}

static int s_cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

/* Names the threads that the embedded cluster started, for the per-thread lines: in the
 * order client/local.c starts them, the broker, the worker's compute threads (from
 * gq_worker_new), then the worker's loop. Left alone when the count is not that. */
static void s_label_local_threads(const pid_t *before, int nbefore, int threads)
{
    pid_t now[64], fresh[64];
    int n = s_tids(now, 64), nf = 0;
    for (int i = 0; i < n; i++) {
        int old = 0;
        for (int k = 0; k < nbefore && !old; k++)
            old = now[i] == before[k];
        char path[64], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)now[i]);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = 0;
            fclose(f);
        }
        if (!old && strncmp(comm, "ZMQ", 3))
            fresh[nf++] = now[i];
    }
    if (nf != threads + 2)
        return;
    qsort(fresh, (size_t)nf, sizeof *fresh, s_cmp_pid);
    for (int i = 0; i < nf; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)fresh[i]);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(i == 0 ? "gq-broker" : i == nf - 1 ? "gq-worker" : "gq-compute", f);
            fclose(f);
        }
    }
}

/* ---- options ---- */

static void s_usage(FILE *f)
{
    fprintf(f, "usage: bench_roundtrip [options]\n"
               "  --rt N          measured round trips: raw, relay, sync (default 20000)\n"
               "  --warmup N      round trips or jobs before the clock starts (default 2000)\n"
               "  --msgs N        raw PUSH/PULL messages per batch (default 1000000)\n"
               "  --jobs N        pipelined jobs (relay messages) per segment (default 50000)\n"
               "  --repeat N      batches or segments per throughput, best counts (default 3)\n"
               "  --windows LIST  client windows to try, comma-separated (default 64,256,1024)\n"
               "  --threads N     gpuq-worker --threads (default 1)\n"
               "  --credits N     gpuq-worker --credits (default 0 = the worker's own default, "
               "64 x threads)\n"
               "  --phases LIST   only these of raw,sync,pipe,relay,local (the three targets "
               "need\n"
               "                  raw,sync,pipe; for profiling one path at a time)\n"
               "  --no-local      all phases but local\n"
               "  --pin           this process on CPU 0, every server process on CPU 1\n"
               "  --quick         a tenth of every count\n"
               "  --verbose       CPU time and context switches of every thread\n"
               "  --strict        exit 1 when a target is not met\n"
               "Binaries: $GQ_BIN_DIR/gpuq-broker and gpuq-worker, else beside this program or "
               "up to\ntwo levels above it.\n");
}

static long s_arg_long(const char *flag, const char *v, long min, long max)
{
    char *end;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || errno || *end || n < min || n > max) {
        fprintf(stderr, "bench_roundtrip: %s %s: must be an integer in %ld..%ld\n", flag,
                v ? v : "(missing)", min, max);
        exit(2);
    }
    return n;
}

static void s_parse_windows(s_opts_t *o, const char *flag, const char *v)
{
    char buf[256];
    if (!v || strlen(v) >= sizeof buf)
        s_arg_long(flag, NULL, 1, 1000000);
    snprintf(buf, sizeof buf, "%s", v);
    o->nwindows = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nwindows == S_MAX_WINDOWS) {
            fprintf(stderr, "bench_roundtrip: %s: at most %d windows\n", flag, S_MAX_WINDOWS);
            exit(2);
        }
        o->windows[o->nwindows++] = (int)s_arg_long(flag, t, 1, 1000000);
    }
    if (!o->nwindows)
        s_arg_long(flag, NULL, 1, 1000000);
}

static void s_parse_phases(s_opts_t *o, const char *flag, const char *v)
{
    char buf[256];
    if (!v || strlen(v) >= sizeof buf) {
        fprintf(stderr, "bench_roundtrip: %s needs a list of raw,sync,pipe,relay,local\n", flag);
        exit(2);
    }
    snprintf(buf, sizeof buf, "%s", v);
    o->phases = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < 5 && strcmp(t, s_phase_names[k]))
            k++;
        if (k == 5) {
            fprintf(stderr, "bench_roundtrip: %s %s: not one of raw,sync,pipe,relay,local\n", flag,
                    t);
            exit(2);
        }
        o->phases |= 1 << k;
    }
}

static void s_parse(s_opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->rt = 20000;
    o->warmup = 2000;
    o->msgs = 1000000;
    o->jobs = 50000;
    o->repeat = 3;
    o->windows[0] = 64;
    o->windows[1] = 256;
    o->windows[2] = 1024;
    o->nwindows = 3;
    o->threads = 1;
    o->credits = 0;
    o->phases = S_PH_ALL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1;
        } else if (!strcmp(a, "--strict")) {
            o->strict = 1;
        } else if (!strcmp(a, "--pin")) {
            o->pin = 1;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            o->verbose = 1;
        } else if (!strcmp(a, "--no-local")) {
            o->phases &= ~S_PH_LOCAL;
        } else if (!strcmp(a, "--rt")) {
            o->rt = s_arg_long(a, v, 1, 100000000), i++;
        } else if (!strcmp(a, "--warmup")) {
            o->warmup = s_arg_long(a, v, 0, 100000000), i++;
        } else if (!strcmp(a, "--msgs")) {
            o->msgs = s_arg_long(a, v, 1, 1000000000), i++;
        } else if (!strcmp(a, "--jobs")) {
            o->jobs = s_arg_long(a, v, 1, 1000000000), i++;
        } else if (!strcmp(a, "--repeat")) {
            o->repeat = (int)s_arg_long(a, v, 1, S_MAX_REPEAT), i++;
        } else if (!strcmp(a, "--threads")) {
            o->threads = (int)s_arg_long(a, v, 1, 1024), i++;
        } else if (!strcmp(a, "--credits")) {
            o->credits = (int)s_arg_long(a, v, 0, 65536), i++;
        } else if (!strcmp(a, "--windows")) {
            s_parse_windows(o, a, v), i++;
        } else if (!strcmp(a, "--phases")) {
            s_parse_phases(o, a, v), i++;
        } else {
            fprintf(stderr, "bench_roundtrip: unknown option %s\n", a);
            s_usage(stderr);
            exit(2);
        }
    }
    if (o->quick) {
        o->rt = o->rt / 10 > 0 ? o->rt / 10 : 1;
        o->warmup /= 10;
        o->msgs = o->msgs / 10 > 0 ? o->msgs / 10 : 1;
        o->jobs = o->jobs / 10 > 0 ? o->jobs / 10 : 1;
    }
    if (o->pin && sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        fprintf(stderr, "bench_roundtrip: --pin needs 2 CPUs: ignored\n");
        o->pin = 0;
    }
}

/* ---- report ---- */

/* Prints one ratio with its target; returns 1 when the target is met. */
static int s_ratio(const char *what, double v, int at_most, double target)
{
    int met = at_most ? v <= target : v >= target;
    printf("  %-52s %7.3f   %s %-5g %s\n", what, v, at_most ? "<=" : ">=", target,
           met ? "met" : "NOT met");
    return met;
}

static void s_print_config(const s_opts_t *o)
{
    int maj, min, pat;
    zmq_version(&maj, &min, &pat);
    printf("gpuq bench_roundtrip: %ld online CPUs, ZeroMQ %d.%d.%d, 64-byte payloads over tcp "
           "127.0.0.1\n",
           sysconf(_SC_NPROCESSORS_ONLN), maj, min, pat);
    printf("config: raw peers and relay = forked processes; ours = gpuq-broker + 1 gpuq-worker "
           "(fork/exec,\n"
           "        --threads %d --credits %d); clients = this process; one ZeroMQ I/O thread "
           "per process;\n"
           "        %s\n"
           "        counts: warm-up %ld, %ld round trips; throughputs best of %d x %ld raw "
           "messages,\n"
           "        %d x %ld jobs per window%s\n",
           o->threads, o->credits > 0 ? o->credits : 64 * o->threads,
           o->pin ? "--pin: this process on CPU 0, every server process on CPU 1"
                  : "no pinning: the scheduler places every thread",
           o->warmup, o->rt, o->repeat, o->msgs, o->repeat, o->jobs, o->quick ? " (--quick)" : "");
}

int main(int argc, char **argv)
{
    s_opts_t o;
    s_parse(&o, argc, argv);
    gqb_init("bench_roundtrip");
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.pin)
        gqb_pin_to(0);
    uint64_t *lat = malloc((size_t)o.rt * sizeof *lat);
    if (!lat)
        gqb_die("out of memory for %ld latencies", o.rt);
    s_print_config(&o);

    /* Raw peers fork: they run first, while this process holds no ZeroMQ context. */
    gqb_lat_t raw_rt = {0, 0, 0}, ours_rt = {0, 0, 0}, relay_rt = {0, 0, 0};
    double raw_tput = 0, best = 0, relay_tput = 0;
    int best_w = o.windows[o.nwindows - 1];
    if (o.phases & S_PH_RAW) {
        gqb_arm_alarm(S_ALARM_S);
        raw_rt = s_raw_reqrep(&o, lat);
        gqb_arm_alarm(S_ALARM_S);
        raw_tput = s_raw_pushpull(&o);
    }
    if (o.phases & (S_PH_SYNC | S_PH_PIPE)) {
        gqb_arm_alarm(S_ALARM_S);
        s_cluster_t cl;
        s_cluster_start(&cl, &o);
        gq_client_opts_t copts;
        gq_client_opts_init(&copts);
        gqb_probe_t pr = {0};
        gqb_probe_add(&pr, "bench", getpid());
        gqb_probe_add(&pr, "broker", cl.broker);
        gqb_probe_add(&pr, "worker", cl.worker);
        if (o.phases & S_PH_SYNC) {
            gqb_arm_alarm(S_ALARM_S);
            gqb_phase = "ours sync";
            ours_rt =
                s_ours_sync(cl.front, &copts, &o, 0, &pr, "(c) ours sync gq_client_run", NULL, lat);
            gqb_arm_alarm(S_ALARM_S);
            gqb_phase = "ours sync, refused at admission";
            s_ours_sync(cl.front, &copts, &o, 1, &pr, "    extra: refused at admission",
                        "           (factor over its limit: client -> broker -> client, no "
                        "worker)",
                        lat);
        }
        for (int i = 0; (o.phases & S_PH_PIPE) && i < o.nwindows; i++) {
            gqb_arm_alarm(S_ALARM_S);
            gqb_phase = "ours pipelined";
            double r = s_ours_pipe(cl.front, &copts, o.windows[i], &o, &pr,
                                   i ? "" : "(d) ours pipelined submit/collect");
            if (r > best) {
                best = r;
                best_w = o.windows[i];
            }
        }
        if (o.phases & S_PH_PIPE)
            printf("    best window: %d\n", best_w);
        s_cluster_stop(&cl);
    }
    /* The relay forks too: every tcp client is destroyed by now, so this process holds no
     * context again (the library's shared one goes with its last client). */
    if (o.phases & S_PH_RELAY) {
        gqb_arm_alarm(S_ALARM_S);
        relay_tput = s_raw_relay(&o, best_w, lat, &relay_rt);
    }
    if (o.phases & S_PH_LOCAL) {
        gqb_arm_alarm(S_ALARM_S);
        gqb_phase = "ours local";
        gq_client_opts_t lopts;
        gq_client_opts_init(&lopts);
        lopts.local_workers = 1;
        lopts.local_threads = o.threads;
        lopts.local_credits = o.credits;
        char err[256];
        pid_t before[64];
        int nbefore = s_tids(before, 64);
        /* Held across both lines, so that the embedded cluster starts once. */
        gq_client_t *keep = gq_client_new("local", &lopts, err, sizeof err);
        if (!keep)
            gqb_die("local client: %s", err);
        s_label_local_threads(before, nbefore, o.threads);
        gqb_probe_t lp = {0};
        gqb_probe_add(&lp, "bench (all threads)", getpid());
        printf("    extra: \"local\": broker, worker (%d compute thread(s), %d credits) and "
               "client as threads of this process, inproc\n",
               o.threads, o.credits > 0 ? o.credits : 16 * o.threads);
        s_ours_sync("local", &lopts, &o, 0, &lp, "    extra: local sync", NULL, lat);
        s_ours_pipe("local", &lopts, best_w, &o, &lp, "    extra: local pipelined");
        gq_client_destroy(&keep);
    }
    gqb_arm_alarm(0);

    int met = 0, want = 0;
    printf("ratios (same run, same machine)                            value   target\n");
    if ((o.phases & S_PH_RAW) && (o.phases & S_PH_SYNC)) {
        want++;
        met += s_ratio("round trip: ours sync / raw REQ/REP (median)",
                       ours_rt.med_us / raw_rt.med_us, 1, 2.0);
    }
    if ((o.phases & S_PH_RAW) && (o.phases & S_PH_PIPE)) {
        char what[96];
        want++;
        snprintf(what, sizeof what, "throughput: ours (window %d) / raw PUSH/PULL", best_w);
        met += s_ratio(what, best / raw_tput, 0, 0.25);
    }
    if ((o.phases & S_PH_SYNC) && (o.phases & S_PH_PIPE)) {
        want++;
        met += s_ratio("pipelined / ours sync rate (1 / median)", best / (1e6 / ours_rt.med_us), 0,
                       15.0);
    }
    if (o.phases & S_PH_RELAY) {
        printf("  for reference: the raw relay (ours' topology, no gpuq code)\n");
        if (o.phases & S_PH_RAW)
            printf("  %-52s %7.3f   (the floor under the first ratio)\n",
                   "round trip: raw relay / raw REQ/REP (median)", relay_rt.med_us / raw_rt.med_us);
        if (o.phases & S_PH_RAW)
            printf("  %-52s %7.3f   (the ceiling over the second)\n",
                   "throughput: raw relay / raw PUSH/PULL", relay_tput / raw_tput);
        if (o.phases & S_PH_SYNC)
            printf("  %-52s %7.3f   (what gpuq code adds)\n",
                   "round trip: ours sync / raw relay (median)", ours_rt.med_us / relay_rt.med_us);
        if (o.phases & S_PH_PIPE)
            printf("  %-52s %7.3f\n", "throughput: ours / raw relay (same window)",
                   best / relay_tput);
    }
    printf("checked: %s%llu jobs x %d values: all correct\n",
           o.phases & (S_PH_RAW | S_PH_RELAY) ? "every raw echo and sequence number, " : "",
           (unsigned long long)s_checked_jobs, S_NELEM);
    free(lat);
    return o.strict && met < want ? 1 : 0;
}
