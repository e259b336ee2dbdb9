/* Small shared helpers: clocks, error text, logging. */
#ifndef GQ_UTIL_H
#define GQ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in microseconds. */
uint64_t gq_now_us(void);

/* printf into an error buffer (NULL or 0-length buffers are ignored). */
void gq_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef enum {
    GQ_LOG_ERROR = 0,
    GQ_LOG_WARN = 1,
    GQ_LOG_INFO = 2,
    GQ_LOG_DEBUG = 3
} gq_log_level_t;

/* Log lines go to stderr: "2026-11-23T08:00:00.123 gpuq-broker W: text". The level comes
 * from GQ_LOG (error|warn|info|debug; default info) unless set here. */
void gq_log_init(const char *program);
void gq_log_set_level(gq_log_level_t level);
int gq_log_enabled(gq_log_level_t level);
void gq_log(gq_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define GQ_ERROR(...) gq_log(GQ_LOG_ERROR, __VA_ARGS__)
#define GQ_WARN(...) gq_log(GQ_LOG_WARN, __VA_ARGS__)
#define GQ_INFO(...) gq_log(GQ_LOG_INFO, __VA_ARGS__)
#define GQ_DEBUG(...)                                                                              \
    do {                                                                                           \
        if (gq_log_enabled(GQ_LOG_DEBUG))                                                          \
            gq_log(GQ_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

/* Parses "error|warn|info|debug"; returns 0, or -1 for anything else. */
int gq_log_level_parse(const char *s, gq_log_level_t *out);

/* Calls handler on SIGINT and SIGTERM (it must be async-signal-safe) and ignores SIGPIPE:
 * the stop wiring of the server binaries. */
void gq_on_stop_signals(void (*handler)(int));

/* Parses a whole decimal integer in [min, max]; returns 0 on success, -1 otherwise. */
int gq_parse_int(const char *s, long long min, long long max, long long *out);

/* Whether s is a model digest: 32 lowercase hex digits (XXH3-128, gq_onnx_model_digest). */
int gq_is_digest(const char *s);

/* aligned_alloc rounded up to the alignment; NULL on failure or overflow. */
void *gq_aligned_alloc(size_t align, size_t nbytes);

#endif
