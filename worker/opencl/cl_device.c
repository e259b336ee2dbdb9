/* OpenCL device discovery and choice for the backend (cl_backend.c): every device of every
 * platform, the --cl-device / --cl-platform rules, device info for READY and the log. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "cl_int.h"
#include "util.h"

#define S_MAX_PLATFORMS 16

void gq_cl_str_info(cl_device_id d, cl_device_info what, char *out, size_t len)
{
    if (clGetDeviceInfo(d, what, len, out, NULL) != CL_SUCCESS)
        snprintf(out, len, "?");
    out[len - 1] = '\0';
}

/* Case-insensitive substring test. */
static bool s_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

static bool s_is_index(const char *s, long long *out)
{
    return s && *s && gq_parse_int(s, 0, 1 << 20, out) == 0;
}

/* Every device of every platform passing the platform filter, platform by platform. */
int gq_cl_discover(const char *platform, gq_cl_dev_t *out, int max, char *err, size_t errlen)
{
    cl_platform_id plats[S_MAX_PLATFORMS];
    cl_uint np = 0;
    cl_int rc = clGetPlatformIDs(S_MAX_PLATFORMS, plats, &np);
    if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (rc == CL_SUCCESS && np == 0)) {
        gq_errf(err, errlen,
                "opencl: no OpenCL platform (install an ICD: the GPU vendor's driver, or "
                "pocl-opencl-icd)");
        return 0;
    }
    if (rc != CL_SUCCESS) {
        gq_cl_fail(err, errlen, NULL, "clGetPlatformIDs", rc);
        return 0;
    }
    if (np > S_MAX_PLATFORMS)
        np = S_MAX_PLATFORMS;
    long long pidx = -1;
    bool by_index = s_is_index(platform, &pidx);
    int n = 0, matched = 0;
    for (cl_uint p = 0; p < np; p++) {
        char pname[128] = "?", pvendor[128] = "?";
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
        clGetPlatformInfo(plats[p], CL_PLATFORM_VENDOR, sizeof pvendor, pvendor, NULL);
        pname[sizeof pname - 1] = pvendor[sizeof pvendor - 1] = '\0';
        if (platform && by_index && pidx != (long long)p)
            continue;
        if (platform && !by_index && !s_contains(pname, platform) && !s_contains(pvendor, platform))
            continue;
        matched++;
        cl_device_id devs[GQ_CL_MAX_DEVICES];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, GQ_CL_MAX_DEVICES, devs, &nd) !=
            CL_SUCCESS)
            continue;
        for (cl_uint d = 0; d < nd && d < GQ_CL_MAX_DEVICES && n < max; d++, n++) {
            out[n].platform = plats[p];
            out[n].device = devs[d];
            out[n].platform_index = (int)p;
            snprintf(out[n].platform_name, sizeof out[n].platform_name, "%s", pname);
            out[n].type = 0;
            clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof out[n].type, &out[n].type, NULL);
        }
    }
    if (!matched)
        gq_errf(err, errlen, "opencl: no platform matches --cl-platform '%s' (%u platforms)",
                platform, np);
    else if (!n)
        gq_errf(err, errlen, "opencl: the OpenCL platforms have no devices");
    return n;
}

void gq_cl_fill_info(const gq_cl_dev_t *d, gq_device_info_t *info)
{
    memset(info, 0, sizeof *info);
    gq_cl_str_info(d->device, CL_DEVICE_NAME, info->name, sizeof info->name);
    gq_cl_str_info(d->device, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    gq_cl_str_info(d->device, CL_DRIVER_VERSION, info->driver, sizeof info->driver);
    cl_ulong mem = 0;
    cl_uint cu = 0;
    clGetDeviceInfo(d->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    info->memory_bytes = mem;
    info->compute_units = cu;
    info->is_gpu = (d->type & CL_DEVICE_TYPE_GPU) != 0;
}

int gq_opencl_list(gq_device_info_t *out, int max, char *err, size_t errlen)
{
    gq_cl_dev_t devs[GQ_CL_MAX_DEVICES];
    int n = gq_cl_discover(NULL, devs, GQ_CL_MAX_DEVICES, err, errlen);
    for (int i = 0; i < n && i < max; i++)
        gq_cl_fill_info(&devs[i], &out[i]);
    return n < max ? n : max;
}

const char *gq_cl_type_name(cl_device_type t)
{
    return t & CL_DEVICE_TYPE_GPU           ? "GPU"
           : t & CL_DEVICE_TYPE_ACCELERATOR ? "accelerator"
           : t & CL_DEVICE_TYPE_CPU         ? "CPU"
                                            : "other";
}

/* Picks a device per cfg; -1 with err set when none fits. */
int gq_cl_choose(const gq_backend_config_t *cfg, const gq_cl_dev_t *devs, int n, char *err,
                 size_t errlen)
{
    int pick = -1;
    bool named = false;
    if (cfg && cfg->device_index >= 0) {
        if (cfg->device_index >= n) {
            gq_errf(err, errlen, "opencl: --cl-device %d: only %d devices (0..%d)",
                    cfg->device_index, n, n - 1);
            return -1;
        }
        pick = cfg->device_index;
        named = true;
    } else if (cfg && cfg->device_match && *cfg->device_match) {
        for (int i = 0; i < n && pick < 0; i++) {
            char name[128], vendor[128];
            gq_cl_str_info(devs[i].device, CL_DEVICE_NAME, name, sizeof name);
            gq_cl_str_info(devs[i].device, CL_DEVICE_VENDOR, vendor, sizeof vendor);
            if (s_contains(name, cfg->device_match) || s_contains(vendor, cfg->device_match))
                pick = i;
        }
        if (pick < 0) {
            gq_errf(err, errlen, "opencl: no device matches --cl-device '%s' (%d devices)",
                    cfg->device_match, n);
            return -1;
        }
        named = true;
    } else {
        static const cl_device_type pref[] = {CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_ACCELERATOR,
                                              CL_DEVICE_TYPE_ALL};
        for (int t = 0; t < 3 && pick < 0; t++)
            for (int i = 0; i < n && pick < 0; i++)
                if (devs[i].type & pref[t])
                    pick = i;
    }
    if (pick >= 0 && !named && cfg && cfg->gpu_only &&
        !(devs[pick].type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR))) {
        gq_errf(err, errlen,
                "opencl: only CPU devices (%s); not used unless asked for (--backends "
                "opencl,cpu or --cl-device)",
                devs[pick].platform_name);
        return -1;
    }
    return pick;
}
