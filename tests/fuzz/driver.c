/* A deterministic stand-in for libFuzzer's main, so that every harness also runs in ctest
 * under gcc: each seed file once, then N mutants of the seeds made by a fixed-seed PRNG
 * (bit flips, byte sets, truncations, insertions, deletions, splices, copies between seeds).
 * The same arguments give the same inputs on every machine, so a failure reproduces.
 *
 *   fuzz_npy_replay [-n ITERATIONS] [-s SEED] [-m MAX_LEN] [-o CRASH_DIR] [PATH ...]
 *
 * PATH is a seed file or a directory of them (read in name order). On a crash the input is
 * written to CRASH_DIR/crash-<iteration> (default: the current directory); pass that file
 * as the only PATH with -n 0 to replay it alone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

typedef struct {
    uint8_t *data;
    size_t len;
} s_input_t;

static s_input_t *s_seeds;
static size_t s_nseeds;

/* What the crash handlers save: set before every call into the harness. */
static const uint8_t *volatile s_cur;
static volatile size_t s_cur_len;
static volatile unsigned long s_cur_iter;
static char s_crash_dir[512] = ".";

static uint64_t s_state;

/* splitmix64: tiny, fast, and the same sequence on every platform. */
static uint64_t s_rand(void)
{
    uint64_t z = (s_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t s_below(size_t n)
{
    return n ? (size_t)(s_rand() % n) : 0;
}

static void s_die_oom(size_t n)
{
    fprintf(stderr, "fuzz driver: out of memory for %zu bytes\n", n);
    exit(2);
}

static int s_add_seed(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz driver: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        s_die_oom(cap);
    for (size_t r; (r = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += r;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb)
                s_die_oom(cap * 2);
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "fuzz driver: %s: read failed\n", path);
        free(buf);
        return -1;
    }
    s_input_t *ns = realloc(s_seeds, (s_nseeds + 1) * sizeof *ns);
    if (!ns)
        s_die_oom((s_nseeds + 1) * sizeof *ns);
    s_seeds = ns;
    s_seeds[s_nseeds].data = buf;
    s_seeds[s_nseeds].len = len;
    s_nseeds++;
    return 0;
}

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A directory's regular files in name order, so that the seed list (and with it every
 * mutant) does not depend on the order readdir happens to return. */
static int s_add_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz driver: %s: cannot open directory: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = strdup(e->d_name)))
            s_die_oom(n + 1);
        names = nn;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, s_cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && s_add_seed(path) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

static void s_put(int fd, const char *s)
{
    ssize_t r = write(fd, s, strlen(s));
    (void)r;
}

/* Decimal without stdio: this runs inside signal handlers. */
static char *s_utoa(unsigned long v, char *end)
{
    *--end = '\0';
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

static void s_save_crash(void)
{
    char num[24], path[600];
    const char *n = s_utoa(s_cur_iter, num + sizeof num);
    size_t dl = strlen(s_crash_dir), nl = strlen(n);
    if (dl + nl + 8 > sizeof path)
        return;
    memcpy(path, s_crash_dir, dl);
    memcpy(path + dl, "/crash-", 7);
    memcpy(path + dl + 7, n, nl + 1);
    s_put(2, "fuzz driver: crashed on input ");
    s_put(2, n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        const uint8_t *p = s_cur;
        size_t left = s_cur_len;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w <= 0)
                break;
            p += w;
            left -= (size_t)w;
        }
        close(fd);
        s_put(2, "; saved to ");
        s_put(2, path);
        s_put(2, " (replay: this program -n 0 that file)");
    } else {
        s_put(2, "; could not save it to ");
        s_put(2, path);
    }
    s_put(2, "\n");
}

static void s_on_signal(int sig)
{
    if (s_cur)
        s_save_crash();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void s_on_death(void)
{
    if (s_cur)
        s_save_crash();
}

/* Bytes that often matter to parsers: boundaries of signed and unsigned types, and the
 * punctuation of text formats. */
static const uint8_t s_interesting[] = {0,   1,   2,   0x7f, 0x80, 0xff, 0xfe, 0x40, 0x20, '\n',
                                        '0', '9', '-', ',',  '(',  ')',  '{',  '}',  '\'', '"',
                                        ':', '[', ']', '\\', 'L',  'x',  'e',  '.'};

/* One mutation of buf[0..*len) in place; cap is its capacity. */
static void s_mutate(uint8_t *buf, size_t *len, size_t cap)
{
    size_t n = *len;
    const s_input_t *other = &s_seeds[s_below(s_nseeds)];
    switch (s_below(11)) {
    case 0: /* flip one bit */
        if (n)
            buf[s_below(n)] ^= (uint8_t)(1u << s_below(8));
        break;
    case 1: /* set a byte to something random */
        if (n)
            buf[s_below(n)] = (uint8_t)s_rand();
        break;
    case 2: /* set a byte to something interesting */
        if (n)
            buf[s_below(n)] = s_interesting[s_below(sizeof s_interesting)];
        break;
    case 3: /* nudge a byte: lengths and digits */
        if (n)
            buf[s_below(n)] += (uint8_t)(s_below(2) ? 1 : -1);
        break;
    case 4: /* truncate */
        *len = s_below(n + 1);
        break;
    case 5: { /* insert 1..8 bytes */
        size_t k = 1 + s_below(8);
        if (n + k > cap)
            break;
        size_t at = s_below(n + 1);
        memmove(buf + at + k, buf + at, n - at);
        for (size_t i = 0; i < k; i++)
            buf[at + i] =
                s_below(2) ? (uint8_t)s_rand() : s_interesting[s_below(sizeof s_interesting)];
        *len = n + k;
        break;
    }
    case 6: { /* delete a range */
        if (!n)
            break;
        size_t at = s_below(n), k = 1 + s_below(n - at < 16 ? n - at : 16);
        memmove(buf + at, buf + at + k, n - at - k);
        *len = n - k;
        break;
    }
    case 7: { /* splice: our head, another seed's tail */
        size_t at = s_below(n + 1), from = s_below(other->len + 1);
        size_t k = other->len - from;
        if (at + k > cap)
            k = cap - at;
        if (k)
            memcpy(buf + at, other->data + from, k);
        *len = at + k;
        break;
    }
    case 8: { /* insert a chunk of another seed (carries whole tokens across) */
        if (!other->len)
            break;
        size_t from = s_below(other->len), k = 1 + s_below(other->len - from);
        if (k > 32)
            k = 1 + s_below(32);
        if (n + k > cap)
            break;
        size_t at = s_below(n + 1);
        memmove(buf + at + k, buf + at, n - at);
        memcpy(buf + at, other->data + from, k);
        *len = n + k;
        break;
    }
    case 9: { /* repeat one of our bytes 2..32 times: long numbers, long runs */
        if (!n)
            break;
        size_t k = 2 + s_below(31), at = s_below(n);
        if (n + k > cap)
            break;
        uint8_t c = buf[at];
        memmove(buf + at + k, buf + at, n - at);
        memset(buf + at, c, k);
        *len = n + k;
        break;
    }
    default: { /* overwrite with a chunk of ourselves (repeats, shifted fields) */
        if (n < 2)
            break;
        size_t from = s_below(n), to = s_below(n);
        size_t k = 1 + s_below(n - (from > to ? from : to));
        memmove(buf + to, buf + from, k);
        break;
    }
    }
}

/* The harness gets its own allocation of exactly len bytes: a read past the end hits an
 * ASan redzone instead of the rest of our working buffer. */
static void s_run(const uint8_t *buf, size_t len, unsigned long iter)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        s_die_oom(len);
    if (len)
        memcpy(copy, buf, len);
    s_cur_iter = iter;
    s_cur_len = len;
    s_cur = copy;
    LLVMFuzzerTestOneInput(copy, len);
    s_cur = NULL;
    free(copy);
}

static void s_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-n ITERATIONS] [-s SEED] [-m MAX_LEN] [-o CRASH_DIR] [PATH ...]\n"
            "  runs every seed file (or every file of a seed directory), then ITERATIONS\n"
            "  deterministic mutants of them (default 10000, seed 1, max length 4096)\n",
            prog);
}

int main(int argc, char **argv)
{
    long long iters = 10000, seed = 1, max_len = 4096;
    int opt;
    while ((opt = getopt(argc, argv, "n:s:m:o:h")) != -1) {
        char *end = NULL;
        long long *dst = opt == 'n' ? &iters : opt == 's' ? &seed : opt == 'm' ? &max_len : NULL;
        if (dst) {
            errno = 0;
            *dst = strtoll(optarg, &end, 10);
            if (errno || !*optarg || *end || *dst < 0) {
                fprintf(stderr, "%s: -%c '%s' is not a non-negative integer\n", argv[0], opt,
                        optarg);
                return 2;
            }
        } else if (opt == 'o') {
            if (strlen(optarg) >= sizeof s_crash_dir - 32) {
                fprintf(stderr, "%s: -o '%s' is longer than %zu bytes\n", argv[0], optarg,
                        sizeof s_crash_dir - 32);
                return 2;
            }
            strcpy(s_crash_dir, optarg);
        } else {
            s_usage(argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);

    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(errno));
            return 2;
        }
        if ((S_ISDIR(st.st_mode) ? s_add_dir(argv[i]) : s_add_seed(argv[i])) != 0)
            return 2;
    }
    if (!s_nseeds && s_add_seed("/dev/null") != 0)
        return 2;

    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(s_on_death);
    /* The sanitizers report SEGV and friends better than we can; abort() is ours to catch
     * (a harness's invariant check), which ASan leaves alone by default. */
    signal(SIGABRT, s_on_signal);
    if (!__sanitizer_set_death_callback) {
        signal(SIGSEGV, s_on_signal);
        signal(SIGBUS, s_on_signal);
        signal(SIGFPE, s_on_signal);
        signal(SIGILL, s_on_signal);
    }

    size_t cap = (size_t)max_len;
    for (size_t i = 0; i < s_nseeds; i++)
        if (s_seeds[i].len > cap)
            cap = s_seeds[i].len;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf)
        s_die_oom(cap);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long iter = 0;
    for (size_t i = 0; i < s_nseeds; i++)
        s_run(s_seeds[i].data, s_seeds[i].len, iter++);

    s_state = (uint64_t)seed;
    size_t len = 0;
    for (long long k = 0; k < iters; k++) {
        /* Mostly fresh mutants of a seed; sometimes keep mutating the last one, which
         * reaches inputs several edits away from any seed. */
        if (k == 0 || s_below(4) != 0) {
            const s_input_t *s = &s_seeds[s_below(s_nseeds)];
            memcpy(buf, s->data, s->len);
            len = s->len;
        }
        for (size_t m = 1 + s_below(4); m > 0; m--)
            s_mutate(buf, &len, cap);
        s_run(buf, len, iter++);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%s: %zu seeds and %lld mutants (seed %lld) in %.2f s, no crash\n", argv[0], s_nseeds,
           iters, seed, secs);

    free(buf);
    for (size_t i = 0; i < s_nseeds; i++)
        free(s_seeds[i].data);
    free(s_seeds);
    return 0;
}
