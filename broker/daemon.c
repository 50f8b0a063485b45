/* daemon.c - systemd's notify protocol for sluiced (see daemon.h).
 *
 * The messages: READY=1 (with STATUS=) once the listeners are open and the
 * catalog is loaded; STATUS= refreshed from the tick when it changed;
 * WATCHDOG=1 from the main loop's tick at half of WATCHDOG_USEC, so a loop
 * that hangs (a blocking call, a livelock) misses the deadline and systemd
 * kills and restarts the broker (WatchdogSec= and Restart=on-failure in
 * deploy/sluiced.service); RELOADING=1 ... READY=1 around a reload;
 * STOPPING=1 when shutdown begins.
 *
 * A failed send (the socket went away) is logged, rate-limited, and never
 * stops the broker: the manager's view is stale, the data path is not at
 * risk. unset_environment is 0 everywhere: unsetenv is not thread-safe once
 * the workers run, and sluiced starts no children that could inherit it.
 */
#include "broker/daemon.h"

#include "common/assert.h"
#include "common/clock.h"

#include <systemd/sd-daemon.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_state(struct sl_daemon *d, const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0 && sl_log_ratelimit_ok(&d->fail_rl)) {
        sl_warn("daemon", "cannot notify the service manager (%.40s...): %s", state, strerror(-rc));
    }
}

static void describe(struct sl_daemon *d, char *out, uint32_t cap)
{
    out[0] = '\0';
    if (d->describe != NULL) {
        d->describe(d->describe_ctx, out, cap);
    }
}

void sl_daemon_init(struct sl_daemon *d, sl_daemon_describe_fn fn, void *ctx)
{
    SL_ASSERT(d != NULL);
    memset(d, 0, sizeof(*d));
    d->describe = fn;
    d->describe_ctx = ctx;
    d->fail_rl.interval_ms = 60000;
    d->fail_rl.burst = 1;
    const char *sock = getenv("NOTIFY_SOCKET");
    d->notify = sock != NULL && sock[0] != '\0';
    if (!d->notify) {
        return;
    }
    uint64_t usec = 0;
    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is us. */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        d->watchdog_ms = usec / 2000u; /* half the interval, in ms */
        if (d->watchdog_ms == 0) {
            d->watchdog_ms = 1;
        }
        sl_info("daemon", "systemd watchdog: %" PRIu64 " ms, pinged every %" PRIu64 " ms",
                usec / 1000u, d->watchdog_ms);
    }
}

void sl_daemon_status(struct sl_daemon *d, const char *text)
{
    if (!d->notify) {
        return;
    }
    char msg[SL_DAEMON_STATUS_LEN + 16];
    snprintf(d->status, sizeof(d->status), "%s", text);
    snprintf(msg, sizeof(msg), "STATUS=%s", d->status);
    send_state(d, msg);
}

void sl_daemon_ready(struct sl_daemon *d)
{
    if (!d->notify) {
        return;
    }
    describe(d, d->status, sizeof(d->status));
    char msg[SL_DAEMON_STATUS_LEN + 32];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", d->status);
    send_state(d, msg);
    d->ready = true;
    d->status_last_ms = sl_clock_mono_ms();
}

void sl_daemon_tick(struct sl_daemon *d, uint64_t now_ms)
{
    if (!d->notify) {
        return;
    }
    /* Pings go on while stopping too: harmless where systemd has stopped
     * watching, and a loop that keeps turning is what they report. */
    if (d->watchdog_ms != 0 && now_ms - d->watchdog_last_ms >= d->watchdog_ms) {
        d->watchdog_last_ms = now_ms;
        send_state(d, "WATCHDOG=1");
    }
    if (d->ready && !d->stopping && now_ms - d->status_last_ms >= SL_DAEMON_STATUS_MS) {
        d->status_last_ms = now_ms;
        char now[SL_DAEMON_STATUS_LEN];
        describe(d, now, sizeof(now));
        if (strcmp(now, d->status) != 0) {
            sl_daemon_status(d, now);
        }
    }
}

void sl_daemon_reloading(struct sl_daemon *d)
{
    if (!d->notify) {
        return;
    }
    char msg[64];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, sl_clock_mono_ns() / 1000u);
    send_state(d, msg);
}

void sl_daemon_stopping(struct sl_daemon *d)
{
    if (!d->notify || d->stopping) {
        return;
    }
    d->stopping = true;
    send_state(d, "STOPPING=1\nSTATUS=shutting down: finishing in-flight requests");
}
