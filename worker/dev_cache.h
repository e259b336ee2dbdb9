/* On-disk cache of device binaries, shared by the GPU backends: OpenCL program binaries
 * and Vulkan pipeline cache data. Each backend describes its cache once with a
 * gq_dev_cache_kind_t (file magic, directory, environment override, wording of messages),
 * so the two keep apart on disk and existing entries stay valid. */
#ifndef GQ_DEV_CACHE_H
#define GQ_DEV_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define GQ_DEV_KEY_BYTES 16

typedef struct {
    const char *magic;   /* 8 bytes, the NUL included: "GQCLPRG" */
    const char *env;     /* the directory override: "GQ_CL_CACHE_DIR" */
    const char *subdir;  /* under $XDG_CACHE_HOME/gpuq or $HOME/.cache/gpuq: "cl" */
    const char *backend; /* in messages: "opencl" */
    const char *what;    /* in messages: "program cache" */
} gq_dev_cache_kind_t;

/* The cache directory: $<env>, else $XDG_CACHE_HOME/gpuq/<subdir>, else
 * $HOME/.cache/gpuq/<subdir>; "" when none of them is set. */
void gq_dev_cache_dir(const gq_dev_cache_kind_t *kind, char *out, size_t len);

/* XXH3-128 over parts[0..n) (each length-prefixed, so ("ab","c") != ("a","bc")). */
void gq_dev_cache_key(const char *const *parts, const size_t *lens, int n,
                      uint8_t key[GQ_DEV_KEY_BYTES]);

/* <dir>/<32 hex digits>.bin */
void gq_dev_cache_path(const char *dir, const uint8_t key[GQ_DEV_KEY_BYTES], char *out, size_t len);

/* Reads the entry for key into *data (malloc'd; caller frees) and *n. GQ_EIO when there
 * is none; GQ_EFORMAT with the reason in why when the file is not a valid entry of kind
 * for key (bad magic or version, wrong size or key, checksum mismatch): the caller
 * rebuilds and stores over it. */
gq_status gq_dev_cache_load(const gq_dev_cache_kind_t *kind, const char *dir,
                            const uint8_t key[GQ_DEV_KEY_BYTES], void **data, size_t *n, char *why,
                            size_t whylen);

/* Writes the entry atomically (temp file in dir, fsync, rename), creating dir. */
gq_status gq_dev_cache_store(const gq_dev_cache_kind_t *kind, const char *dir,
                             const uint8_t key[GQ_DEV_KEY_BYTES], const void *data, size_t n,
                             char *err, size_t errlen);

#endif
