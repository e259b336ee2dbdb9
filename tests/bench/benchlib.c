#include "benchlib.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_CHILDREN 16

const char *volatile gqb_phase = "start";

static const char *s_program = "bench";
static pid_t s_children[S_MAX_CHILDREN];

uint64_t gqb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

gqb_lat_t gqb_lat_of(uint64_t *ns, long n)
{
    gqb_lat_t l = {0, 0, 0};
    if (n <= 0)
        return l;
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += (double)ns[i];
    qsort(ns, (size_t)n, sizeof *ns, s_cmp_u64);
    long p99 = (n * 99 + 99) / 100 - 1; /* nearest rank */
    l.med_us = (double)ns[n / 2] / 1e3;
    l.p99_us = (double)ns[p99 < n ? p99 : n - 1] / 1e3;
    l.mean_us = sum / (double)n / 1e3;
    return l;
}

/* ---- children ---- */

void gqb_track_child(pid_t pid)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] <= 0) {
            s_children[i] = pid;
            return;
        }
    fprintf(stderr, "%s: more than %d children: pid %d not tracked\n", s_program, S_MAX_CHILDREN,
            (int)pid);
}

void gqb_forget_child(pid_t pid)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] == pid)
            s_children[i] = 0;
}

void gqb_kill_children(void)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0) {
            kill(s_children[i], SIGKILL);
            waitpid(s_children[i], NULL, 0);
            s_children[i] = 0;
        }
}

void gqb_kill_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    gqb_forget_child(pid);
}

void gqb_stop_child(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int waited = 0; waited < 5000; waited += 10) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            gqb_forget_child(pid);
            return;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "%s: pid %d ignored SIGTERM for 5 s: killed\n", s_program, (int)pid);
    gqb_kill_child(pid);
}

void gqb_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: %s: ", s_program, gqb_phase);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    gqb_kill_children();
    exit(1);
}

/* A lost answer leaves the program blocked forever: fail loudly instead. Only
 * async-signal-safe calls here. */
static void s_on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = ": a phase hung; killing the servers\n";
    const char *ph = gqb_phase;
    ssize_t rc = write(2, s_program, strlen(s_program));
    rc = write(2, ": ", 2);
    rc = write(2, ph, strlen(ph));
    rc = write(2, msg, sizeof msg - 1);
    (void)rc;
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0)
            kill(s_children[i], SIGKILL);
    _exit(1);
}

void gqb_init(const char *program)
{
    s_program = program;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, s_on_alarm);
    atexit(gqb_kill_children);
}

void gqb_arm_alarm(unsigned seconds)
{
    alarm(seconds);
}

/* ---- pipes, CPUs, programs, ports ---- */

int gqb_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Also used by forked children, which have nobody to report to: they exit. */
void gqb_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(3);
        p += n;
        len -= (size_t)n;
    }
}

void gqb_pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set))
        fprintf(stderr, "%s: cannot pin to CPU %d: %s\n", s_program, cpu, strerror(errno));
}

const char *gqb_bin(const char *name)
{
    static char buf[4][PATH_MAX];
    static int k;
    char *b = buf[k++ & 3];
    const char *env = getenv("GQ_BIN_DIR");
    if (env && *env) {
        snprintf(b, PATH_MAX, "%s/%s", env, name);
        return b;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        gqb_die("cannot find %s: /proc/self/exe unreadable; set GQ_BIN_DIR", name);
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    static const char *const ups[] = {"", "/..", "/../.."};
    for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
        snprintf(b, PATH_MAX, "%.3000s%s/%s", self, ups[i], name);
        if (!access(b, X_OK))
            return b;
    }
    gqb_die("cannot find %s beside %s or up to two levels above: set GQ_BIN_DIR", name, self);
}

int gqb_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        gqb_die("no free TCP port on 127.0.0.1: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

pid_t gqb_spawn(char *const argv[], int pin_cpu)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        gqb_die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (pin_cpu >= 0)
            gqb_pin_to(pin_cpu);
        if (!getenv("GQ_LOG"))
            setenv("GQ_LOG", "warn", 1);
        execv(argv[0], argv);
        fprintf(stderr, "%s: exec %s: %s\n", s_program, argv[0], strerror(errno));
        _exit(127);
    }
    gqb_track_child(pid);
    return pid;
}

/* ---- probe ---- */

/* Run time in ns and context switches (voluntary and not) of one thread. */
static int s_thr_read(pid_t pid, pid_t tid, uint64_t *ns, long *csw)
{
    char path[96], line[256];
    unsigned long long run = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%llu", &run) == 1;
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)tid);
    if (!ok || !(f = fopen(path, "r")))
        return -1;
    *csw = 0;
    while (fgets(line, sizeof line, f)) {
        long v;
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
            *csw += v;
    }
    fclose(f);
    *ns = run;
    return 0;
}

void gqb_probe_add(gqb_probe_t *p, const char *name, pid_t pid)
{
    if (p->n < GQB_MAX_PROCS) {
        p->proc[p->n].name = name;
        p->proc[p->n++].pid = pid;
    }
}

void gqb_probe_begin(gqb_probe_t *p)
{
    for (int i = 0; i < p->n; i++) {
        gqb_proc_t *pr = &p->proc[i];
        char path[64];
        pr->nthr = 0;
        snprintf(path, sizeof path, "/proc/%d/task", (int)pr->pid);
        DIR *d = opendir(path);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d)) && pr->nthr < GQB_MAX_THREADS) {
            if (e->d_name[0] == '.')
                continue;
            gqb_thr_t *t = &pr->thr[pr->nthr];
            t->tid = (pid_t)atoi(e->d_name);
            snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pr->pid, (int)t->tid);
            FILE *f = fopen(path, "r");
            if (!f || !fgets(t->comm, sizeof t->comm, f))
                snprintf(t->comm, sizeof t->comm, "?");
            if (f)
                fclose(f);
            t->comm[strcspn(t->comm, "\n")] = 0;
            if (t->tid == pr->pid)
                snprintf(t->comm, sizeof t->comm, "main");
            if (!s_thr_read(pr->pid, t->tid, &t->ns0, &t->csw0))
                pr->nthr++;
        }
        closedir(d);
    }
}

void gqb_probe_print(const gqb_probe_t *p, long ops, double wall_s, int verbose)
{
    double total = 0;
    double cpu[GQB_MAX_PROCS] = {0}, csw[GQB_MAX_PROCS] = {0};
    double tcpu[GQB_MAX_PROCS][GQB_MAX_THREADS], tcsw[GQB_MAX_PROCS][GQB_MAX_THREADS];
    for (int i = 0; i < p->n; i++) {
        const gqb_proc_t *pr = &p->proc[i];
        for (int k = 0; k < pr->nthr; k++) {
            const gqb_thr_t *t = &pr->thr[k];
            uint64_t ns1;
            long csw1;
            tcpu[i][k] = tcsw[i][k] = -1; /* the thread is gone */
            if (s_thr_read(pr->pid, t->tid, &ns1, &csw1))
                continue;
            tcpu[i][k] = (double)(ns1 - t->ns0) / 1e3 / (double)ops;
            tcsw[i][k] = (double)(csw1 - t->csw0) / (double)ops;
            cpu[i] += tcpu[i][k];
            csw[i] += tcsw[i][k];
        }
        total += cpu[i];
    }
    printf("      cpu us/op:");
    for (int i = 0; i < p->n; i++)
        printf(" %s %.2f", p->proc[i].name, cpu[i]);
    printf(" (all %.2f; %.2f of %ld CPUs busy)\n", total,
           wall_s > 0 ? total * (double)ops / 1e6 / wall_s : 0, sysconf(_SC_NPROCESSORS_ONLN));
    printf("      context switches/op:");
    for (int i = 0; i < p->n; i++)
        printf(" %s %.2f", p->proc[i].name, csw[i]);
    printf("\n");
    if (!verbose)
        return;
    printf("      per thread (cpu us/op, context switches/op; idle threads left out):\n");
    for (int i = 0; i < p->n; i++) {
        printf("        %s:", p->proc[i].name);
        for (int k = 0; k < p->proc[i].nthr; k++)
            if (tcpu[i][k] >= 0.005 || tcsw[i][k] >= 0.005)
                printf(" %s %.2f/%.2f", p->proc[i].thr[k].comm, tcpu[i][k], tcsw[i][k]);
        printf("\n");
    }
}
