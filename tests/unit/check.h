/* CHECK for unit tests: counts checks, reports a failed one with file, line, condition and
 * a printf message, and goes on (the test's main returns s_failed != 0). */
#ifndef GQ_TEST_CHECK_H
#define GQ_TEST_CHECK_H

#include <stdio.h>

static int s_checks, s_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        s_checks++;                                                                                \
        if (!(cond)) {                                                                             \
            s_failed++;                                                                            \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

#endif
