/* replicas_id.c - which cluster this broker's data belongs to (replicas_int.h).
 *
 * A cluster stream whose name /streams does not list is dropped (replicas_meta.c, "deleted
 * streams"): right when it was deleted while this broker was away, a disaster when
 * --cluster names another ensemble or chroot by mistake (every stream would be "deleted").
 * So the cluster has an id - /cluster_id, 32 hex digits, made by the first broker that
 * finds none - and the data directory keeps the id of the cluster it joined
 * (<data>/cluster.id, written durably). Until the two are compared this broker lists no
 * stream; when they differ it never does (an error says why, as Kafka's
 * InconsistentClusterIdException), so nothing of its data is touched. A data directory
 * from before the id (none kept) takes the cluster's.
 */
#include "broker/cluster/replicas_int.h"

#include "broker/engine/catalog.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ID_PATH "/cluster_id"
#define ID_FILE "cluster.id"
#define ID_HEX  32u

static bool id_ok(const char *s, size_t n)
{
    if (n != ID_HEX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* The id the data directory keeps: SL_OK, SL_ENOTFOUND (none yet), SL_ECORRUPT, SL_EIO (a
 * file there that cannot be read: never taken for none, which would replace it). */
static int local_id(const struct sl_replicas *rs, char out[ID_HEX + 1])
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/" ID_FILE, sl_catalog_data_dir(rs->e->catalog));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return errno == ENOENT ? SL_ENOTFOUND : SL_EIO;
    }
    char line[64] = "";
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    size_t n = got ? strcspn(line, "\n") : 0;
    if (!id_ok(line, n)) {
        return SL_ECORRUPT;
    }
    memcpy(out, line, ID_HEX);
    out[ID_HEX] = '\0';
    return SL_OK;
}

static int keep_id(const struct sl_replicas *rs, const char *id)
{
    const char *dir = sl_catalog_data_dir(rs->e->catalog);
    char path[1024], tmp[1024], line[ID_HEX + 2];
    snprintf(path, sizeof(path), "%s/" ID_FILE, dir);
    snprintf(tmp, sizeof(tmp), "%s/" ID_FILE ".tmp", dir);
    int n = snprintf(line, sizeof(line), "%s\n", id);
    const void *parts[1] = {line};
    size_t lens[1] = {(size_t)n};
    const char *step = "write";
    int rc = sl_file_replace(dir, tmp, path, parts, lens, 1, &step);
    if (rc != SL_OK) {
        sl_error("cluster", "cannot %s %s: %s (the cluster's id is compared again at the next "
                 "session)", step, path, sl_strerror(rc));
    }
    return rc;
}

static void compare(struct sl_replicas *rs, const char *zk_id)
{
    char mine[ID_HEX + 1];
    int rc = local_id(rs, mine);
    if (rc == SL_ENOTFOUND) {
        if (keep_id(rs, zk_id) == SL_OK) {
            rs->id_state = RS_ID_SAME;
            sl_info("cluster", "joined cluster %s", zk_id);
        } else {
            rs->id_state = RS_ID_UNKNOWN;
        }
    } else if (rc == SL_OK && strcmp(mine, zk_id) == 0) {
        rs->id_state = RS_ID_SAME;
    } else {
        rs->id_state = RS_ID_OTHER;
        sl_error("cluster",
                 "this broker's data belongs to cluster %s (%s/" ID_FILE "), ZooKeeper at "
                 "--cluster to cluster %s: is --cluster the ensemble and chroot it joined "
                 "before? It serves no cluster stream and leaves its data alone until it is "
                 "(remove " ID_FILE " only to join the data to this cluster)",
                 rc == SL_OK ? mine : "(unreadable)", sl_catalog_data_dir(rs->e->catalog),
                 zk_id);
    }
    if (rs->id_state == RS_ID_SAME) {
        rs->relist = true; /* (the listing waited for this) */
    }
}

static void read_id(struct sl_replicas *rs);

static void on_id_made(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_replicas *rs = arg;
    if (err == SL_ECLOSED) {
        rs->id_state = RS_ID_UNKNOWN;
        return;
    }
    read_id(rs); /* (made, or another broker made it first: read what is there) */
}

static void on_id(void *arg, int err, const uint8_t *data, size_t len,
                  const struct sl_meta_stat *stat)
{
    (void)stat;
    struct sl_replicas *rs = arg;
    if (err == SL_ENOTFOUND && rs->meta != NULL) {
        uint8_t rnd[ID_HEX / 2];
        char hex[ID_HEX + 1];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            rs->id_state = RS_ID_UNKNOWN;
            return;
        }
        for (size_t i = 0; i < sizeof(rnd); i++) {
            snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        }
        if (sl_meta_create(rs->meta, ID_PATH, (const uint8_t *)hex, ID_HEX, 0, on_id_made, rs) !=
            SL_OK) {
            rs->id_state = RS_ID_UNKNOWN;
        }
        return;
    }
    if (err != SL_OK) {
        rs->id_state = RS_ID_UNKNOWN; /* (asked again at the next tick) */
        return;
    }
    if (!id_ok((const char *)data, len)) {
        rs->id_state = RS_ID_OTHER;
        sl_error("cluster", "ZooKeeper's " ID_PATH " is not a cluster id (32 hex digits): this "
                 "broker serves no cluster stream");
        return;
    }
    char id[ID_HEX + 1];
    memcpy(id, data, ID_HEX);
    id[ID_HEX] = '\0';
    compare(rs, id);
}

static void read_id(struct sl_replicas *rs)
{
    if (rs->meta == NULL ||
        sl_meta_get(rs->meta, ID_PATH, NULL, NULL, on_id, rs) != SL_OK) {
        rs->id_state = RS_ID_UNKNOWN;
    }
}

void rs_cluster_id_check(struct sl_replicas *rs)
{
    if (rs->id_state != RS_ID_UNKNOWN || rs->meta == NULL) {
        return; /* (compared, or being compared: once per process) */
    }
    rs->id_state = RS_ID_READING;
    read_id(rs);
}
