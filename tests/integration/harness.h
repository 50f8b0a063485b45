/* harness.h - the shared harness of the integration tests (tests/integration/).
 *
 * Runs the real broker (SLUICED_PATH, a compile definition set in tests/CMakeLists.txt) as a
 * child process on 127.0.0.1 with an ephemeral port and a fresh temporary directory under
 * /var/tmp: <root>/data is the data directory, <root>/port the port file. The broker's
 * stderr is the test's stderr (log level warn), so sanitizer reports show up in the log.
 *
 * Started brokers are remembered: at exit (a failed CHECK returns early) any broker still
 * running is killed and its directory removed. The child also gets SIGKILL if the test
 * process dies (PR_SET_PDEATHSIG), so a CTest timeout leaves nothing behind.
 */
#ifndef SL_IT_HARNESS_H
#define SL_IT_HARNESS_H

#include "client/sluice.h"
#include "common/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Sanitized builds run several times slower, and CI runs them two at a time on two cores:
 * timing margins (sessions, failover bounds) are multiplied by IT_SLOWDOWN there. */
#if defined(__SANITIZE_ADDRESS__)
#define IT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IT_ASAN 1
#endif
#endif
#ifdef IT_ASAN
#define IT_SLOWDOWN 2u
#else
#define IT_SLOWDOWN 1u
#endif

#define IT_EXTRA_ARGS_MAX 12

struct it_broker {
    char root[64];      /* /var/tmp/sluice-it-XXXXXX */
    char data[96];      /* <root>/data */
    char port_file[96]; /* <root>/port */
    char addr[32];      /* "127.0.0.1:PORT" once started */
    char flush[16];     /* "always" or "interval" */
    uint32_t port;      /* 0 until the first start */
    uint32_t http_port; /* 0: no HTTP listener (the HTTP tests use tests/http) */
    uint32_t nofile;    /* > 0: the broker runs with RLIMIT_NOFILE soft = hard = this */
    pid_t pid;          /* 0 when not running */
    int exit_status;    /* waitpid status of the last exit */
    /* How long a (re)start may take to listen and a stop to exit, in ms; 0 = the defaults
     * (10 s, 20 s). Set after the first start (which clears the struct) for brokers that
     * hold many shards; kept across restarts. */
    uint32_t start_wait_ms;
    uint32_t stop_wait_ms;
    /* Flags appended to the broker's command line (it_broker_start_args), kept across
     * restarts. */
    char extra[IT_EXTRA_ARGS_MAX][256];
    uint32_t n_extra;
};

/* Returns 0 when io_uring works here, else prints why and returns 77 (skip the test). Also
 * ignores SIGPIPE for the raw-socket tests. Call first in main. */
int it_preflight(void);

/* Creates the temporary directory and starts the broker on an ephemeral port with
 * `--flush flush` (NULL = "always"); waits up to 10 s for the port file. Returns 0 or -1
 * (after printing why). */
int it_broker_start(struct it_broker *b, const char *flush);

/* it_broker_start on a copy of the data directory `src` (an upgrade fixture). */
int it_broker_start_from(struct it_broker *b, const char *flush, const char *src);

/* it_broker_start with the HTTP listener on a free port (b->http_port). */
int it_broker_start_http(struct it_broker *b, const char *flush);

/* it_broker_start with the HTTP listener (as it_broker_start_http) under an open-file
 * limit: RLIMIT_NOFILE soft and hard set to `nofile` in the child before exec (so the
 * broker cannot raise it), kept across restarts. */
int it_broker_start_nofile(struct it_broker *b, const char *flush, uint32_t nofile);

/* it_broker_start with the HTTP listener on a free port, the native protocol on `port` (0 =
 * ephemeral) and the flags in `args` (NULL-terminated, at most IT_EXTRA_ARGS_MAX, each under
 * 256 bytes) appended to the command line (cluster mode: --cluster, --node-id...). When the
 * broker exits before listening, returns 1 and keeps b->exit_status (a refused start). */
int it_broker_start_args(struct it_broker *b, const char *flush, uint32_t port,
                         const char *const *args);

/* it_broker_start_args on a free port, started again on another (up to 5 times) when a
 * process took the port between the pick and the bind (rc 1). 0, or -1. */
int it_broker_start_free_port(struct it_broker *b, const char *flush, const char *const *args);

/* A TCP port free on 127.0.0.1 now (another process may take it). */
uint32_t it_free_port(void);

/* Starts the broker again on the same data directory and port (after stop or kill9).
 * Retries for a few seconds if the port is still busy. Returns 0 or -1. */
int it_broker_restart(struct it_broker *b);

/* SIGTERM, waits up to 20 s. Returns 0 when the broker exited with status 0, else -1. */
int it_broker_stop(struct it_broker *b);

/* SIGKILL and reap. Returns 0 when it died of SIGKILL. */
int it_broker_kill9(struct it_broker *b);

/* 1 when the broker process is still running (not exited), else 0. */
int it_broker_alive(struct it_broker *b);

/* Kills the broker if it runs and removes the temporary directory. Safe to call twice. */
void it_broker_cleanup(struct it_broker *b);

/* What the broker process holds, read from /proc (the broker is the harness's child):
 * its open descriptors (the entries of /proc/PID/fd) and its resident memory in KiB
 * (VmRSS in /proc/PID/status). 0 when the broker does not run or /proc cannot be read. */
uint32_t it_broker_fds(const struct it_broker *b);
uint64_t it_broker_rss_kib(const struct it_broker *b);

/* Connects a library client to the broker (short reconnect backoff). Returns SL_OK or the
 * error (printed with sluice_last_error). */
int it_connect(const struct it_broker *b, sluice_client **out);

/* Creates `name` with `shards` shards (compression none). Returns SL_OK or the error. */
int it_create_stream(sluice_client *c, const char *name, uint32_t shards);

/* Monotonic and wall-clock milliseconds; sleep. */
uint64_t it_mono_ms(void);
uint64_t it_wall_ms(void);
void it_sleep_ms(uint32_t ms);

/* An auth file's line for `user` with the password "<user>-pw" (sluiced --hash-password, 4096
 * iterations: quick), into line (cap bytes, with its newline). 0, or -1. */
int it_user_line(const char *user, char *line, size_t cap);

/* Runs the CLI (SLUICE_CLI_PATH) with `args` (NULL-terminated, without argv[0], at most 38);
 * stdin from `input` (NULL: empty), stdout - and stderr too with `with_stderr` - into `out`
 * (cap bytes, NUL-terminated), through files under b->root. Returns the exit code, or -1. */
int it_run_cli(const struct it_broker *b, const char *const *args, const char *input,
               int with_stderr, char *out, size_t cap);

/* Removes a directory tree (rm -rf). Returns 0 or -1. */
int it_rmtree(const char *path);

#endif
