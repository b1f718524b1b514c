/* A stand-in for libnvidia-ml.so.1 for the agent's GPU tests. Every call
 * re-reads the file `state` that lies next to this library, so a test
 * changes the GPUs (values, lost flag, queued XID events) by rewriting it:
 *
 *   gpu name=NVIDIA_H100 uuid=GPU-a minor=0 total=80 used=2 util=42 ...
 *   xid 0 79
 *
 * One `gpu` line per device (underscores in `name` become spaces; memory in
 * bytes; power in mW; a key left out answers NVML_ERROR_NOT_SUPPORTED;
 * `lost=1` makes every call on it answer NVML_ERROR_GPU_IS_LOST). Each
 * `xid INDEX VALUE` line is delivered once by nvmlEventSetWait_v2, in order.
 * Compiled with -DFAKE_NVML_OLD_DRIVER it lacks nvmlDeviceGetClockInfo and
 * the event functions, as an old driver might.
 * Signatures and constants follow nvml.h. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OK = 0, INVALID_ARGUMENT = 2, NOT_SUPPORTED = 3, TIMEOUT = 10, GPU_IS_LOST = 15 };
enum { MINOR, TOTAL, USED, UTIL, MEMUTIL, TEMP, POWER, SM, MEMCLK, SBE, DBE, LOST, FIELDS };
static const char *KEYS[FIELDS] = {"minor", "total", "used", "util", "memutil", "temp", "power", "sm", "memclk", "sbe", "dbe", "lost"};

struct gpu {
    char name[96];
    char uuid[96];
    unsigned long long value[FIELDS];
    int has[FIELDS];
};

static struct gpu gpus[16];
static int gpu_count;
static unsigned long long xids[64][2];
static int xid_count;
static int xids_delivered;
static int handles[16];
static int event_set;

static void load(void) {
    Dl_info info;
    char path[4096];
    if (!dladdr((void *)load, &info) || !info.dli_fname) return;
    snprintf(path, sizeof path, "%s", info.dli_fname);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (slash ? (size_t)(slash + 1 - path) : 0), "state");
    FILE *f = fopen(path, "r");
    if (!f) return;
    memset(gpus, 0, sizeof gpus);
    gpu_count = 0;
    xid_count = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        unsigned long long index, value;
        if (sscanf(line, "xid %llu %llu", &index, &value) == 2 && xid_count < 64) {
            xids[xid_count][0] = index;
            xids[xid_count][1] = value;
            xid_count++;
            continue;
        }
        if (strncmp(line, "gpu ", 4) != 0 || gpu_count >= 16) continue;
        struct gpu *g = &gpus[gpu_count++];
        char *save = NULL;
        for (char *token = strtok_r(line + 4, " \n", &save); token; token = strtok_r(NULL, " \n", &save)) {
            char *eq = strchr(token, '=');
            if (!eq) continue;
            *eq = 0;
            const char *v = eq + 1;
            if (!strcmp(token, "name")) {
                snprintf(g->name, sizeof g->name, "%s", v);
                for (char *c = g->name; *c; c++) if (*c == '_') *c = ' ';
            } else if (!strcmp(token, "uuid")) {
                snprintf(g->uuid, sizeof g->uuid, "%s", v);
            } else {
                for (int k = 0; k < FIELDS; k++) {
                    if (!strcmp(token, KEYS[k])) {
                        g->value[k] = strtoull(v, NULL, 10);
                        g->has[k] = 1;
                    }
                }
            }
        }
    }
    fclose(f);
}

/* The device behind a handle, or the error a call on it answers. */
static int device(void *handle, struct gpu **out) {
    load();
    long index = (int *)handle - handles;
    if (index < 0 || index >= gpu_count) return INVALID_ARGUMENT;
    *out = &gpus[index];
    return gpus[index].value[LOST] ? GPU_IS_LOST : OK;
}

static int field(void *handle, int key, unsigned long long *out) {
    struct gpu *g;
    int rc = device(handle, &g);
    if (rc) return rc;
    if (!g->has[key]) return NOT_SUPPORTED;
    *out = g->value[key];
    return OK;
}

int nvmlInit_v2(void) { load(); return OK; }
int nvmlShutdown(void) { return OK; }
const char *nvmlErrorString(int code) {
    switch (code) {
    case NOT_SUPPORTED: return "Not Supported";
    case TIMEOUT: return "Timeout";
    case GPU_IS_LOST: return "GPU is lost";
    default: return "fake NVML error";
    }
}
int nvmlDeviceGetCount_v2(unsigned *count) { load(); *count = gpu_count; return OK; }
int nvmlDeviceGetHandleByIndex_v2(unsigned index, void **handle) {
    load();
    if (index >= (unsigned)gpu_count) return INVALID_ARGUMENT;
    *handle = &handles[index];
    return OK;
}
static int text(void *handle, const char *which, char *out, unsigned length) {
    struct gpu *g;
    int rc = device(handle, &g);
    if (rc) return rc;
    snprintf(out, length, "%s", which == NULL ? g->name : g->uuid);
    return OK;
}
int nvmlDeviceGetName(void *d, char *out, unsigned length) { return text(d, NULL, out, length); }
int nvmlDeviceGetUUID(void *d, char *out, unsigned length) { return text(d, "uuid", out, length); }
int nvmlDeviceGetMinorNumber(void *d, unsigned *minor) {
    unsigned long long v = 0;
    int rc = field(d, MINOR, &v);
    *minor = (unsigned)v;
    return rc;
}
struct memory { unsigned long long total, free, used; };
int nvmlDeviceGetMemoryInfo(void *d, struct memory *m) {
    unsigned long long total = 0, used = 0;
    int rc = field(d, TOTAL, &total);
    if (rc) return rc;
    rc = field(d, USED, &used);
    if (rc) return rc;
    m->total = total;
    m->used = used;
    m->free = total - used;
    return OK;
}
struct utilization { unsigned gpu, memory; };
int nvmlDeviceGetUtilizationRates(void *d, struct utilization *u) {
    unsigned long long gpu = 0, memory = 0;
    int rc = field(d, UTIL, &gpu);
    if (rc) return rc;
    rc = field(d, MEMUTIL, &memory);
    u->gpu = (unsigned)gpu;
    u->memory = (unsigned)memory;
    return rc;
}
int nvmlDeviceGetTemperature(void *d, int sensor, unsigned *out) {
    unsigned long long v = 0;
    if (sensor != 0) return INVALID_ARGUMENT; /* NVML_TEMPERATURE_GPU */
    int rc = field(d, TEMP, &v);
    *out = (unsigned)v;
    return rc;
}
int nvmlDeviceGetPowerUsage(void *d, unsigned *milliwatts) {
    unsigned long long v = 0;
    int rc = field(d, POWER, &v);
    *milliwatts = (unsigned)v;
    return rc;
}
#ifndef FAKE_NVML_OLD_DRIVER
int nvmlDeviceGetClockInfo(void *d, int type, unsigned *mhz) {
    unsigned long long v = 0;
    if (type != 1 && type != 2) return INVALID_ARGUMENT; /* NVML_CLOCK_SM, NVML_CLOCK_MEM */
    int rc = field(d, type == 1 ? SM : MEMCLK, &v);
    *mhz = (unsigned)v;
    return rc;
}
#endif
int nvmlDeviceGetTotalEccErrors(void *d, int error_type, int counter_type, unsigned long long *count) {
    if (counter_type != 0 || error_type < 0 || error_type > 1) return INVALID_ARGUMENT; /* volatile */
    return field(d, error_type == 0 ? SBE : DBE, count);
}
#ifndef FAKE_NVML_OLD_DRIVER
int nvmlEventSetCreate(void **set) { *set = &event_set; return OK; }
int nvmlDeviceRegisterEvents(void *d, unsigned long long types, void *set) {
    struct gpu *g;
    if (set != &event_set || !(types & 0x8)) return INVALID_ARGUMENT;
    return device(d, &g);
}
struct event { void *device; unsigned long long type, data; unsigned gpu_instance, compute_instance; };
int nvmlEventSetWait_v2(void *set, struct event *e, unsigned timeout_ms) {
    (void)timeout_ms;
    if (set != &event_set) return INVALID_ARGUMENT;
    load();
    if (xids_delivered >= xid_count) return TIMEOUT;
    e->device = &handles[xids[xids_delivered][0]];
    e->type = 0x8; /* nvmlEventTypeXidCriticalError */
    e->data = xids[xids_delivered][1];
    e->gpu_instance = e->compute_instance = 0xFFFFFFFF;
    xids_delivered++;
    return OK;
}
int nvmlEventSetFree(void *set) { (void)set; return OK; }
#endif
