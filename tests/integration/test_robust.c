/* Bad input reaches a real broker: garbage frames, malformed headers, unknown ops, bad
 * params and shapes from clients; garbage from a fake worker; jobs nobody can run within
 * their timeout; SIGTERM with jobs queued. Every case gets a clear error and the broker
 * keeps serving. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <zmq.h>
#include "harness.h"
#include "wire.h"

static void *s_ctx;

static void *s_dealer(const char *ep)
{
    void *s = zmq_socket(s_ctx, ZMQ_DEALER);
    int linger = 0, tmo = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    GQT_CHECK(zmq_connect(s, ep) == 0, "connect %s", ep);
    return s;
}

/* Sends raw frames, expects an ERROR with code and a message containing needle. */
static void s_expect_error(void *s, const char *what, const char *const *frames, const size_t *lens,
                           int n, int code, const char *needle)
{
    for (int i = 0; i < n; i++)
        zmq_send(s, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
    gq_wire_msg_t m;
    char err[256];
    gq_status rc = gq_wire_recv(s, 0, NULL, &m, NULL, err, sizeof err);
    GQT_CHECK(rc == GQ_OK && m.cmd == GQ_CMD_ERROR, "%s: no ERROR reply (rc %d %s)", what, rc, err);
    const Gq__Wire__Error *e = (const Gq__Wire__Error *)m.hdr;
    GQT_CHECK(e->code == code, "%s: code %d (%s), want %d", what, e->code, e->message, code);
    GQT_CHECK(strstr(e->message, needle), "%s: message '%s' lacks '%s'", what, e->message, needle);
    printf("ok  %-34s -> %s: %s\n", what, gq_status_name(e->code), e->message);
    gq_wire_msg_close(&m);
}

static void s_job_error(gq_client_t *c, gq_job_t *job, int code, const char *needle)
{
    int rc = gq_client_run(c, job);
    GQT_CHECK(rc == code, "%s: got %s (%s), want %s", gq_job_error(job), gq_status_name(rc),
              gq_job_error(job), gq_status_name(code));
    GQT_CHECK(strstr(gq_job_error(job), needle), "message '%s' lacks '%s'", gq_job_error(job),
              needle);
    printf("ok  job error -> %s: %s\n", gq_status_name(rc), gq_job_error(job));
    gq_job_destroy(&job);
}

static gq_tensor_t *s_tensor(int64_t n)
{
    int64_t shape[1] = {n};
    gq_tensor_t *t = gq_tensor_new(GQ_F32, shape, 1);
    float *d = gq_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        d[i] = (float)i;
    return t;
}

static void s_check_serving(gq_client_t *c)
{
    gq_tensor_t *x = s_tensor(8);
    gq_job_t *job = gq_job_new("tensor.scale");
    gq_job_param_float(job, "factor", 3);
    gq_job_input(job, x);
    int rc = gq_client_run(c, job);
    GQT_CHECK(rc == GQ_OK, "good job after bad input failed: %s", gq_job_error(job));
    GQT_CHECK(((float *)gq_tensor_data(gq_job_output(job, 0)))[7] == 21.0f, "wrong result");
    gq_job_destroy(&job);
    gq_tensor_destroy(&x);
}

int main(void)
{
    gqt_cluster_t cl;
    gqt_cluster_start(&cl, 1, 1, 2, 100);
    s_ctx = zmq_ctx_new();
    void *raw = s_dealer(cl.front);
    char err[256];
    gq_client_t *c = gq_client_new(cl.front, NULL, err, sizeof err);
    GQT_CHECK(c, "client: %s", err);

    {
        const char *f[] = {"hello"};
        size_t l[] = {5};
        s_expect_error(raw, "one garbage frame", f, l, 1, GQ_EPROTO, "at least 3");
    }
    {
        const char *f[] = {"GQ9", "\x01", ""};
        size_t l[] = {3, 1, 0};
        s_expect_error(raw, "wrong version tag", f, l, 3, GQ_EVERSION, "GQ9");
    }
    {
        const char *f[] = {"GQ1", "\x7f", ""};
        size_t l[] = {3, 1, 0};
        s_expect_error(raw, "unknown command", f, l, 3, GQ_EPROTO, "unknown command 0x7f");
    }
    {
        const char *f[] = {"GQ1", "\x01", "\xff\xff\xff"};
        size_t l[] = {3, 1, 3};
        s_expect_error(raw, "header not protobuf", f, l, 3, GQ_EPROTO, "does not parse");
    }
    {
        /* A valid Submit that describes one f32[4] input but sends 3 bytes. */
        Gq__Wire__Submit s = GQ__WIRE__SUBMIT__INIT;
        Gq__Wire__Stage st = GQ__WIRE__STAGE__INIT, *stp = &st;
        Gq__Wire__TensorDesc td = GQ__WIRE__TENSOR_DESC__INIT, *tdp = &td;
        int64_t shape[1] = {4};
        st.op = "tensor.scale";
        td.dtype = GQ__WIRE__DTYPE__DT_F32;
        td.n_shape = 1;
        td.shape = shape;
        td.nbytes = 16;
        s.job_id = 42;
        s.n_stages = 1;
        s.stages = &stp;
        s.n_inputs = 1;
        s.inputs = &tdp;
        uint8_t hdr[256];
        size_t hl = gq__wire__submit__pack(&s, hdr);
        const char *f[] = {"GQ1", "\x01", (const char *)hdr, "abc"};
        size_t l[] = {3, 1, hl, 3};
        s_expect_error(raw, "tensor frame too short", f, l, 4, GQ_EPROTO, "frame has 3 bytes");
        /* Same job, absurd shape: 2^40 x 2^40 elements. */
        int64_t huge[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
        td.n_shape = 2;
        td.shape = huge;
        hl = gq__wire__submit__pack(&s, hdr);
        const char *f2[] = {"GQ1", "\x01", (const char *)hdr, "abc"};
        size_t l2[] = {3, 1, hl, 3};
        s_expect_error(raw, "overflowing shape", f2, l2, 4, GQ_ETOOBIG, "overflows");
    }
    s_check_serving(c);

    gq_tensor_t *x = s_tensor(6);
    gq_job_t *job = gq_job_new("tensor.frobnicate");
    gq_job_input(job, x);
    s_job_error(c, job, GQ_EUNKNOWN_OP, "tensor.frobnicate");
    job = gq_job_new("tensor.clamp");
    gq_job_param_float(job, "lo", 2);
    gq_job_param_float(job, "hi", 1);
    gq_job_input(job, x);
    s_job_error(c, job, GQ_EPARAM, "lo");
    job = gq_job_new("tensor.sum");
    gq_job_param_int(job, "axis", 3);
    gq_job_input(job, x);
    s_job_error(c, job, GQ_EPARAM, "axis");
    job = gq_job_new("tensor.add");
    gq_tensor_t *y = s_tensor(5);
    gq_job_input(job, x);
    gq_job_input(job, y);
    s_job_error(c, job, GQ_ESHAPE, "broadcast");
    gq_tensor_destroy(&y);
    job = gq_job_new("tensor.scale");
    gq_job_param_str(job, "factor", "two");
    gq_job_input(job, x);
    s_job_error(c, job, GQ_EPARAM, "factor");
    s_check_serving(c);

    /* A fake worker that registers and then sends garbage is disconnected. */
    void *fake = s_dealer(cl.back);
    {
        Gq__Wire__Ready r = GQ__WIRE__READY__INIT;
        char *ops[] = {"tensor.scale"};
        r.name = "fake";
        r.credits = 1;
        r.n_ops = 1;
        r.ops = ops;
        gq_wire_send(fake, NULL, 0, GQ_CMD_READY, &r.base, NULL, 0);
        GQT_CHECK(gqt_wait_workers(cl.front, 2, 5000) == 0, "fake worker not registered");
        zmq_send(fake, "GQ1", 3, ZMQ_SNDMORE);
        zmq_send(fake, "\x12", 1, ZMQ_SNDMORE);
        zmq_send(fake, "\x08", 1, 0); /* DONE header cut inside a varint */
        gq_wire_msg_t m;
        int got_disconnect = 0;
        for (int i = 0; i < 50 && !got_disconnect; i++) {
            if (gq_wire_recv(fake, 0, NULL, &m, NULL, err, sizeof err) != GQ_OK)
                continue;
            got_disconnect = m.cmd == GQ_CMD_DISCONNECT;
            gq_wire_msg_close(&m);
        }
        GQT_CHECK(got_disconnect, "fake worker sending garbage was not disconnected");
        GQT_CHECK(gqt_wait_workers(cl.front, 1, 5000) == 0, "fake worker still registered");
        printf("ok  worker sending garbage -> DISCONNECT, dropped\n");
    }
    s_check_serving(c);
    zmq_close(fake);

    /* Timeout while no worker can take the job: the client gets ETIMEDOUT on time and the
     * broker drops the job from its queue. */
    kill(cl.workers[0], SIGKILL);
    gqt_wait(cl.workers[0], 5000);
    cl.workers[0] = 0;
    GQT_CHECK(gqt_wait_workers(cl.front, 0, 5000) == 0, "killed worker still registered");
    job = gq_job_new("tensor.scale");
    gq_job_input(job, x);
    gq_job_set_timeout_ms(job, 200);
    {
        /* The client's own timer and the broker's deadline sweep race; either answer is
         * right, and both name the 200 ms. */
        int rc = gq_client_run(c, job);
        GQT_CHECK((rc == GQ_ETIMEDOUT || rc == GQ_EDEADLINE) && strstr(gq_job_error(job), "200 ms"),
                  "got %s: %s", gq_status_name(rc), gq_job_error(job));
        printf("ok  job error -> %s: %s\n", gq_status_name(rc), gq_job_error(job));
        gq_job_destroy(&job);
    }
    gqt_sleep_ms(300);
    GQT_CHECK(gqt_info(cl.front).queued == 0, "timed-out job still queued at the broker");

    /* SIGTERM with a job queued: it is answered (ECLOSED) and the broker exits 0. */
    job = gq_job_new("tensor.scale");
    gq_job_input(job, x);
    gq_client_submit(c, job);
    gqt_sleep_ms(100);
    kill(cl.broker, SIGTERM);
    gq_job_t *done = NULL;
    int rc = gq_client_collect(c, 5000, &done);
    GQT_CHECK(rc == GQ_OK && done == job, "queued job not answered on shutdown");
    GQT_CHECK(gq_job_status(job) == GQ_ECLOSED, "queued job got %s",
              gq_status_name(gq_job_status(job)));
    printf("ok  SIGTERM -> queued job answered %s: %s\n", gq_status_name(gq_job_status(job)),
           gq_job_error(job));
    gq_job_destroy(&job);
    int st = gqt_wait(cl.broker, 10000);
    GQT_CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "broker exit status %d", st);
    cl.broker = 0;

    gq_tensor_destroy(&x);
    gq_client_destroy(&c);
    zmq_close(raw);
    zmq_ctx_term(s_ctx);
    printf("PASS\n");
    return 0;
}
