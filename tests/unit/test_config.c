/* test_config.c - the broker's configuration (broker/config.c).
 *
 * Covers: every default; an INI file with every type (string, u32, u64 with
 * a unit suffix, bool, enum), keys at the top and in their sections; the
 * precedence defaults < file < environment < flags, with the file named by
 * --config or $SLUICE_CONFIG; the --name value and --name=value forms, dashes
 * and a bare boolean flag; bad values (their message names the setting, the
 * source - file:line, variable or flag - and the range); unknown keys and
 * flags (with the nearest name); a key in the wrong section; a syntax error;
 * default_retention_hours 8760 accepted and 8761 refused; a relation between
 * two settings; --help sets the flag; fini is idempotent. Every setting that
 * --print-config lists refuses a bad value with `SOURCE: name = value: must
 * be ...` (numbers: "between MIN and MAX"); --print-config's output names
 * each value's source and, fed back as --config, gives the same values.
 *
 * Every case clears the SLUICE_* variables first; files go under $TMPDIR or
 * /var/tmp.
 */
#include "broker/config.h"

#include "common/error.h"

#include "tests/unit/test.h"

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

static const char *const vars[] = {
    "SLUICE_CONFIG",
    "SLUICE_DATA",
    "SLUICE_HOST",
    "SLUICE_PORT",
    "SLUICE_PORT_FILE",
    "SLUICE_LOG_LEVEL",
    "SLUICE_MAX_FRAME_BYTES",
    "SLUICE_DEFAULT_RETENTION_HOURS",
    "SLUICE_FLUSH",
    "SLUICE_AUTO_CREATE_STREAMS",
    "SLUICE_SEGMENT_BYTES",
    NULL,
};

static char g_ini[1024];

static void clear_env(void)
{
    for (int i = 0; vars[i] != NULL; i++) {
        unsetenv(vars[i]);
    }
}

static int write_ini(const char *text)
{
    FILE *f = fopen(g_ini, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    return fclose(f);
}

/* Runs sl_config_load on a NULL-terminated argument list. */
static int load(struct sl_broker_config *cfg, char *err, size_t err_len, int *help,
                const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"sluiced";
    for (int i = 0; args != NULL && args[i] != NULL && argc < 31; i++) {
        argv[argc++] = (char *)args[i];
    }
    argv[argc] = NULL;
    return sl_config_load(cfg, argc, argv, help, err, err_len);
}

static int load_args(struct sl_broker_config *cfg, char *err, size_t err_len,
                     const char *const *args)
{
    int help = 0;
    return load(cfg, err, err_len, &help, args);
}

#define LOAD(cfg, err, ...)                                                                        \
    load_args((cfg), (err), sizeof(err), (const char *const[]){__VA_ARGS__, NULL})

static const char *const no_args[] = {NULL};

TEST(defaults)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    int help = 1;
    CHECK_EQ(load(&c, err, sizeof(err), &help, no_args), SL_OK);
    CHECK_EQ(help, 0);
    CHECK(strcmp(c.data, "./data") == 0);
    CHECK(strcmp(c.host, "127.0.0.1") == 0);
    CHECK_EQ(c.port, 7400);
    CHECK(strcmp(c.port_file, "") == 0);
    CHECK_EQ(c.log_level, SL_LOG_INFO);
    CHECK_EQ(c.max_connections, 1024);
    CHECK_EQ(c.max_frame_bytes, 16u << 20);
    CHECK_EQ(c.max_inflight, 256);
    CHECK_EQ(c.conn_buffer_bytes, 64u << 10);
    CHECK_EQ(c.idle_timeout_ms, 300000);
    CHECK_EQ(c.fetch_wait_max_ms, 30000);
    CHECK_EQ(c.default_retention_hours, 168);
    CHECK_EQ(c.default_shards, 1);
    CHECK_EQ(c.auto_create_streams, 0);
    CHECK_EQ(c.retention_check_ms, 60000);
    CHECK_EQ(c.segment_bytes, 256ull << 20);
    CHECK_EQ(c.segment_age_ms, 7ull * 24 * 3600 * 1000);
    CHECK_EQ(c.index_interval_bytes, 16u << 10);
    CHECK_EQ(c.flush, SL_FLUSH_ALWAYS);
    CHECK_EQ(c.flush_interval_ms, 1000);
    CHECK_EQ(c.write_buf_bytes, 1u << 20);
    CHECK_EQ(c.write_bufs, 4);
    CHECK_EQ(c.pending_max, 4096);
    CHECK_EQ(c.batch_bytes_max, 8u << 20);
    CHECK_EQ(c.open_segments_max, 16);
    CHECK_EQ(c.segment_prezero_bytes, 4u << 20);
    CHECK_EQ(c.checkpoint_groups_max, 1024);
    CHECK_EQ(c.checkpoint_log_bytes_max, 4u << 20);
    CHECK_EQ(c.shutdown_timeout_ms, 10000);
    CHECK(c.config_file == NULL);
    /* The defaults match the storage layer's own. */
    struct sl_shard_config sc, sd;
    sl_config_shard(&c, &sc);
    sl_shard_config_default(&sd);
    CHECK_EQ(sc.segment_bytes, sd.segment_bytes);
    CHECK_EQ(sc.write_buf_bytes, sd.write_buf_bytes);
    CHECK_EQ(sc.pending_max, sd.pending_max);
    CHECK_EQ(sc.prezero_bytes, sd.prezero_bytes);
    CHECK_EQ(sc.retention_ms, 168ull * 3600 * 1000);
    struct sl_ckpt_config kc;
    sl_config_ckpt(&c, &kc);
    CHECK_EQ(kc.groups_max, 1024);
    sl_config_fini(&c);
    sl_config_fini(&c); /* idempotent */
    CHECK(c.data == NULL);
}

TEST(ini_every_type)
{
    clear_env();
    CHECK(write_ini("; a comment\n"
                    "max_inflight = 10\n"
                    "[server]\n"
                    "data = /srv/sluice data\n"
                    "port = 8000\n"
                    "log_level = debug\n"
                    "port_file = /tmp/port\n"
                    "[streams]\n"
                    "auto_create_streams = yes\n"
                    "[storage]\n"
                    "segment_bytes = 1GiB\n"
                    "segment_age_ms = 2h\n"
                    "flush = interval\n"
                    "flush-interval-ms = 250\n"
                    "[checkpoints]\n"
                    "checkpoint_groups_max = 7\n") == 0);
    struct sl_broker_config c;
    char err[512];
    CHECK_EQ(LOAD(&c, err, "--config", g_ini), SL_OK);
    CHECK(strcmp(c.data, "/srv/sluice data") == 0);
    CHECK_EQ(c.port, 8000);
    CHECK_EQ(c.log_level, SL_LOG_DEBUG);
    CHECK(strcmp(c.port_file, "/tmp/port") == 0);
    CHECK_EQ(c.auto_create_streams, 1);
    CHECK_EQ(c.segment_bytes, 1ull << 30);
    CHECK_EQ(c.segment_age_ms, 2ull * 3600 * 1000);
    CHECK_EQ(c.flush, SL_FLUSH_INTERVAL);
    CHECK_EQ(c.flush_interval_ms, 250);
    CHECK_EQ(c.max_inflight, 10);
    CHECK_EQ(c.checkpoint_groups_max, 7);
    CHECK(c.config_file != NULL && strcmp(c.config_file, g_ini) == 0);
    sl_config_fini(&c);
}

TEST(precedence_file_env_flags)
{
    clear_env();
    CHECK(write_ini("[server]\nport = 8000\nhost = 10.0.0.1\ndata = /from/file\n") == 0);
    setenv("SLUICE_CONFIG", g_ini, 1); /* the file named by the environment */
    struct sl_broker_config c;
    char err[512];
    CHECK_EQ(LOAD(&c, err, "--max-inflight", "3"), SL_OK);
    CHECK_EQ(c.port, 8000);
    CHECK_EQ(c.max_inflight, 3);
    sl_config_fini(&c);
    setenv("SLUICE_PORT", "9000", 1); /* env over file */
    setenv("SLUICE_DATA", "/from/env", 1);
    CHECK_EQ(LOAD(&c, err, "--max-inflight", "3"), SL_OK);
    CHECK_EQ(c.port, 9000);
    CHECK(strcmp(c.data, "/from/env") == 0);
    CHECK(strcmp(c.host, "10.0.0.1") == 0);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--port", "9100", "--data=/from/flag"), SL_OK); /* flag over env */
    CHECK_EQ(c.port, 9100);
    CHECK(strcmp(c.data, "/from/flag") == 0);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--port=9200", "--max_frame_bytes=1MiB"), SL_OK); /* = form */
    CHECK_EQ(c.port, 9200);
    CHECK_EQ(c.max_frame_bytes, 1u << 20);
    sl_config_fini(&c);
    /* --config over $SLUICE_CONFIG; an empty string value is allowed. */
    char other[1100];
    snprintf(other, sizeof(other), "%s.other", g_ini);
    FILE *f = fopen(other, "w");
    CHECK(f != NULL);
    fputs("host = 10.9.9.9\n", f);
    fclose(f);
    unsetenv("SLUICE_PORT");
    CHECK_EQ(LOAD(&c, err, "--config", other, "--port-file="), SL_OK);
    CHECK(strcmp(c.host, "10.9.9.9") == 0);
    CHECK_EQ(c.port, 7400);
    CHECK(strcmp(c.port_file, "") == 0);
    sl_config_fini(&c);
    unlink(other);
    clear_env();
}

TEST(bool_flag_forms)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    CHECK_EQ(LOAD(&c, err, "--auto-create-streams", "--port", "1"), SL_OK);
    CHECK_EQ(c.auto_create_streams, 1);
    CHECK_EQ(c.port, 1);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--auto-create-streams", "off"), SL_OK);
    CHECK_EQ(c.auto_create_streams, 0);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--auto-create-streams=true"), SL_OK);
    CHECK_EQ(c.auto_create_streams, 1);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--auto-create-streams"), SL_OK);
    CHECK_EQ(c.auto_create_streams, 1);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--auto-create-streams=maybe"), SL_EINVAL);
    CHECK(strstr(err, "auto_create_streams") != NULL);
}

TEST(bad_values_name_setting_and_source)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    CHECK_EQ(LOAD(&c, err, "--port", "70000"), SL_EINVAL);
    CHECK(strstr(err, "port") != NULL && strstr(err, "flag --port") != NULL);
    CHECK(strstr(err, "65535") != NULL);
    CHECK(c.data == NULL); /* nothing left to free */
    CHECK_EQ(LOAD(&c, err, "--port", "-1"), SL_EINVAL);
    CHECK_EQ(LOAD(&c, err, "--port", "12abc"), SL_EINVAL);
    CHECK_EQ(LOAD(&c, err, "--port", ""), SL_EINVAL);
    CHECK_EQ(LOAD(&c, err, "--max-frame-bytes", "257MiB"), SL_EINVAL);
    CHECK(strstr(err, "max_frame_bytes") != NULL);
    CHECK_EQ(LOAD(&c, err, "--max-frame-bytes", "99999999999999999999999"), SL_EINVAL);
    CHECK_EQ(LOAD(&c, err, "--segment-bytes", "18446744073709551615GiB"), SL_EINVAL);
    CHECK_EQ(LOAD(&c, err, "--log-level", "verbose"), SL_EINVAL);
    CHECK(strstr(err, "log_level") != NULL && strstr(err, "debug, info, warn, error") != NULL);
    CHECK_EQ(LOAD(&c, err, "--data", ""), SL_EINVAL);
    CHECK(strstr(err, "data") != NULL);
    CHECK_EQ(LOAD(&c, err, "--port"), SL_EINVAL); /* no value */
    CHECK(strstr(err, "needs a value") != NULL);
    CHECK_EQ(LOAD(&c, err, "stray"), SL_EINVAL);
    CHECK(strstr(err, "stray") != NULL);
    setenv("SLUICE_FLUSH", "sometimes", 1);
    CHECK_EQ(LOAD(&c, err, "--port", "1"), SL_EINVAL);
    CHECK(strstr(err, "env SLUICE_FLUSH: flush = sometimes: must be one of") != NULL);
    CHECK(strstr(err, "always, interval") != NULL);
    unsetenv("SLUICE_FLUSH");
    CHECK(write_ini("[server]\nhost = h\n\nport = lots\n") == 0);
    CHECK_EQ(LOAD(&c, err, "--config", g_ini), SL_EINVAL);
    char want[1100];
    snprintf(want, sizeof(want), "%s:4: port = lots: must be between 0 and 65535", g_ini);
    CHECK(strstr(err, want) != NULL);
    CHECK_EQ(LOAD(&c, err, "--http-body-bytes-max", "5"), SL_EINVAL);
    CHECK(strstr(err, "flag --http-body-bytes-max: http_body_bytes_max = 5: must be between "
                      "1024 and 268435456") != NULL);
    /* A relation: the buffer may not exceed the frame. */
    CHECK_EQ(LOAD(&c, err, "--conn-buffer-bytes", "2MiB", "--max-frame-bytes=1MiB"), SL_EINVAL);
    CHECK(strstr(err, "conn_buffer_bytes") != NULL && strstr(err, "max_frame_bytes") != NULL);
    CHECK(strstr(err, "flag --max-frame-bytes") != NULL);
}

/* Cluster mode's settings and their relations (docs/REPLICATION.md). */
TEST(cluster_settings)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    CHECK_EQ(LOAD(&c, err, "--port", "7400"), SL_OK); /* default: a single broker */
    CHECK(strcmp(c.cluster, "") == 0 && c.node_id == 0 && strcmp(c.advertise, "") == 0);
    CHECK_EQ(c.cluster_session_timeout_ms, 6000);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--cluster", "zk://10.0.0.1:2181,10.0.0.2:2181/sluice", "--node-id",
                  "3", "--advertise", "10.0.0.9:7400", "--cluster-session-timeout-ms", "4s"),
             SL_OK);
    CHECK(strcmp(c.cluster, "zk://10.0.0.1:2181,10.0.0.2:2181/sluice") == 0);
    CHECK_EQ(c.node_id, 3);
    CHECK(strcmp(c.advertise, "10.0.0.9:7400") == 0);
    CHECK_EQ(c.cluster_session_timeout_ms, 4000);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--cluster", "zk://h:2181/s"), SL_EINVAL);
    CHECK(strstr(err, "needs node_id") != NULL && strstr(err, "flag --cluster") != NULL);
    CHECK_EQ(LOAD(&c, err, "--cluster", "h:2181/s", "--node-id", "1"), SL_EINVAL);
    CHECK(strstr(err, "zk://HOST:PORT") != NULL);
    CHECK_EQ(LOAD(&c, err, "--cluster", "zk://h:2181/s", "--node-id", "1", "--port", "0"),
             SL_EINVAL);
    CHECK(strstr(err, "needs a fixed port") != NULL);
    CHECK_EQ(LOAD(&c, err, "--cluster", "zk://h:2181/s", "--node-id", "1", "--host", "0.0.0.0"),
             SL_EINVAL);
    CHECK(strstr(err, "needs advertise") != NULL);
    CHECK_EQ(LOAD(&c, err, "--cluster", "zk://h:2181/s", "--node-id", "1", "--advertise", "h"),
             SL_EINVAL);
    CHECK(strstr(err, "HOST:PORT") != NULL);
    CHECK_EQ(LOAD(&c, err, "--node-id", "1000001"), SL_EINVAL);
    CHECK_EQ(LOAD(&c, err, "--cluster-session-timeout-ms", "100"), SL_EINVAL);
}

TEST(unknown_keys_and_flags)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    CHECK(write_ini("[server]\nprot = 1\n") == 0);
    CHECK_EQ(LOAD(&c, err, "--config", g_ini), SL_EINVAL);
    CHECK(strstr(err, "unknown setting") != NULL && strstr(err, "prot") != NULL);
    CHECK(strstr(err, "did you mean port") != NULL);
    CHECK(strstr(err, ":2") != NULL);
    CHECK_EQ(LOAD(&c, err, "--max-frame-byte", "1"), SL_EINVAL);
    CHECK(strstr(err, "unknown flag --max-frame-byte") != NULL);
    CHECK(strstr(err, "did you mean --max-frame-bytes") != NULL);
    CHECK_EQ(LOAD(&c, err, "--zzzzzzzzzzzz=1"), SL_EINVAL);
    CHECK(strstr(err, "unknown flag") != NULL && strstr(err, "did you mean") == NULL);
    /* A key in another setting's section. */
    CHECK(write_ini("[storage]\nport = 1\n") == 0);
    CHECK_EQ(LOAD(&c, err, "--config", g_ini), SL_EINVAL);
    CHECK(strstr(err, "[server]") != NULL);
    /* Syntax. */
    CHECK(write_ini("[server]\nport 7400\n") == 0);
    CHECK_EQ(LOAD(&c, err, "--config", g_ini), SL_EINVAL);
    CHECK(strstr(err, "syntax") != NULL && strstr(err, ":2") != NULL);
    /* A missing file. */
    CHECK_EQ(LOAD(&c, err, "--config", "/nonexistent/sluice.ini"), SL_EINVAL);
    CHECK(strstr(err, "/nonexistent/sluice.ini") != NULL);
    /* Unknown SLUICE_* variables are not settings: ignored. */
    setenv("SLUICE_TEST_SOMETHING", "1", 1);
    CHECK_EQ(LOAD(&c, err, "--port", "1"), SL_OK);
    sl_config_fini(&c);
    unsetenv("SLUICE_TEST_SOMETHING");
}

TEST(retention_hours_range)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    CHECK_EQ(LOAD(&c, err, "--default-retention-hours", "8760"), SL_OK);
    CHECK_EQ(c.default_retention_hours, 8760);
    struct sl_shard_config sc;
    sl_config_shard(&c, &sc);
    CHECK_EQ(sc.retention_ms, SL_RETENTION_MS_MAX);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--default-retention-hours", "8761"), SL_EINVAL);
    CHECK(strstr(err, "default_retention_hours") != NULL && strstr(err, "8760") != NULL);
    CHECK_EQ(LOAD(&c, err, "--default-retention-hours", "0"), SL_EINVAL);
    CHECK(write_ini("[streams]\ndefault_retention_hours = 8761\n") == 0);
    CHECK_EQ(LOAD(&c, err, "--config", g_ini), SL_EINVAL);
    CHECK(strstr(err, "default_retention_hours") != NULL);
}

/* segment_prezero_bytes: 0 turns the run-ahead off; a value in (0, 64 KiB) is
 * refused at load, naming the setting, as the storage layer checks it. */
TEST(segment_prezero_bytes_range)
{
    clear_env();
    struct sl_broker_config c;
    char err[256];
    CHECK_EQ(LOAD(&c, err, "--segment-prezero-bytes=0"), SL_OK);
    struct sl_shard_config sc;
    sl_config_shard(&c, &sc);
    CHECK_EQ(sc.prezero_bytes, 0);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--segment-prezero-bytes=16MiB"), SL_OK);
    sl_config_shard(&c, &sc);
    CHECK_EQ(sc.prezero_bytes, 16u << 20);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--segment-prezero-bytes=4KiB"), SL_EINVAL);
    CHECK(strstr(err, "segment_prezero_bytes") != NULL);
    sl_config_fini(&c);
}

/* io_mode: buffered by default, direct on request, anything else refused
 * naming the setting; direct_read_cache_bytes reaches the shard config and
 * its range is the storage layer's. */
TEST(io_mode_setting)
{
    clear_env();
    struct sl_broker_config c;
    char err[256];
    struct sl_shard_config sc;
    CHECK_EQ(LOAD(&c, err, "--flush=always"), SL_OK);
    sl_config_shard(&c, &sc);
    CHECK_EQ(sc.io_mode, SL_IO_BUFFERED);
    CHECK_EQ(sc.read_cache_bytes, SL_READ_CACHE_DEFAULT);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--io-mode=direct", "--direct-read-cache-bytes=4MiB"), SL_OK);
    sl_config_shard(&c, &sc);
    CHECK_EQ(sc.io_mode, SL_IO_DIRECT);
    CHECK_EQ(sc.read_cache_bytes, 4u << 20);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--io-mode=odirect"), SL_EINVAL);
    CHECK(strstr(err, "io_mode") != NULL && strstr(err, "direct") != NULL);
    sl_config_fini(&c);
    CHECK_EQ(LOAD(&c, err, "--direct-read-cache-bytes=4KiB"), SL_EINVAL);
    CHECK(strstr(err, "direct_read_cache_bytes") != NULL);
    sl_config_fini(&c);
}

TEST(help_sets_flag)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    int help = 0;
    const char *const args[] = {"--port", "1", "--help", NULL};
    /* Keep the help text out of the test log. */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int devnull = open("/dev/null", O_WRONLY);
    CHECK(saved >= 0 && devnull >= 0);
    dup2(devnull, STDOUT_FILENO);
    int rc = load(&c, err, sizeof(err), &help, args);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(devnull);
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(help, 1);
    sl_config_fini(&c);
    /* The help names every setting with its variable and default. */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    CHECK(m != NULL);
    sl_config_print_help(m, "sluiced");
    fclose(m);
    CHECK(strstr(text, "--max-frame-bytes") != NULL);
    CHECK(strstr(text, "SLUICE_MAX_FRAME_BYTES") != NULL);
    CHECK(strstr(text, "default 16MiB") != NULL);
    CHECK(strstr(text, "[storage]") != NULL && strstr(text, "[checkpoints]") != NULL);
    CHECK(strstr(text, "--checkpoint-groups-max") != NULL);
    free(text);
}

/* sl_config_print of `cfg` into a malloc'd string. */
static char *print_of(const struct sl_broker_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m == NULL) {
        return NULL;
    }
    sl_config_print(m, cfg);
    fclose(m);
    return text;
}

/* The `name = value` part of each setting line (no comments, no sources), in order. */
static void values_only(const char *text, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = text; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);
        const char *semi = memchr(p, ';', n);
        if (p[0] != ';' && p[0] != '[' && semi != NULL && o + n + 1 < cap) {
            size_t k = (size_t)(semi - p);
            while (k > 0 && p[k - 1] == ' ') {
                k--;
            }
            memcpy(out + o, p, k);
            o += k;
            out[o++] = '\n';
        }
        p += n + (eol != NULL);
    }
    out[o] = '\0';
}

TEST(every_setting_refuses_bad_values_naming_key_value_range)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    CHECK_EQ(LOAD(&c, err, "--port", "7400"), SL_OK);
    char *text = print_of(&c);
    sl_config_fini(&c);
    CHECK(text != NULL);
    int settings = 0;
    static char long_value[5000];
    memset(long_value, 'x', sizeof(long_value) - 1);
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[64], value[4200];
        if (line[0] == ';' || line[0] == '[' || sscanf(line, "%63s = %4199s", name, value) != 2) {
            continue;
        }
        settings++;
        /* a number: digits, then at most a unit suffix ("16MiB", "5min"; not "1.2") */
        size_t digits = strspn(value, "0123456789");
        int numeric = digits > 0 && strspn(value + digits, "abcdefghijklmnopqrstuvwxyzKMGTB") ==
                                        strlen(value + digits);
        char flag[80] = "--";
        for (size_t i = 0; name[i] != '\0'; i++) {
            flag[2 + i] = name[i] == '_' ? '-' : name[i];
            flag[3 + i] = '\0';
        }
        /* too long for any string setting, and no number, bool or enum: refused by all;
         * a number too big for any: refused by every numeric setting, with its range */
        const char *bads[2] = {long_value, numeric ? "99999999999999999999999" : NULL};
        for (int k = 0; k < 2 && bads[k] != NULL; k++) {
            char arg[5100];
            snprintf(arg, sizeof(arg), "%s=%s", flag, bads[k]);
            int rc = LOAD(&c, err, arg);
            char want[256];
            snprintf(want, sizeof(want), "flag %s: %s = %.20s", flag, name, bads[k]);
            if (rc != SL_EINVAL || strstr(err, want) == NULL || strstr(err, ": must be ") == NULL ||
                (numeric && strstr(err, ": must be between ") == NULL)) {
                fprintf(stderr, "  %s: rc %d, message \"%s\"\n", name, rc, err);
                CHECK(0);
            }
        }
    }
    free(text);
    CHECK(settings >= 30);
}

TEST(print_config_names_sources_and_reads_back)
{
    clear_env();
    struct sl_broker_config c;
    char err[512];
    CHECK(write_ini("[server]\nhost = 127.0.0.2\n\n[storage]\nsegment_bytes = 64MiB\n") == 0);
    setenv("SLUICE_LOG_LEVEL", "debug", 1);
    CHECK_EQ(LOAD(&c, err, "--config", g_ini, "--port", "7401", "--print-config"), SL_OK);
    unsetenv("SLUICE_LOG_LEVEL");
    CHECK(c.print_config);
    char *text = print_of(&c);
    sl_config_fini(&c);
    CHECK(text != NULL);
    char want[1200];
    snprintf(want, sizeof(want), "; %s:2\n", g_ini);
    int ok = strstr(text, want) != NULL && strstr(text, "\nhost = 127.0.0.2 ") != NULL;
    snprintf(want, sizeof(want), "; %s:5\n", g_ini);
    ok = ok && strstr(text, want) != NULL && strstr(text, "\nsegment_bytes = 64MiB ") != NULL;
    ok = ok && strstr(text, "\nport = 7401 ") != NULL && strstr(text, "; flag --port\n") != NULL;
    ok = ok && strstr(text, "\nlog_level = debug ") != NULL &&
         strstr(text, "; env SLUICE_LOG_LEVEL\n") != NULL;
    ok = ok && strstr(text, "\nflush = always ") != NULL && strstr(text, "; default\n") != NULL;
    ok = ok && strstr(text, "\nport_file = ") != NULL && strstr(text, "[checkpoints]") != NULL;
    if (!ok) {
        fprintf(stderr, "%s", text);
    }
    CHECK(ok);
    /* Fed back: the same values, every one now from the file. */
    CHECK(write_ini(text) == 0);
    CHECK_EQ(LOAD(&c, err, "--config", g_ini), SL_OK);
    char *again = print_of(&c);
    sl_config_fini(&c);
    CHECK(again != NULL);
    static char v1[8192], v2[8192];
    values_only(text, v1, sizeof(v1));
    values_only(again, v2, sizeof(v2));
    ok = strcmp(v1, v2) == 0 && strstr(again, "; default\n") == NULL;
    if (!ok) {
        fprintf(stderr, "--- first\n%s--- read back\n%s", text, again);
    }
    free(text);
    free(again);
    CHECK(ok);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_ini, sizeof(g_ini), "%s/sl_test_config_%d.ini",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp", (int)getpid());
    RUN(defaults);
    RUN(segment_prezero_bytes_range);
    RUN(io_mode_setting);
    RUN(ini_every_type);
    RUN(precedence_file_env_flags);
    RUN(bool_flag_forms);
    RUN(bad_values_name_setting_and_source);
    RUN(cluster_settings);
    RUN(unknown_keys_and_flags);
    RUN(retention_hours_range);
    RUN(help_sets_flag);
    RUN(every_setting_refuses_bad_values_naming_key_value_range);
    RUN(print_config_names_sources_and_reads_back);
    unlink(g_ini);
    TEST_END();
}
