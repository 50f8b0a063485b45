/* config.c - the broker's settings: one table, four sources.
 *
 * The table (`settings[]`) holds for each setting its name, INI section,
 * type (string, u32, u64, bool, enum), unit (plain, bytes, milliseconds),
 * default (as text, parsed by the same code as every other source, so the
 * defaults are validated too), range (numbers: value; strings: length),
 * help text and offset in struct sl_broker_config. Everything else (the
 * INI handler, flags, environment, --help) walks the table; adding a setting
 * is adding one row and one struct field.
 *
 * Sources, lowest precedence first: defaults, the INI file (`--config FILE`,
 * else $SLUICE_CONFIG), environment variables SLUICE_<NAME>, flags --<name>.
 * Each value is checked when it is read, so an error names its source
 * (file:line, the variable, the flag); the relations between settings are
 * checked at the end, naming the sources of both. Unknown INI keys and flags
 * are errors (with the nearest name by edit distance); unknown SLUICE_*
 * variables are ignored (tests and tools use the prefix too).
 *
 * Every value's source is kept (struct sl_config_sources) for error messages
 * and `--print-config`, which prints every setting's effective value as an
 * INI file that --config reads back, each line ending in a comment naming its
 * source: `default`, `FILE:LINE`, `env SLUICE_NAME` or `flag --name`.
 * Errors read `SOURCE: name = value: must be RANGE`.
 *
 * INI parsing is inih's (the only file that includes <ini.h>). inih does not
 * pass line numbers in this build (INI_HANDLER_LINENO 0), so lines are
 * counted in our own reader; a line longer than inih's buffer is an error
 * rather than being split silently.
 */
#include "broker/config.h"
#include "broker/version.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/checkpoint.h"
#include "storage/shard.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum stype { T_STR = 0, T_U32, T_U64, T_BOOL, T_ENUM };
enum sunit { U_NONE = 0, U_BYTES, U_MS };

struct setting {
    const char *name;
    const char *section;
    enum stype type;
    enum sunit unit;
    const char *def;
    uint64_t min; /* numbers: value; strings: length */
    uint64_t max;
    const char *const *choices; /* T_ENUM: NULL-terminated; index = stored value */
    size_t off;
    const char *help;
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const flush_modes[] = {"always", "interval", NULL};
static const char *const io_modes[] = {"buffered", "direct", NULL}; /* = enum sl_io_mode */
static const char *const tls_client_auths[] = {"none", "optional", "require", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};
_Static_assert(SL_TLS_CLIENT_AUTH_NONE == 0 && SL_TLS_CLIENT_AUTH_OPTIONAL == 1 &&
                   SL_TLS_CLIENT_AUTH_REQUIRE == 2,
               "tls_client_auths[] order is the enum's");
_Static_assert(SL_LOG_DEBUG == 0 && SL_LOG_INFO == 1 && SL_LOG_WARN == 2 && SL_LOG_ERROR == 3,
               "log_levels[] order is the enum's");
_Static_assert(SL_FLUSH_ALWAYS == 0 && SL_FLUSH_INTERVAL == 1, "flush_modes[] order is the enum's");
_Static_assert(SL_LOG_TEXT == 0 && SL_LOG_JSON == 1, "log_formats[] order is the enum's");
_Static_assert(sizeof(enum sl_log_level) == sizeof(int) &&
                   sizeof(enum sl_flush_policy) == sizeof(int),
               "enum settings are stored as int");
_Static_assert(sizeof(enum sl_tls_client_auth) == sizeof(int) &&
                   sizeof(enum sl_log_format) == sizeof(int),
               "enum settings are stored as int");

#define KiB          (1ull << 10)
#define MiB          (1ull << 20)
#define GiB          (1ull << 30)
#define TiB          (1ull << 40)
#define SEC          1000ull
#define MIN          (60 * SEC)
#define HOUR         (60 * MIN)
#define DAY          (24 * HOUR)
#define PATH_LEN_MAX 4000 /* below PATH_MAX, leaving room for names under it */

#define OFF(f) offsetof(struct sl_broker_config, f)

/* clang-format off */
static const struct setting settings[] = {
    {"data", "server", T_STR, U_NONE, "./data", 1, PATH_LEN_MAX, NULL, OFF(data),
     "Data directory: streams, shards and checkpoints live under <data>/streams."},
    {"host", "server", T_STR, U_NONE, "127.0.0.1", 1, 255, NULL, OFF(host),
     "Address to listen on (0.0.0.0 for every interface)."},
    {"port", "server", T_U32, U_NONE, "7400", 0, 65535, NULL, OFF(port),
     "TCP port of the native protocol; 0 picks a free (ephemeral) port."},
    {"port_file", "server", T_STR, U_NONE, "", 0, PATH_LEN_MAX, NULL, OFF(port_file),
     "When set, the bound port is written to this file once listening (tests use it)."},
    {"log_level", "server", T_ENUM, U_NONE, "info", 0, 0, log_levels, OFF(log_level),
     "Least severe log level printed."},
    {"log_format", "server", T_ENUM, U_NONE, "text", 0, 0, log_formats, OFF(log_format),
     "text: one line per event (with the syslog priority instead of a timestamp when stderr "
     "is the journal); json: one JSON object per line (ts, level, subsys, msg)."},
    {"workers", "server", T_U32, U_NONE, "0", 0, 64, NULL, OFF(workers),
     "Threads that own shards, each with its own io_uring ring; the first also runs the "
     "network. 0 = one per CPU core this process may use (taskset, cpuset)."},
    {"conn_workers", "server", T_BOOL, U_NONE, "false", 0, 1, NULL, OFF(conn_workers),
     "Spread native-protocol connections over every worker: each connection's socket, TLS "
     "and framing run on one worker's loop (round robin); its requests still run on the "
     "first. false: every connection on the first worker."},
    {"shutdown_timeout_ms", "server", T_U32, U_MS, "10s", 0, HOUR, NULL, OFF(shutdown_timeout_ms),
     "On SIGTERM/SIGINT, how long in-flight work may take before the broker exits anyway."},

    {"max_connections", "connections", T_U32, U_NONE, "1024", 1, 1000000, NULL,
     OFF(max_connections), "Open client connections; more are refused."},
    {"max_frame_bytes", "connections", T_U32, U_BYTES, "16MiB", 1 * KiB, 256 * MiB, NULL,
     OFF(max_frame_bytes), "Largest protocol frame accepted; a bigger one closes the connection."},
    {"max_inflight", "connections", T_U32, U_NONE, "256", 1, 65536, NULL, OFF(max_inflight),
     "Requests in flight per connection; beyond it the broker stops reading the connection."},
    {"conn_buffer_bytes", "connections", T_U32, U_BYTES, "64KiB", 4 * KiB, 256 * MiB, NULL,
     OFF(conn_buffer_bytes),
     "Receive buffer per connection; grows to max_frame_bytes for one big frame only."},
    {"idle_timeout_ms", "connections", T_U32, U_MS, "5min", 0, 7 * DAY, NULL,
     OFF(idle_timeout_ms), "Close a connection idle this long (0 = never)."},
    {"frame_timeout_ms", "connections", T_U32, U_MS, "30s", 100, 1 * DAY, NULL,
     OFF(frame_timeout_ms),
     "Close a connection whose request frame has been arriving for this long (slowloris)."},
    {"fetch_wait_max_ms", "connections", T_U32, U_MS, "30s", 0, 10 * MIN, NULL,
     OFF(fetch_wait_max_ms), "Longest long-poll a fetch may ask for."},

    {"http_port", "http", T_U32, U_NONE, "7480", 0, 65535, NULL, OFF(http_port),
     "TCP port of the HTTP listener (operations endpoints /healthz, /readyz, /metrics; "
     "the AWS-compatible APIs), on the same host as the native port; 0 = no HTTP listener. "
     "HTTP/1.1 and HTTP/2 cleartext (prior knowledge or Upgrade: h2c)."},
    {"http_header_bytes_max", "http", T_U32, U_BYTES, "16KiB", 1 * KiB, 1 * MiB, NULL,
     OFF(http_header_bytes_max),
     "Largest request head (request line and headers); a bigger one is answered 431."},
    {"http_body_bytes_max", "http", T_U32, U_BYTES, "16MiB", 1 * KiB, 256 * MiB, NULL,
     OFF(http_body_bytes_max),
     "Largest request body; a bigger one is answered 413 (a 5 MiB PutRecords is ~7 MiB "
     "of JSON)."},

    {"ui", "http", T_BOOL, U_NONE, "true", 0, 1, NULL, OFF(ui),
     "Serve the web console at http://HOST:http_port/ui/ (its JSON API under /api/v1/ is "
     "served either way; with auth on it asks for a login)."},
    {"ui_sample_interval_ms", "http", T_U32, U_MS, "10s", 1000, 60000, NULL,
     OFF(ui_sample_interval_ms),
     "How often the broker samples its counters for the console's charts; it keeps 360 "
     "samples (an hour at 10 s) in a fixed ~1.2 MiB."},

    {"tls", "tls", T_BOOL, U_NONE, "false", 0, 1, NULL, OFF(tls),
     "TLS on the native and the HTTP listener (no plaintext port stays open). Certificates "
     "are read again on SIGHUP; open connections keep theirs."},
    {"tls_cert_file", "tls", T_STR, U_NONE, "", 0, PATH_LEN_MAX, NULL, OFF(tls_cert_file),
     "PEM certificate chain of the broker (required with tls = true)."},
    {"tls_key_file", "tls", T_STR, U_NONE, "", 0, PATH_LEN_MAX, NULL, OFF(tls_key_file),
     "PEM private key of tls_cert_file; keep it readable by the broker's user only."},
    {"tls_ca_file", "tls", T_STR, U_NONE, "", 0, PATH_LEN_MAX, NULL, OFF(tls_ca_file),
     "PEM CA certificates that sign client certificates (needed for tls_client_auth)."},
    {"tls_client_auth", "tls", T_ENUM, U_NONE, "none", 0, 0, tls_client_auths,
     OFF(tls_client_auth),
     "Client certificates: none, optional (verified when sent), require (mutual TLS)."},
    {"tls_min_version", "tls", T_ENUM, U_NONE, "1.2", 0, 0, tls_versions, OFF(tls_min_version),
     "Oldest TLS version accepted: 1.2 or 1.3."},

    {"auth", "auth", T_BOOL, U_NONE, "false", 0, 1, NULL, OFF(auth),
     "Authentication and per-stream ACLs: SCRAM-SHA-256 on the native protocol, SigV4 on the "
     "AWS APIs, the certificate's name under tls_client_auth = require. Deny by default."},
    {"auth_file", "auth", T_STR, U_NONE, "", 0, PATH_LEN_MAX, NULL, OFF(auth_file),
     "Principals, AWS access keys and allow rules (mode 0600; see docs/SECURITY.md); read "
     "again on SIGHUP."},

    {"default_retention_hours", "streams", T_U32, U_NONE, "168", 1, 8760, NULL,
     OFF(default_retention_hours), "Retention of a stream created without one (max 365 days)."},
    {"default_shards", "streams", T_U32, U_NONE, "1", 1, 1024, NULL, OFF(default_shards),
     "Shard count of a stream created without one."},
    {"auto_create_streams", "streams", T_BOOL, U_NONE, "false", 0, 1, NULL,
     OFF(auto_create_streams),
     "A produce to an unknown stream creates it with the defaults above."},
    {"retention_check_ms", "streams", T_U32, U_MS, "1min", 1 * SEC, DAY, NULL,
     OFF(retention_check_ms), "How often expired segments are looked for and deleted."},
    {"dedup_window_ms", "streams", T_U32, U_MS, "5min", 0, DAY, NULL, OFF(dedup_window_ms),
     "A record whose sluice.dedup_id attribute was seen on the stream this recently is "
     "acknowledged but not stored again (0 = off)."},
    /* Defaults: 100,000 streams is the 100,000 one-shard streams #11 targets; 200,000 shards
     * is twice its 100,000 shards (room for dead-letter and SQS streams), while a runaway
     * create (auto_create_streams with a name per key) stops at a known size. */
    {"streams_max", "streams", T_U32, U_NONE, "100000", 1, 10000000, NULL, OFF(streams_max),
     "Streams the broker holds; creating one more (CreateStream, CreateQueue, a produce "
     "with auto_create_streams, a dead-letter stream) is refused with SL_ELIMIT. Streams "
     "already on disk are all opened."},
    {"shards_max", "streams", T_U32, U_NONE, "200000", 1, 100000000, NULL, OFF(shards_max),
     "Shards of all streams together; a create that would pass it is refused with "
     "SL_ELIMIT."},
    {"push", "streams", T_BOOL, U_NONE, "true", 0, 1, NULL, OFF(push),
     "Push targets: the broker POSTs queue groups' records to HTTP endpoints by itself "
     "(sluice target add); false refuses them and leaves the saved ones idle."},

    {"segment_bytes", "storage", T_U64, U_BYTES, "256MiB", 4 * KiB, 1 * TiB, NULL,
     OFF(segment_bytes), "A shard's active segment rolls when the next batch would pass this."},
    {"segment_age_ms", "storage", T_U64, U_MS, "7d", 0, 365 * DAY, NULL, OFF(segment_age_ms),
     "...or when its first batch is this old (0 = never by age)."},
    {"index_interval_bytes", "storage", T_U32, U_BYTES, "16KiB", 256, 64 * MiB, NULL,
     OFF(index_interval_bytes), "One sparse index entry per this many bytes of log."},
    {"flush", "storage", T_ENUM, U_NONE, "always", 0, 0, flush_modes, OFF(flush),
     "always: acknowledge after fdatasync (group commit); interval: after the write, "
     "fdatasync every flush_interval_ms. Applies to records, checkpoints and queue acks."},
    {"flush_interval_ms", "storage", T_U32, U_MS, "1s", 1, HOUR, NULL, OFF(flush_interval_ms),
     "flush=interval: longest time between fdatasyncs."},
    {"write_buf_bytes", "storage", T_U32, U_BYTES, "1MiB", 4 * KiB, 256 * MiB, NULL,
     OFF(write_buf_bytes), "Size of one staging buffer (one write) per shard."},
    {"write_bufs", "storage", T_U32, U_NONE, "4", 2, 64, NULL, OFF(write_bufs),
     "Staging buffers per shard (writes in flight + 1)."},
    {"pending_max", "storage", T_U32, U_NONE, "4096", 1, 16 * MiB, NULL, OFF(pending_max),
     "Appended batches not yet acknowledged, per shard; beyond it produces are refused "
     "(EAGAIN)."},
    {"batch_bytes_max", "storage", T_U32, U_BYTES, "8MiB", 1 * KiB, 64 * MiB, NULL,
     OFF(batch_bytes_max), "Largest batch accepted."},
    {"open_segments_max", "storage", T_U32, U_NONE, "16", 1, 65536, NULL,
     OFF(open_segments_max), "Sealed segments kept open (fd + index) per shard for reads."},
    {"segment_prezero_bytes", "storage", T_U64, U_BYTES, "4MiB", 0, 1 * GiB, NULL,
     OFF(segment_prezero_bytes),
     "Zeroed run-ahead of each active segment's log: the file is kept this far past its data "
     "with zeros written (and fdatasynced) ahead of the appends, so a durable append's "
     "fdatasync does not also commit a new file size (on ext4 that cut p99 durable ack "
     "several times over with 4 shards; README, issue 12). Files are up to this much larger "
     "than their data while written; 0 = off; else at least 64KiB."},
    {"io_mode", "storage", T_ENUM, U_NONE, "buffered", 0, 0, io_modes, OFF(io_mode),
     "buffered: segment data is written through the page cache; direct: with O_DIRECT from "
     "aligned buffers (no page-cache copy); the newest data of each shard is read from "
     "direct_read_cache_bytes of memory, older data through the page cache. The data "
     "directory's filesystem must support O_DIRECT (checked at start-up). README: Direct I/O."},
    {"direct_read_cache_bytes", "storage", T_U32, U_BYTES, "1MiB", 0, 1 * GiB, NULL,
     OFF(direct_read_cache_bytes),
     "io_mode = direct: the newest bytes of each shard's active segment kept in memory for "
     "tailing reads (allocated when the shard takes traffic, freed when it goes idle and is "
     "parked); 0 = none; else at least 64KiB."},
    {"open_files_max", "storage", T_U32, U_NONE, "0", 0, 1000000000, NULL, OFF(open_files_max),
     "Descriptors the shards' files and the streams' checkpoint and queue-state stores may "
     "hold open together (the storage layer's budget; the stores get a sixteenth, at least "
     "16, and idle ones are closed until used). "
     "0 = derived at start-up: the open-file limit (RLIMIT_NOFILE, whose soft limit the "
     "broker raises to the hard one) minus max_connections minus 256 for the broker's own "
     "(listeners, rings, stores). A value above that is refused at start-up."},

    {"checkpoint_groups_max", "checkpoints", T_U32, U_NONE, "1024", 1, 1 * MiB, NULL,
     OFF(checkpoint_groups_max), "Consumer groups with checkpoints, per stream."},
    {"queue_groups_max", "checkpoints", T_U32, U_NONE, "1024", 1, 1 * MiB, NULL,
     OFF(queue_groups_max),
     "Queue groups per stream (each topic subscription and EventBridge (rule, target) pair is "
     "one). An idle group costs little: its lease table grows as leases are held, up to its "
     "max_inflight."},
    {"checkpoint_log_bytes_max", "checkpoints", T_U32, U_BYTES, "4MiB", 4 * KiB, 1 * GiB, NULL,
     OFF(checkpoint_log_bytes_max),
     "The checkpoint log is compacted into a snapshot when it passes this (per stream)."},
    {"checkpoint_pending_max", "checkpoints", T_U32, U_NONE, "16384", 1, 16 * MiB, NULL,
     OFF(checkpoint_pending_max),
     "Checkpoint commits not yet durable, per stream; beyond it commits are refused (EAGAIN)."},

    {"cluster", "cluster", T_STR, U_NONE, "", 0, 1000, NULL, OFF(cluster),
     "zk://HOST:PORT[,HOST:PORT...]/CHROOT: join the cluster whose metadata this ZooKeeper "
     "ensemble keeps under CHROOT (created if missing). Empty (the default): one broker, "
     "no ZooKeeper. Needs node_id and a fixed port."},
    {"node_id", "cluster", T_U32, U_NONE, "0", 0, 1000000, NULL, OFF(node_id),
     "This broker's id in the cluster (1..1000000), unique among live brokers: a broker "
     "whose id another live broker holds is refused at start-up."},
    {"advertise", "cluster", T_STR, U_NONE, "", 0, 255, NULL, OFF(advertise),
     "HOST:PORT at which other brokers and clients reach this broker's native protocol; "
     "empty = host:port (then host must not be a wildcard such as 0.0.0.0)."},
    {"cluster_session_timeout_ms", "cluster", T_U32, U_MS, "6s", 400, 60000, NULL,
     OFF(cluster_session_timeout_ms),
     "ZooKeeper session timeout: a broker that stops answering for this long leaves the "
     "list of live brokers (its node goes with its session). The server bounds it to its "
     "own minSessionTimeout..maxSessionTimeout (2..20 ticks by default)."},
    {"min_insync_replicas", "cluster", T_U32, U_NONE, "2", 1, 7, NULL, OFF(min_insync_replicas),
     "A replicated shard acknowledges an append once this many in-sync replicas hold it "
     "durably (capped by the stream's replication factor); with fewer in sync, appends are "
     "refused (NOT_ENOUGH_REPLICAS) rather than kept on too few disks."},
    {"replica_lag_ms", "cluster", T_U32, U_MS, "10s", 5000, 600000, NULL, OFF(replica_lag_ms),
     "A follower that has not caught up with its leader for this long leaves the in-sync "
     "set (the leader writes the smaller set to ZooKeeper); it rejoins once caught up."},
    {"reassign_throttle_bytes", "cluster", T_U64, U_BYTES, "0", 0, 1 * TiB, NULL,
     OFF(reassign_throttle_bytes),
     "Bytes a second this broker, as leader, sends to the replicas a reassignment adds (the "
     "copy of their shards' logs), all shards together; 0: no limit. Producers and in-sync "
     "followers are never held back by it (Kafka's replication throttle)."},
    {"peer_credentials_file", "cluster", T_STR, U_NONE, "", 0, PATH_LEN_MAX, NULL,
     OFF(peer_credentials_file),
     "'user = NAME' and 'password = SECRET' lines (mode 0600): how this broker logs in to "
     "the other brokers to replicate. Required with auth = true in a cluster; the user needs "
     "the admin right on every replicated stream (docs/SECURITY.md)."},
    {"peer_tls_ca_file", "cluster", T_STR, U_NONE, "", 0, PATH_LEN_MAX, NULL,
     OFF(peer_tls_ca_file),
     "With tls = true: PEM CAs that sign the other brokers' certificates (empty: the "
     "system's CAs). Under tls_client_auth = require this broker presents tls_cert_file to "
     "them."},
};
/* clang-format on */

#define N_SETTINGS   (sizeof(settings) / sizeof(settings[0]))
#define NAME_MAX_LEN 64
#define SRC_LEN      160

/* Where each current value came from ("default", "FILE:LINE", "env VAR", "flag --name"). */
struct sl_config_sources {
    char src[N_SETTINGS][SRC_LEN];
};

/* The state of one sl_config_load. */
struct loader {
    struct sl_broker_config *cfg;
    char (*src)[SRC_LEN]; /* cfg->sources->src */
    char *err;
    size_t err_len;
    int rc;
    /* INI reading */
    FILE *fp;
    const char *file;
    int line;
    int ini_chunk; /* the buffer size inih passes to the reader */
    bool too_long;
};

static int fail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the first error (later ones would only be consequences). */
static int fail(struct loader *ld, const char *fmt, ...)
{
    if (ld->rc == SL_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->err, ld->err_len, fmt, ap);
        va_end(ap);
        ld->rc = SL_EINVAL;
    }
    return SL_EINVAL;
}

/* ------------------------------------------------------------------ */
/* names                                                               */

/* Lower-cases and maps '-' to '_'; false if too long or not [a-z0-9_-]. */
static bool norm_name(const char *in, size_t len, char out[NAME_MAX_LEN])
{
    if (len == 0 || len >= NAME_MAX_LEN) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)in[i]);
        if (c == '-') {
            c = '_';
        }
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            return false;
        }
        out[i] = c;
    }
    out[len] = '\0';
    return true;
}

static int find_setting(const char *norm)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (strcmp(settings[i].name, norm) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Levenshtein distance of two short strings (two rows, no recursion). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la >= NAME_MAX_LEN || lb >= NAME_MAX_LEN) {
        return SIZE_MAX;
    }
    size_t prev[NAME_MAX_LEN + 1], cur[NAME_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

/* The closest setting name, or NULL when none is close. */
static const char *closest(const char *name)
{
    char norm[NAME_MAX_LEN];
    size_t n = strlen(name);
    if (n >= NAME_MAX_LEN) {
        return NULL;
    }
    for (size_t i = 0; i <= n; i++) {
        norm[i] = name[i] == '-' ? '_' : (char)tolower((unsigned char)name[i]);
    }
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        size_t d = edit_distance(norm, settings[i].name);
        if (d < best_d) {
            best_d = d;
            best = settings[i].name;
        }
    }
    size_t limit = n / 3 > 2 ? n / 3 : 2;
    return best_d <= limit ? best : NULL;
}

static void flag_name(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    for (; name[i] != '\0' && i + 1 < cap; i++) {
        out[i] = name[i] == '_' ? '-' : name[i];
    }
    out[i] = '\0';
}

static void env_name(const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "SLUICE_");
    size_t i = n > 0 ? (size_t)n : 0;
    for (size_t k = 0; name[k] != '\0' && i + 1 < cap; k++, i++) {
        out[i] = (char)toupper((unsigned char)name[k]);
    }
    out[i] = '\0';
}

/* ------------------------------------------------------------------ */
/* values                                                              */

static bool parse_u64(const char *s, uint64_t *out, const char **rest)
{
    if (!(s[0] >= '0' && s[0] <= '9')) {
        return false; /* strtoull would accept "-1", " 1", "+1" */
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        return false;
    }
    *out = v;
    *rest = end;
    return true;
}

struct suffix {
    const char *text;
    uint64_t mul;
};

static const struct suffix byte_suffixes[] = {
    {"", 1},      {"b", 1},    {"k", KiB},   {"kb", KiB},  {"kib", KiB},
    {"m", MiB},   {"mb", MiB}, {"mib", MiB}, {"g", GiB},   {"gb", GiB},
    {"gib", GiB}, {"t", TiB},  {"tb", TiB},  {"tib", TiB}, {NULL, 0},
};
static const struct suffix ms_suffixes[] = {
    {"", 1},     {"ms", 1},      {"s", SEC}, {"sec", SEC}, {"m", MIN},    {"min", MIN},
    {"h", HOUR}, {"hour", HOUR}, {"d", DAY}, {"day", DAY}, {"days", DAY}, {NULL, 0},
};

/* A number with an optional unit suffix (case-insensitive; KiB = 1024). */
static bool parse_number(const char *s, enum sunit unit, uint64_t *out)
{
    uint64_t v = 0;
    const char *rest = NULL;
    if (!parse_u64(s, &v, &rest)) {
        return false;
    }
    const struct suffix *list = unit == U_BYTES ? byte_suffixes : unit == U_MS ? ms_suffixes : NULL;
    if (list == NULL) {
        *out = v;
        return rest[0] == '\0';
    }
    for (const struct suffix *x = list; x->text != NULL; x++) {
        if (strcasecmp(rest, x->text) == 0) {
            if (x->mul > 1 && v > UINT64_MAX / x->mul) {
                return false;
            }
            *out = v * x->mul;
            return true;
        }
    }
    return false;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* A value in the largest unit that divides it ("256MiB", "7d", "1500"). */
static void fmt_value(enum sunit unit, uint64_t v, char *out, size_t cap)
{
    static const struct suffix bytes[] = {{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}};
    static const struct suffix ms[] = {{"d", DAY}, {"h", HOUR}, {"min", MIN}, {"s", SEC}};
    const struct suffix *list = unit == U_BYTES ? bytes : unit == U_MS ? ms : NULL;
    for (size_t i = 0; list != NULL && v > 0 && i < 4; i++) {
        if (v % list[i].mul == 0) {
            snprintf(out, cap, "%" PRIu64 "%s", v / list[i].mul, list[i].text);
            return;
        }
    }
    snprintf(out, cap, "%" PRIu64, v);
}

/* Describes what a setting accepts, completing "must be ..." (errors, --help):
 * numbers as plain integers first (what a script can compare), then in units. */
static void describe_range(const struct setting *st, char *out, size_t cap)
{
    switch (st->type) {
    case T_STR:
        if (st->min > 0) {
            snprintf(out, cap, "a non-empty string of at most %" PRIu64 " bytes", st->max);
        } else {
            snprintf(out, cap, "a string of at most %" PRIu64 " bytes", st->max);
        }
        break;
    case T_BOOL:
        snprintf(out, cap, "true or false (yes/no, on/off, 1/0)");
        break;
    case T_ENUM: {
        size_t n = (size_t)snprintf(out, cap, "one of:");
        for (size_t i = 0; st->choices[i] != NULL && n < cap; i++) {
            n += (size_t)snprintf(out + n, cap - n, "%s %s", i > 0 ? "," : "", st->choices[i]);
        }
        break;
    }
    default: {
        char lo[32], hi[32];
        fmt_value(st->unit, st->min, lo, sizeof(lo));
        fmt_value(st->unit, st->max, hi, sizeof(hi));
        int n = snprintf(out, cap, "between %" PRIu64 " and %" PRIu64, st->min, st->max);
        if (n > 0 && (size_t)n < cap && st->unit != U_NONE) {
            snprintf(out + n, cap - (size_t)n, " (%s and %s; %s)", lo, hi,
                     st->unit == U_BYTES ? "bytes, or with a suffix KiB, MiB, GiB, TiB"
                                         : "milliseconds, or with a suffix ms, s, min, h, d");
        }
        break;
    }
    }
}

static void *field(struct sl_broker_config *cfg, const struct setting *st)
{
    return (char *)cfg + st->off;
}

/* Parses `value` for setting `idx` and stores it; `src` says where it came
 * from (kept for later messages). */
static int set_value(struct loader *ld, size_t idx, const char *value, const char *src)
{
    const struct setting *st = &settings[idx];
    void *f = field(ld->cfg, st);
    bool ok = false;
    uint64_t v = 0;
    bool b = false;
    switch (st->type) {
    case T_STR: {
        size_t n = strlen(value);
        ok = n >= st->min && n <= st->max;
        if (ok) {
            char *dup = strdup(value);
            if (dup == NULL) {
                ld->rc = SL_ENOMEM;
                snprintf(ld->err, ld->err_len, "out of memory");
                return SL_ENOMEM;
            }
            char **slot = f;
            free(*slot);
            *slot = dup;
        }
        break;
    }
    case T_U32:
    case T_U64:
        ok = parse_number(value, st->unit, &v) && v >= st->min && v <= st->max;
        if (ok && st->type == T_U32) {
            uint32_t v32 = (uint32_t)v;
            memcpy(f, &v32, sizeof(v32));
        } else if (ok) {
            memcpy(f, &v, sizeof(v));
        }
        break;
    case T_BOOL:
        ok = parse_bool(value, &b);
        if (ok) {
            memcpy(f, &b, sizeof(b));
        }
        break;
    case T_ENUM:
        for (int i = 0; st->choices[i] != NULL && !ok; i++) {
            if (strcasecmp(value, st->choices[i]) == 0) {
                memcpy(f, &i, sizeof(i));
                ok = true;
            }
        }
        break;
    }
    if (!ok) {
        char range[160];
        describe_range(st, range, sizeof(range));
        return fail(ld, "%s: %s = %.200s: must be %s", src, st->name, value, range);
    }
    snprintf(ld->src[idx], SRC_LEN, "%s", src);
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* sources                                                             */

static int load_defaults(struct loader *ld)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *st = &settings[i];
        /* every number has a range, every string a length limit */
        SL_ASSERT(st->type == T_BOOL || st->type == T_ENUM || st->min < st->max);
        SL_ASSERT(st->type != T_ENUM || (st->choices != NULL && st->choices[0] != NULL));
        int rc = set_value(ld, i, st->def, "default");
        SL_ASSERT(rc != SL_EINVAL); /* a default outside its own range is a bug */
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

/* fgets for inih, counting lines; a line longer than inih's buffer stops the
 * parse (returning NULL = end of input) with an error. */
static char *ini_reader_fn(char *str, int num, void *stream)
{
    struct loader *ld = stream;
    char *r = fgets(str, num, ld->fp);
    if (r == NULL) {
        return NULL;
    }
    ld->line++;
    size_t n = strlen(r);
    if (n + 1 == (size_t)num && r[n - 1] != '\n' && !feof(ld->fp)) {
        ld->too_long = true;
        ld->ini_chunk = num;
        return NULL;
    }
    return r;
}

static int ini_handler_fn(void *user, const char *section, const char *name, const char *value)
{
    struct loader *ld = user;
    char src[SRC_LEN];
    snprintf(src, sizeof(src), "%.120s:%d", ld->file, ld->line);
    char norm[NAME_MAX_LEN];
    int idx = norm_name(name, strlen(name), norm) ? find_setting(norm) : -1;
    if (idx < 0) {
        const char *near = closest(name);
        fail(ld, "%s: unknown setting \"%.64s\"%s%s%s", src, name, near ? " (did you mean " : "",
             near ? near : "", near ? "?)" : "");
        return 0;
    }
    const struct setting *st = &settings[idx];
    if (section[0] != '\0' && strcasecmp(section, st->section) != 0) {
        fail(ld, "%s: setting %s belongs in section [%s] (or before any section), not [%.64s]", src,
             st->name, st->section, section);
        return 0;
    }
    return set_value(ld, (size_t)idx, value, src) == SL_OK;
}

static int load_file(struct loader *ld, const char *path)
{
    ld->fp = fopen(path, "r");
    if (ld->fp == NULL) {
        return fail(ld, "cannot open config file %.200s: %s", path, strerror(errno));
    }
    ld->file = path;
    ld->line = 0;
    int r = ini_parse_stream(ini_reader_fn, ld, ini_handler_fn, ld);
    fclose(ld->fp);
    ld->fp = NULL;
    if (ld->too_long) {
        return fail(ld, "%.200s:%d: line too long (at most %d bytes)", path, ld->line,
                    ld->ini_chunk - 2);
    }
    if (ld->rc != SL_OK) {
        return ld->rc;
    }
    if (r == -2) {
        ld->rc = SL_ENOMEM;
        snprintf(ld->err, ld->err_len, "out of memory reading %.200s", path);
        return SL_ENOMEM;
    }
    if (r != 0) {
        return fail(ld, "%.200s:%d: syntax error (expected `name = value` or `[section]`)", path,
                    r);
    }
    char *dup = strdup(path);
    if (dup == NULL) {
        ld->rc = SL_ENOMEM;
        return SL_ENOMEM;
    }
    ld->cfg->config_file = dup;
    return SL_OK;
}

static int load_env(struct loader *ld)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        char var[NAME_MAX_LEN + 8];
        env_name(settings[i].name, var, sizeof(var));
        const char *v = getenv(var);
        if (v == NULL) {
            continue;
        }
        char src[SRC_LEN];
        snprintf(src, sizeof(src), "env %s", var);
        int rc = set_value(ld, i, v, src);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* Splits "--name[=value]": the name (normalized) and the value or NULL. */
static bool split_flag(const char *arg, char norm[NAME_MAX_LEN], const char **value)
{
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    *value = eq != NULL ? eq + 1 : NULL;
    return norm_name(name, len, norm);
}

static int load_flags(struct loader *ld, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            return fail(ld,
                        "unexpected argument \"%.200s\" (settings are --name value or "
                        "--name=value; see --help)",
                        arg);
        }
        if (strcmp(arg, "--print-config") == 0) {
            ld->cfg->print_config = true;
            continue;
        }
        char norm[NAME_MAX_LEN];
        const char *value = NULL;
        bool good = split_flag(arg, norm, &value);
        int idx = good ? find_setting(norm) : -1;
        bool is_config = good && strcmp(norm, "config") == 0;
        if (idx < 0 && !is_config) {
            size_t n = value != NULL ? (size_t)(value - 1 - (arg + 2)) : strlen(arg + 2);
            char shown[NAME_MAX_LEN] = "";
            snprintf(shown, sizeof(shown), "%.*s", (int)(n < 63 ? n : 63), arg + 2);
            const char *near = closest(shown);
            char fl[NAME_MAX_LEN] = "";
            if (near != NULL) {
                flag_name(near, fl, sizeof(fl));
            }
            return fail(ld, "unknown flag --%s%s%s%s", shown, near ? " (did you mean --" : "", fl,
                        near ? "?)" : "");
        }
        if (value == NULL) {
            bool b = false;
            bool next_is_value = i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0;
            if (idx >= 0 && settings[idx].type == T_BOOL &&
                !(next_is_value && parse_bool(argv[i + 1], &b))) {
                value = "true"; /* a bare --flag */
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return fail(ld, "flag %s needs a value", arg);
            }
        }
        if (is_config) {
            continue; /* read before the environment (load_config_file) */
        }
        char src[SRC_LEN];
        char fl[NAME_MAX_LEN];
        flag_name(settings[idx].name, fl, sizeof(fl));
        snprintf(src, sizeof(src), "flag --%s", fl);
        int rc = set_value(ld, (size_t)idx, value, src);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

/* The INI file named by --config (the last one wins) or $SLUICE_CONFIG. */
static int load_config_file(struct loader *ld, int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
    }
    if (path == NULL) {
        path = getenv("SLUICE_CONFIG");
    }
    if (path == NULL || path[0] == '\0') {
        return SL_OK;
    }
    return load_file(ld, path);
}

/* Relations between settings, and the storage layer's own check. */
static int check_relations(struct loader *ld)
{
    const struct sl_broker_config *c = ld->cfg;
    int ibuf = find_setting("conn_buffer_bytes"), iframe = find_setting("max_frame_bytes");
    SL_ASSERT(ibuf >= 0 && iframe >= 0);
    if (c->conn_buffer_bytes > c->max_frame_bytes) {
        return fail(ld,
                    "conn_buffer_bytes (%" PRIu32 ", from %s) must not exceed max_frame_bytes "
                    "(%" PRIu32 ", from %s)",
                    c->conn_buffer_bytes, ld->src[ibuf], c->max_frame_bytes, ld->src[iframe]);
    }
    if (c->tls && (c->tls_cert_file[0] == '\0' || c->tls_key_file[0] == '\0')) {
        return fail(ld, "tls = true (from %s) needs tls_cert_file and tls_key_file",
                    ld->src[find_setting("tls")]);
    }
    if (c->tls && c->tls_client_auth != SL_TLS_CLIENT_AUTH_NONE && c->tls_ca_file[0] == '\0') {
        return fail(ld, "tls_client_auth = %s (from %s) needs tls_ca_file: the CAs that sign "
                        "client certificates",
                    tls_client_auths[c->tls_client_auth], ld->src[find_setting("tls_client_auth")]);
    }
    if (c->auth && c->auth_file[0] == '\0') {
        return fail(ld, "auth = true (from %s) needs auth_file: the principals and their rights",
                    ld->src[find_setting("auth")]);
    }
    if (c->cluster[0] != '\0') {
        int icl = find_setting("cluster");
        if (strncmp(c->cluster, "zk://", 5) != 0 || c->cluster[5] == '\0') {
            return fail(ld, "cluster = %s (from %s): give zk://HOST:PORT[,HOST:PORT...]/CHROOT",
                        c->cluster, ld->src[icl]);
        }
        if (c->node_id == 0) {
            return fail(ld, "cluster (from %s) needs node_id (1..1000000), unique among the "
                            "brokers of the cluster",
                        ld->src[icl]);
        }
        if (c->port == 0) {
            return fail(ld, "cluster (from %s) needs a fixed port (port = 0 picks one at "
                            "random, which other brokers could not find)",
                        ld->src[icl]);
        }
        bool wildcard = strcmp(c->host, "0.0.0.0") == 0 || strcmp(c->host, "::") == 0 ||
                        strcmp(c->host, "[::]") == 0;
        if (c->advertise[0] == '\0' && wildcard) {
            return fail(ld, "cluster (from %s) with host = %s needs advertise = HOST:PORT, the "
                            "address other brokers reach this one at",
                        ld->src[icl], c->host);
        }
        if (c->auth && c->peer_credentials_file[0] == '\0') {
            return fail(ld, "cluster (from %s) with auth = true needs peer_credentials_file: "
                            "the brokers replicate through the native protocol and must log in "
                            "to each other (a user allowed admin on every stream)",
                        ld->src[icl]);
        }
        if (c->advertise[0] != '\0' && strrchr(c->advertise, ':') == NULL) {
            return fail(ld, "advertise = %s (from %s): give HOST:PORT", c->advertise,
                        ld->src[find_setting("advertise")]);
        }
    }
    struct sl_shard_config sc;
    sl_config_shard(c, &sc);
    char why[128];
    if (sl_shard_config_check(&sc, why, sizeof(why)) != SL_OK) {
        return fail(ld, "storage settings: %s", why);
    }
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* public                                                              */

int sl_config_load(struct sl_broker_config *cfg, int argc, char **argv, int *help_shown, char *err,
                   size_t err_len)
{
    SL_ASSERT(cfg != NULL && help_shown != NULL && err != NULL && err_len > 0);
    memset(cfg, 0, sizeof(*cfg));
    *help_shown = 0;
    err[0] = '\0';
    struct loader *ld = calloc(1, sizeof(*ld));
    if (ld == NULL) {
        snprintf(err, err_len, "out of memory");
        return SL_ENOMEM;
    }
    cfg->sources = calloc(1, sizeof(*cfg->sources));
    if (cfg->sources == NULL) {
        free(ld);
        snprintf(err, err_len, "out of memory");
        return SL_ENOMEM;
    }
    ld->cfg = cfg;
    ld->src = cfg->sources->src;
    ld->err = err;
    ld->err_len = err_len;
    int rc = load_defaults(ld);
    for (int i = 1; i < argc && rc == SL_OK; i++) {
        if (is_help(argv[i])) {
            sl_config_print_help(stdout, argc > 0 ? argv[0] : "sluiced");
            *help_shown = 1;
            free(ld);
            return SL_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("sluiced %s\n", SL_BROKER_VERSION);
            *help_shown = 1;
            free(ld);
            return SL_OK;
        }
    }
    if (rc == SL_OK) {
        rc = load_config_file(ld, argc, argv);
    }
    if (rc == SL_OK) {
        rc = load_env(ld);
    }
    if (rc == SL_OK) {
        rc = load_flags(ld, argc, argv);
    }
    if (rc == SL_OK) {
        rc = check_relations(ld);
    }
    free(ld);
    if (rc != SL_OK) {
        sl_config_fini(cfg);
    }
    return rc;
}

static void format_default(const struct setting *st, char *out, size_t cap)
{
    if (st->type == T_STR && st->def[0] == '\0') {
        snprintf(out, cap, "(empty)");
    } else if (st->type == T_STR) {
        snprintf(out, cap, "\"%s\"", st->def);
    } else {
        snprintf(out, cap, "%s", st->def);
    }
}

void sl_config_print_help(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [--config FILE] [--NAME VALUE | --NAME=VALUE]...\n\n"
            "Sluice broker. Every setting below comes, from lowest to highest precedence,\n"
            "from its default, the INI file (--config FILE, or $SLUICE_CONFIG; key NAME at\n"
            "the top or in its [section]), the environment (SLUICE_NAME, upper case) and\n"
            "the flags (--name, dashes or underscores). Sizes take KiB/MiB/GiB, durations\n"
            "(*-ms) take ms/s/min/h/d; plain numbers are bytes and milliseconds.\n",
            prog != NULL ? prog : "sluiced");
    const char *section = "";
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *st = &settings[i];
        if (strcmp(section, st->section) != 0) {
            section = st->section;
            fprintf(out, "\n[%s]\n", section);
        }
        char fl[NAME_MAX_LEN], env[NAME_MAX_LEN + 8], def[96], range[160];
        flag_name(st->name, fl, sizeof(fl));
        env_name(st->name, env, sizeof(env));
        format_default(st, def, sizeof(def));
        describe_range(st, range, sizeof(range));
        fprintf(out, "  --%s  (%s; default %s)\n      %s\n      Must be %s.\n", fl, env, def,
                st->help, range);
    }
    fprintf(out, "\n  --config FILE  (SLUICE_CONFIG)\n      The INI file to read.\n"
                 "  --print-config\n      Print the effective configuration (every setting, as an "
                 "INI file\n      --config reads back; each line says where its value came from) "
                 "and exit.\n"
                 "  --help\n      Print this and exit.\n"
                 "  --version\n      Print the version and exit.\n");
}

/* The value of setting `st` in `cfg` as the INI file would write it. */
static void format_current(const struct sl_broker_config *cfg, const struct setting *st, char *out,
                           size_t cap)
{
    const void *f = (const char *)cfg + st->off;
    switch (st->type) {
    case T_STR: {
        const char *const *slot = f;
        snprintf(out, cap, "%s", *slot != NULL ? *slot : "");
        break;
    }
    case T_U32: {
        uint32_t v;
        memcpy(&v, f, sizeof(v));
        fmt_value(st->unit, v, out, cap);
        break;
    }
    case T_U64: {
        uint64_t v;
        memcpy(&v, f, sizeof(v));
        fmt_value(st->unit, v, out, cap);
        break;
    }
    case T_BOOL: {
        bool b;
        memcpy(&b, f, sizeof(b));
        snprintf(out, cap, "%s", b ? "true" : "false");
        break;
    }
    case T_ENUM: {
        int i;
        memcpy(&i, f, sizeof(i));
        snprintf(out, cap, "%s", st->choices[i]);
        break;
    }
    }
}

void sl_config_print(FILE *out, const struct sl_broker_config *cfg)
{
    SL_ASSERT(cfg->sources != NULL);
    fprintf(out,
            "; sluiced --print-config: every setting's effective value, and where it came\n"
            "; from (default, FILE:LINE, env SLUICE_NAME, flag --name). sluiced --config\n"
            "; reads this file back. Config file read: %s\n",
            cfg->config_file != NULL ? cfg->config_file : "none");
    const char *section = "";
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *st = &settings[i];
        if (strcmp(section, st->section) != 0) {
            section = st->section;
            fprintf(out, "\n[%s]\n", section);
        }
        char value[PATH_LEN_MAX + 1];
        format_current(cfg, st, value, sizeof(value));
        int n = fprintf(out, "%s = %s", st->name, value);
        /* inih ends a value at " ;": a value holding one could not be read back */
        fprintf(out, "%*s ; %s%s\n", n < 40 ? 40 - n : 0, "", cfg->sources->src[i],
                strstr(value, " ;") != NULL ? " (holds \" ;\": edit before reading back)" : "");
    }
}

const char *sl_config_source(const struct sl_broker_config *cfg, const char *name)
{
    int i = find_setting(name);
    SL_ASSERT(i >= 0 && cfg->sources != NULL);
    return cfg->sources->src[i];
}

void sl_config_fini(struct sl_broker_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (settings[i].type == T_STR) {
            char **slot = field(cfg, &settings[i]);
            free(*slot);
            *slot = NULL;
        }
    }
    free(cfg->config_file);
    cfg->config_file = NULL;
    free(cfg->sources);
    cfg->sources = NULL;
}

void sl_config_shard(const struct sl_broker_config *cfg, struct sl_shard_config *out)
{
    sl_shard_config_default(out);
    out->segment_bytes = cfg->segment_bytes;
    out->segment_age_ms = cfg->segment_age_ms;
    out->retention_ms = (uint64_t)cfg->default_retention_hours * HOUR;
    out->retention_bytes = 0;
    out->index_interval_bytes = cfg->index_interval_bytes;
    out->write_buf_bytes = cfg->write_buf_bytes;
    out->write_bufs = cfg->write_bufs;
    out->pending_max = cfg->pending_max;
    out->batch_bytes_max = cfg->batch_bytes_max;
    out->flush_interval_ms = cfg->flush_interval_ms;
    out->open_segments_max = cfg->open_segments_max;
    out->prezero_bytes = cfg->segment_prezero_bytes;
    out->io_mode = cfg->io_mode;
    out->read_cache_bytes = cfg->direct_read_cache_bytes;
    out->flush = cfg->flush;
    out->clock = NULL;
}

void sl_config_ckpt(const struct sl_broker_config *cfg, struct sl_ckpt_config *out)
{
    sl_ckpt_config_default(out);
    out->groups_max = cfg->checkpoint_groups_max;
    out->log_bytes_max = cfg->checkpoint_log_bytes_max;
    out->pending_max = cfg->checkpoint_pending_max;
    /* flush = interval covers checkpoints too: answered once written */
    out->sync_interval_ms = cfg->flush == SL_FLUSH_INTERVAL ? cfg->flush_interval_ms : 0;
}
