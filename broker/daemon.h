/* daemon.h - sluiced's dialogue with its service manager: systemd's notify
 * protocol (sd_notify) for readiness, a one-line status, the watchdog,
 * reloading and stopping. The only file that includes <systemd/sd-daemon.h>.
 *
 * Without NOTIFY_SOCKET in the environment (not started by systemd as
 * Type=notify, or by a test standing in for it) every call does nothing.
 * Without WATCHDOG_USEC (or with a WATCHDOG_PID naming another process) there
 * is no watchdog ping.
 *
 * Threading: the main thread only (init reads the environment with getenv;
 * nothing in sluiced changes it).
 */
#ifndef SL_DAEMON_H
#define SL_DAEMON_H

#include "common/log.h"

#include <stdbool.h>
#include <stdint.h>

#define SL_DAEMON_STATUS_LEN 160
/* The status line is refreshed at most this often (and only when it changed). */
#define SL_DAEMON_STATUS_MS 5000u

/* Writes the status line (streams, shards, connections) into `out`. */
typedef void (*sl_daemon_describe_fn)(void *ctx, char *out, uint32_t cap);

struct sl_daemon {
    bool notify; /* NOTIFY_SOCKET is set */
    bool ready;  /* READY=1 sent; status refreshes from the tick */
    bool stopping;
    uint64_t watchdog_ms;      /* ping interval (half of WATCHDOG_USEC); 0 = off */
    uint64_t watchdog_last_ms; /* monotonic */
    uint64_t status_last_ms;   /* monotonic */
    sl_daemon_describe_fn describe;
    void *describe_ctx;
    char status[SL_DAEMON_STATUS_LEN]; /* the last STATUS= sent */
    struct sl_log_ratelimit fail_rl;   /* failed sends: warned about, never fatal */
};

/* Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID; logs the watchdog
 * interval when there is one. `describe` (borrowed, may be NULL) fills the
 * status line refreshed from the tick. */
void sl_daemon_init(struct sl_daemon *d, sl_daemon_describe_fn describe, void *ctx);

/* STATUS=<text> now (start-up phases: "opening the data directory"). */
void sl_daemon_status(struct sl_daemon *d, const char *text);

/* READY=1 with the first status line: the listeners are open and the catalog
 * is loaded. Also the end of a reload (after sl_daemon_reloading). */
void sl_daemon_ready(struct sl_daemon *d);

/* From the main loop's tick (monotonic ms): WATCHDOG=1 every half interval,
 * so a loop that stops turning misses its pings and systemd restarts it;
 * the status line every SL_DAEMON_STATUS_MS when it changed. */
void sl_daemon_tick(struct sl_daemon *d, uint64_t now_ms);

/* RELOADING=1 (with MONOTONIC_USEC, as systemd >= 253 wants): main.c
 * brackets the SIGHUP reload (TLS certificates, auth rules) with this and
 * sl_daemon_ready. */
void sl_daemon_reloading(struct sl_daemon *d);

/* STOPPING=1: shutdown has begun. Idempotent. systemd stops the watchdog
 * from here on; TimeoutStopSec bounds the rest. */
void sl_daemon_stopping(struct sl_daemon *d);

#endif
