#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *s_program = "gpuq";
static int s_level = -1;

uint64_t gq_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void gq_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int gq_log_level_parse(const char *s, gq_log_level_t *out)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (gq_log_level_t)i;
            return 0;
        }
    return -1;
}

static int s_level_from_env(void)
{
    gq_log_level_t level = GQ_LOG_INFO;
    gq_log_level_parse(getenv("GQ_LOG"), &level);
    return (int)level;
}

void gq_on_stop_signals(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void gq_log_init(const char *program)
{
    if (program)
        s_program = program;
    if (s_level < 0)
        s_level = s_level_from_env();
}

void gq_log_set_level(gq_log_level_t level)
{
    s_level = (int)level;
}

int gq_log_enabled(gq_log_level_t level)
{
    if (s_level < 0)
        s_level = s_level_from_env();
    return (int)level <= s_level;
}

void gq_log(gq_log_level_t level, const char *fmt, ...)
{
    if (!gq_log_enabled(level))
        return;
    static const char tag[] = "EWID";
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char line[1024];
    int n =
        snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03d %s %c: ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(tv.tv_usec / 1000), s_program, tag[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

int gq_is_digest(const char *s)
{
    size_t n = s ? strnlen(s, 33) : 0;
    int ok = n == 32;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    return ok;
}

int gq_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void *gq_aligned_alloc(size_t align, size_t nbytes)
{
    size_t n = nbytes ? nbytes : 1;
    if (n > SIZE_MAX - align)
        return NULL;
    n = (n + align - 1) / align * align;
    return aligned_alloc(align, n);
}
