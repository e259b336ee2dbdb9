/* Helpers shared by the benchmarks under tests/bench: clocks and percentiles, child
 * processes (fork/exec of the servers, cleanup on any exit), CPU pinning, and a probe of
 * CPU time and context switches per thread from /proc. */
#ifndef GQB_BENCHLIB_H
#define GQB_BENCHLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GQB_MAX_PROCS 4
#define GQB_MAX_THREADS 16

/* What the program is doing, for messages from gqb_die and the hang alarm. */
extern const char *volatile gqb_phase;

uint64_t gqb_now_ns(void);

typedef struct {
    double med_us, p99_us, mean_us;
} gqb_lat_t;

/* Median, p99 and mean of n durations in ns; sorts ns in place. */
gqb_lat_t gqb_lat_of(uint64_t *ns, long n);

/* Prints "bench: <phase>: <message>" to stderr, kills every child, exits 1. */
void gqb_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Installs the cleanup (children are killed at exit and on a hung phase: see
 * gqb_arm_alarm) and names the program in messages. */
void gqb_init(const char *program);

/* (Re)starts a watchdog: if the phase is not over in seconds, children are killed and the
 * program exits 1. 0 disarms it. */
void gqb_arm_alarm(unsigned seconds);

/* Children are killed (SIGKILL) at exit unless forgotten first. */
void gqb_track_child(pid_t pid);
void gqb_forget_child(pid_t pid);
void gqb_kill_children(void);

/* SIGTERM, up to 5 s for the exit, then SIGKILL; reaps and forgets pid. */
void gqb_stop_child(pid_t pid);

/* SIGKILL and reap. */
void gqb_kill_child(pid_t pid);

/* Whole reads and writes on pipes; retries EINTR. */
int gqb_read_all(int fd, void *buf, size_t len);
void gqb_write_all(int fd, const void *buf, size_t len);

/* Pins the calling thread (and the threads and programs it starts later) to cpu. */
void gqb_pin_to(int cpu);

/* Path of a built program: $GQ_BIN_DIR/name, else beside this program or one or two
 * levels up (build/tests/bench/ -> build/). Dies when not found. */
const char *gqb_bin(const char *name);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int gqb_free_port(void);

/* fork+exec of argv (NULL-terminated), tracked as a child; GQ_LOG=warn unless set. When
 * pin_cpu >= 0 the child runs on that CPU. */
pid_t gqb_spawn(char *const argv[], int pin_cpu);

/* CPU time (schedstat: ns resolution) and context switches of each thread of up to
 * GQB_MAX_PROCS processes over a phase. */
typedef struct {
    pid_t tid;
    char comm[20];
    uint64_t ns0;
    long csw0;
} gqb_thr_t;

typedef struct {
    const char *name;
    pid_t pid;
    int nthr;
    gqb_thr_t thr[GQB_MAX_THREADS];
} gqb_proc_t;

typedef struct {
    int n;
    gqb_proc_t proc[GQB_MAX_PROCS];
} gqb_probe_t;

void gqb_probe_add(gqb_probe_t *p, const char *name, pid_t pid);

/* Records every thread now alive; threads started later are not counted. */
void gqb_probe_begin(gqb_probe_t *p);

/* Prints CPU us and context switches per op since gqb_probe_begin, per process, and per
 * thread when verbose. wall_s gives the share of the machine's CPUs that was busy. */
void gqb_probe_print(const gqb_probe_t *p, long ops, double wall_s, int verbose);

#endif
