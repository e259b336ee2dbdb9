/* Test harness for integration tests: real gpuq-broker and gpuq-worker processes on
 * 127.0.0.1 free ports. */
#ifndef GQT_HARNESS_H
#define GQT_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include "gpuq.h"

#define GQT_MAX_WORKERS 8

#define GQT_CHECK(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            gqt_cleanup();                                                                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

typedef struct {
    int front_port, back_port;
    char front[64], back[64];
    pid_t broker;
    pid_t workers[GQT_MAX_WORKERS];
    int nworkers;
    int heartbeat_ms;
} gqt_cluster_t;

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int gqt_free_port(void);

/* Path of a built binary ($GQ_BIN_DIR/name). */
const char *gqt_bin(const char *name);

/* fork+exec of argv (NULL-terminated); the child is killed at exit of the test. */
pid_t gqt_spawn(char *const argv[]);

/* Waits for pid up to timeout_ms; returns its wait status or -1 on timeout. */
int gqt_wait(pid_t pid, int timeout_ms);

/* Starts a broker and nworkers workers (each with threads/credits) and waits until all
 * workers are registered. heartbeat_ms applies to all of them. */
void gqt_cluster_start(gqt_cluster_t *c, int nworkers, int threads, int credits, int heartbeat_ms);

/* Same, with more broker options (NULL-terminated list, at most 22). */
void gqt_cluster_start_args(gqt_cluster_t *c, int nworkers, int threads, int credits,
                            int heartbeat_ms, const char *const *broker_args);

/* Starts one more worker process; returns its index. */
int gqt_cluster_add_worker(gqt_cluster_t *c, int threads, int credits);

/* Waits until the broker reports n workers; returns 0 or -1 on timeout. */
int gqt_wait_workers(const char *front, int n, int timeout_ms);

/* Broker counters via a fresh client. */
gq_cluster_info_t gqt_info(const char *front);

void gqt_cluster_stop(gqt_cluster_t *c);

/* Kills every process spawned; called by GQT_CHECK and at exit. */
void gqt_cleanup(void);

/* Milliseconds sleep. */
void gqt_sleep_ms(int ms);

#endif
