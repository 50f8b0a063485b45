/* ops.h - the operations endpoints: GET /healthz (the process answers),
 * /readyz (recovered and accepting writes; why not, when not), /metrics
 * (Prometheus text format 0.0.4; every metric is listed in README.md). */
#ifndef SL_API_OPS_H
#define SL_API_OPS_H

#include "broker/api/call.h"

#include <stdbool.h>
#include <stdint.h>

/* The data directory's file system (statvfs); known false when unreadable. */
struct sl_ops_disk {
    uint64_t free_bytes;
    uint64_t size_bytes;
    bool known;
};
struct sl_ops_disk sl_ops_disk_of(const char *dir);

/* Answers `call` for `path` ("/healthz", "/readyz" or "/metrics"). */
void sl_ops_handle(struct sl_api_call *call, const char *path);

#endif
