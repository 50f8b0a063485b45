/* workload_noop.c - the workload that does nothing (see workload.h). */
#include "workload.h"

static int noop_start(struct cw_workload *w, const struct cw_cluster *c)
{
    (void)w;
    (void)c;
    return 0;
}

static void noop_fault(struct cw_workload *w, const char *fault)
{
    (void)w;
    (void)fault;
}

static int noop_check(struct cw_workload *w, const struct cw_cluster *c, char *why, size_t whylen)
{
    (void)w;
    (void)c;
    if (whylen > 0) {
        why[0] = '\0';
    }
    return 0;
}

static int noop_stop(struct cw_workload *w)
{
    (void)w;
    return 0;
}

const struct cw_workload cw_noop = {.name = "noop",
                                    .start = noop_start,
                                    .fault = noop_fault,
                                    .check = noop_check,
                                    .stop = noop_stop};
