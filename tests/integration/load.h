/* Load generator for integration tests: client threads submitting checked jobs. */
#ifndef GQT_LOAD_H
#define GQT_LOAD_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct {
    const char *front;
    int nthreads;
    int jobs_per_thread;
    int elems;            /* f32 elements per input */
    int window;           /* async window per thread */
    atomic_int completed; /* jobs answered so far, all threads */
    /* results */
    int ok, failed, wrong;
    uint64_t unmatched;
    char first_error[512];
} gqt_load_t;

/* Zeroes *load and sets what to run. */
void gqt_load_init(gqt_load_t *load, const char *front, int nthreads, int jobs_per_thread,
                   int elems, int window);

/* Fails the test unless every job was answered once, right (prints the counts). */
void gqt_load_expect_all_ok(const gqt_load_t *load);

/* Runs the load to completion (blocking); every answer is checked against a reference. */
void gqt_load_run(gqt_load_t *load);

/* Starts the load in a background thread; gqt_load_join waits for it. */
void gqt_load_start(gqt_load_t *load);
void gqt_load_join(gqt_load_t *load);

#endif
