#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_PIDS 64

static pid_t s_pids[S_MAX_PIDS];
static int s_npids;
static int s_atexit;

void gqt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

int gqt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("gqt_free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

const char *gqt_bin(const char *name)
{
    static char buf[8][1024];
    static int k;
    const char *dir = getenv("GQ_BIN_DIR");
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir ? dir : ".", name);
    return b;
}

void gqt_cleanup(void)
{
    for (int i = 0; i < s_npids; i++)
        if (s_pids[i] > 0) {
            kill(s_pids[i], SIGCONT);
            kill(s_pids[i], SIGKILL);
            waitpid(s_pids[i], NULL, 0);
            s_pids[i] = 0;
        }
    s_npids = 0;
}

pid_t gqt_spawn(char *const argv[])
{
    if (!s_atexit) {
        atexit(gqt_cleanup);
        s_atexit = 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        setenv("GQ_LOG", getenv("GQT_LOG") ? getenv("GQT_LOG") : "warn", 1);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (s_npids < S_MAX_PIDS)
        s_pids[s_npids++] = pid;
    return pid;
}

int gqt_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            for (int i = 0; i < s_npids; i++)
                if (s_pids[i] == pid)
                    s_pids[i] = 0;
            return status;
        }
        if (waited >= timeout_ms)
            return -1;
        gqt_sleep_ms(10);
    }
}

gq_cluster_info_t gqt_info(const char *front)
{
    char err[256];
    gq_cluster_info_t info;
    memset(&info, 0, sizeof info);
    gq_client_t *c = gq_client_new(front, NULL, err, sizeof err);
    GQT_CHECK(c, "client: %s", err);
    int rc = gq_client_cluster_info(c, &info, 5000);
    GQT_CHECK(rc == GQ_OK, "cluster info: %s", gq_strerror(rc));
    gq_client_destroy(&c);
    return info;
}

int gqt_wait_workers(const char *front, int n, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (gqt_info(front).workers == n)
            return 0;
        gqt_sleep_ms(20);
    }
    return -1;
}

int gqt_cluster_add_worker(gqt_cluster_t *c, int threads, int credits)
{
    char th[16], cr[16], hb[16], name[32];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(cr, sizeof cr, "%d", credits);
    snprintf(hb, sizeof hb, "%d", c->heartbeat_ms);
    snprintf(name, sizeof name, "w%d", c->nworkers);
    char *argv[] = {(char *)gqt_bin("gpuq-worker"),
                    "--broker",
                    c->back,
                    "--threads",
                    th,
                    "--credits",
                    cr,
                    "--heartbeat-ms",
                    hb,
                    "--name",
                    name,
                    NULL};
    GQT_CHECK(c->nworkers < GQT_MAX_WORKERS, "too many workers");
    c->workers[c->nworkers] = gqt_spawn(argv);
    return c->nworkers++;
}

void gqt_cluster_start(gqt_cluster_t *c, int nworkers, int threads, int credits, int heartbeat_ms)
{
    gqt_cluster_start_args(c, nworkers, threads, credits, heartbeat_ms, NULL);
}

void gqt_cluster_start_args(gqt_cluster_t *c, int nworkers, int threads, int credits,
                            int heartbeat_ms, const char *const *broker_args)
{
    memset(c, 0, sizeof *c);
    c->heartbeat_ms = heartbeat_ms;
    c->front_port = gqt_free_port();
    do
        c->back_port = gqt_free_port();
    while (c->back_port == c->front_port);
    snprintf(c->front, sizeof c->front, "tcp://127.0.0.1:%d", c->front_port);
    snprintf(c->back, sizeof c->back, "tcp://127.0.0.1:%d", c->back_port);
    char hb[16];
    snprintf(hb, sizeof hb, "%d", heartbeat_ms);
    char *argv[32] = {(char *)gqt_bin("gpuq-broker"),
                      "--frontend",
                      c->front,
                      "--backend",
                      c->back,
                      "--heartbeat-ms",
                      hb,
                      "--drain-ms",
                      "2000",
                      NULL};
    /* The broker caches by default; tests that count executions of repeated jobs need it
     * off unless they configure it. */
    int n = 9, cache_args = 0;
    for (int i = 0; broker_args && broker_args[i] && n < 30; i++) {
        cache_args |= !strncmp(broker_args[i], "--cache", 7);
        argv[n++] = (char *)broker_args[i];
    }
    if (!cache_args)
        argv[n++] = "--no-cache";
    c->broker = gqt_spawn(argv);
    for (int i = 0; i < nworkers; i++)
        gqt_cluster_add_worker(c, threads, credits);
    GQT_CHECK(gqt_wait_workers(c->front, nworkers, 10000) == 0,
              "%d workers did not register within 10 s", nworkers);
}

void gqt_cluster_stop(gqt_cluster_t *c)
{
    for (int i = 0; i < c->nworkers; i++)
        if (c->workers[i] > 0) {
            kill(c->workers[i], SIGCONT);
            kill(c->workers[i], SIGTERM);
        }
    for (int i = 0; i < c->nworkers; i++)
        if (c->workers[i] > 0)
            GQT_CHECK(gqt_wait(c->workers[i], 10000) != -1, "worker %d did not stop", i);
    if (c->broker > 0) {
        kill(c->broker, SIGTERM);
        int st = gqt_wait(c->broker, 10000);
        GQT_CHECK(st != -1, "broker did not stop on SIGTERM");
        GQT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "broker exit status %d", st);
    }
}
