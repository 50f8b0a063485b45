/* config.h - the broker's configuration: one table of settings, read from
 * defaults < INI file < environment < command-line flags.
 *
 * Every setting has one name (`max_frame_bytes`) used as the INI key (at the
 * top of the file or in its [section]), the flag `--max-frame-bytes VALUE` or
 * `--max-frame-bytes=VALUE`, and the environment variable
 * `SLUICE_MAX_FRAME_BYTES`. The file is `--config FILE` or $SLUICE_CONFIG.
 * `sluiced --print-config` prints the result and where each value came from.
 * Sizes accept KiB/MiB/GiB (K/M/G), durations (`*_ms`) ms/s/min/h/d; plain
 * numbers are bytes and milliseconds. `sluiced --help` lists every setting
 * with its default, range and documentation (sl_config_print_help).
 *
 * Threading: call from main before any thread starts (reads the environment).
 */
#ifndef SL_BROKER_CONFIG_H
#define SL_BROKER_CONFIG_H

#include "common/log.h"
#include "common/tls.h"
#include "storage/checkpoint.h"
#include "storage/shard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sl_broker_config {
    /* [server] */
    char *data;      /* owned; data directory */
    char *host;      /* owned; listen address */
    uint32_t port;   /* 0 = ephemeral */
    char *port_file; /* owned; "" = none; else the bound port is written here */
    enum sl_log_level log_level;
    enum sl_log_format log_format;
    uint32_t shutdown_timeout_ms;
    uint32_t workers; /* shard-owning loops; 0 = one per CPU core */
    bool conn_workers; /* native connections spread over the workers' loops (net.h) */
    /* [connections] */
    uint32_t max_connections;
    uint32_t max_frame_bytes;
    uint32_t max_inflight;      /* requests per connection */
    uint32_t conn_buffer_bytes; /* receive buffer; grows to max_frame_bytes for one frame */
    uint32_t idle_timeout_ms;   /* 0 = never */
    uint32_t frame_timeout_ms;  /* a partial frame older than this closes the connection */
    uint32_t fetch_wait_max_ms;
    /* [http] */
    uint32_t http_port;             /* 0 = no HTTP listener */
    uint32_t http_header_bytes_max; /* per request */
    uint32_t http_body_bytes_max;   /* per request */
    bool ui;                        /* the web console under /ui/ */
    bool push;                      /* push targets (broker/push) */
    uint32_t ui_sample_interval_ms; /* the console's chart samples */
    /* [tls] */
    bool tls;             /* both listeners speak TLS */
    char *tls_cert_file;  /* owned; "" = none */
    char *tls_key_file;   /* owned */
    char *tls_ca_file;    /* owned; "" = none (no client certificates) */
    enum sl_tls_client_auth tls_client_auth;
    int tls_min_version;  /* 0: TLS 1.2, 1: TLS 1.3 */
    /* [auth] */
    bool auth;            /* authentication and ACLs on */
    char *auth_file;      /* owned */
    /* [streams] */
    uint32_t default_retention_hours;
    uint32_t default_shards;
    bool auto_create_streams; /* a produce to an unknown stream creates it with defaults */
    uint32_t retention_check_ms;
    uint32_t dedup_window_ms; /* message de-dup ids (sluice.dedup_id) */
    uint32_t streams_max;     /* streams the broker holds */
    uint32_t shards_max;      /* shards of all streams */
    /* [storage] (per shard) */
    uint64_t segment_bytes;
    uint64_t segment_age_ms; /* 0 = never roll by age */
    uint32_t index_interval_bytes;
    enum sl_flush_policy flush;
    uint32_t flush_interval_ms;
    uint32_t write_buf_bytes;
    uint32_t write_bufs;
    uint32_t pending_max;
    uint32_t batch_bytes_max;
    uint32_t open_segments_max;
    uint64_t segment_prezero_bytes; /* zeroed run-ahead of an active segment; 0 = off */
    enum sl_io_mode io_mode;        /* segment data written buffered or O_DIRECT */
    uint32_t direct_read_cache_bytes; /* direct: recent data in memory per shard; 0 = none */
    uint32_t open_files_max; /* shard files' and stores' descriptors; 0 = derived (main.c) */
    /* [checkpoints] (per stream) */
    uint32_t checkpoint_groups_max;
    uint32_t queue_groups_max;
    uint32_t checkpoint_log_bytes_max;
    uint32_t checkpoint_pending_max;
    /* [cluster] */
    char *cluster;                       /* owned; "" = a single broker, no ZooKeeper */
    uint32_t node_id;                    /* 1.., required with cluster */
    char *advertise;                     /* owned; "" = host:port */
    uint32_t cluster_session_timeout_ms; /* the ZooKeeper session */
    uint32_t min_insync_replicas;        /* acks of a replicated shard need this many */
    uint32_t replica_lag_ms;             /* a follower behind this long leaves the ISR */
    uint64_t reassign_throttle_bytes;    /* per second to replicas a move adds; 0: none */
    char *peer_credentials_file;         /* owned; "" = peers connect unauthenticated */
    char *peer_tls_ca_file;              /* owned; "" = the system's CAs (with tls) */
    /* not settings: */
    char *config_file;                 /* the INI file that was read, or NULL (owned) */
    bool print_config;                 /* --print-config: print (sl_config_print), exit 0 */
    struct sl_config_sources *sources; /* where each value came from (owned) */
};

/* Fills `cfg` from the defaults, the INI file, the environment and `argv`
 * (borrowed), in that order of precedence, and validates every value and the
 * relations between them. On `--help` (or `-h`) it prints the help to stdout
 * (on `--version`, "sluiced VERSION"),
 * sets *help_shown = 1 and returns SL_OK (main then exits 0); otherwise
 * *help_shown = 0. `--print-config` sets cfg->print_config. Errors: SL_EINVAL
 * with a message in `err` naming where the value came from (FILE:LINE, env
 * VAR or flag --name), the setting, the value and the allowed range or values
 * (`sluice.ini:12: http_body_bytes_max = 5: must be between 1024 and ...`);
 * unknown keys and flags are errors (with the closest valid name); SL_ENOMEM. On error `cfg` holds
 * nothing to free (sl_config_fini is still safe). */
int sl_config_load(struct sl_broker_config *cfg, int argc, char **argv, int *help_shown, char *err,
                   size_t err_len);

/* Prints usage and every setting (grouped by section) with its flag,
 * environment variable, default, range and documentation. */
void sl_config_print_help(FILE *out, const char *prog);

/* Prints every setting's effective value as an INI file (sections, `name =
 * value`) that --config reads back, each line ending in a comment naming
 * where the value came from: `default`, `FILE:LINE`, `env SLUICE_NAME` or
 * `flag --name`. `cfg` is borrowed, loaded by sl_config_load. */
void sl_config_print(FILE *out, const struct sl_broker_config *cfg);

/* Where setting `name` (a valid setting name) got its value: "default",
 * "FILE:LINE", "env SLUICE_NAME" or "flag --name". Borrowed from `cfg`. */
const char *sl_config_source(const struct sl_broker_config *cfg, const char *name);

/* Frees the strings; idempotent. */
void sl_config_fini(struct sl_broker_config *cfg);

/* The storage settings as a shard configuration (retention_ms from
 * default_retention_hours, clock NULL), and as a checkpoint configuration. */
void sl_config_shard(const struct sl_broker_config *cfg, struct sl_shard_config *out);
void sl_config_ckpt(const struct sl_broker_config *cfg, struct sl_ckpt_config *out);

#endif
