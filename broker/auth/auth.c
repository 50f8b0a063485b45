/* auth.c - the auth file and the ACL check (see auth.h).
 *
 * Lookups scan arrays: the file is read once per (re)load, the checks run
 * once per request (never per record), and a broker's principals and rules
 * number in the hundreds. Rules are checked in file order; any match
 * allows (there are no deny rules: what is not granted is refused).
 */
#include "broker/auth/auth.h"

#include "common/assert.h"
#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct auth_user {
    char name[SL_SCRAM_NAME_MAX + 1];
    struct sl_scram_cred cred;
};

struct auth_key {
    char id[SL_AUTH_KEY_ID_MAX + 1];
    char secret[SL_AUTH_SECRET_MAX + 1];
    char principal[SL_SCRAM_NAME_MAX + 1];
};

struct auth_rule {
    char principal[SL_SCRAM_NAME_MAX + 1]; /* "*": every authenticated principal */
    uint32_t ops;
    char pattern[SL_AUTH_PATTERN_MAX + 1]; /* without the trailing '*' when prefix */
    bool prefix;
};

struct sl_auth {
    struct auth_user *users;
    uint32_t n_users;
    struct auth_key *keys;
    uint32_t n_keys;
    struct auth_rule *rules;
    uint32_t n_rules;
};

static const char *const op_names[] = {"produce", "consume", "queue", "admin"};

const char *sl_acl_op_name(uint32_t op)
{
    for (uint32_t i = 0; i < 4; i++) {
        if (op == 1u << i) {
            return op_names[i];
        }
    }
    return "any";
}

/* "produce,consume" or "all" -> mask; 0 when a name is unknown. */
static uint32_t parse_ops(char *list)
{
    if (strcmp(list, "all") == 0) {
        return SL_ACL_ANY;
    }
    uint32_t ops = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        uint32_t bit = 0;
        for (uint32_t i = 0; i < 4; i++) {
            bit |= strcmp(t, op_names[i]) == 0 ? 1u << i : 0;
        }
        if (bit == 0) {
            return 0;
        }
        ops |= bit;
    }
    return ops;
}

static bool copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n == 0 || n >= cap) {
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

static int grow(void **arr, uint32_t n, size_t elem)
{
    if (n == SL_AUTH_ENTRIES_MAX) {
        return SL_ELIMIT;
    }
    if ((n & (n - 1)) == 0) { /* 0, 1, 2, 4, ...: double */
        void *a = realloc(*arr, (n == 0 ? 8 : 2 * (size_t)n) * elem);
        if (a == NULL) {
            return SL_ENOMEM;
        }
        *arr = a;
    }
    return SL_OK;
}

/* One line's words (at most 4). */
static int words(char *line, char **w)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r", &save); t != NULL;
         t = strtok_r(NULL, " \t\r", &save)) {
        if (n == 4) {
            return 5;
        }
        w[n++] = t;
    }
    return n;
}

static int parse_line(struct sl_auth *a, char *line, char *why, size_t why_len)
{
    char *hash = strchr(line, '#');
    if (hash != NULL) {
        *hash = '\0';
    }
    char *w[4];
    int n = words(line, w);
    if (n == 0) {
        return SL_OK;
    }
    if (strcmp(w[0], "user") == 0 && n == 3) {
        int rc = grow((void **)&a->users, a->n_users, sizeof(*a->users));
        struct auth_user *u = rc == SL_OK ? &a->users[a->n_users] : NULL;
        if (rc != SL_OK) {
            snprintf(why, why_len, "too many users");
            return rc;
        }
        if (!sl_scram_name_ok(w[1]) || !copy_field(u->name, sizeof(u->name), w[1])) {
            snprintf(why, why_len, "bad user name '%s' ([A-Za-z0-9_.@-], 1 to 64)", w[1]);
            return SL_EINVAL;
        }
        if (sl_scram_cred_parse(w[2], &u->cred) != SL_OK) {
            snprintf(why, why_len, "user %s: credentials are not SCRAM-SHA-256$ITER:SALT$"
                                   "STOREDKEY:SERVERKEY (make them with sluiced --hash-password)",
                     w[1]);
            return SL_EINVAL;
        }
        a->n_users++;
        return SL_OK;
    }
    if (strcmp(w[0], "awskey") == 0 && n == 4) {
        int rc = grow((void **)&a->keys, a->n_keys, sizeof(*a->keys));
        if (rc != SL_OK) {
            snprintf(why, why_len, "too many keys");
            return rc;
        }
        struct auth_key *k = &a->keys[a->n_keys];
        if (!copy_field(k->id, sizeof(k->id), w[1]) ||
            !copy_field(k->secret, sizeof(k->secret), w[2]) || !sl_scram_name_ok(w[3]) ||
            !copy_field(k->principal, sizeof(k->principal), w[3])) {
            snprintf(why, why_len, "awskey: want ACCESS_KEY_ID SECRET PRINCIPAL (at most %u, %u "
                                   "and 64 characters)",
                     SL_AUTH_KEY_ID_MAX, SL_AUTH_SECRET_MAX);
            return SL_EINVAL;
        }
        a->n_keys++;
        return SL_OK;
    }
    if (strcmp(w[0], "allow") == 0 && n == 4) {
        int rc = grow((void **)&a->rules, a->n_rules, sizeof(*a->rules));
        if (rc != SL_OK) {
            snprintf(why, why_len, "too many rules");
            return rc;
        }
        struct auth_rule *r = &a->rules[a->n_rules];
        memset(r, 0, sizeof(*r));
        r->ops = parse_ops(w[2]);
        size_t plen = strlen(w[3]);
        r->prefix = plen > 0 && w[3][plen - 1] == '*';
        if (r->prefix) {
            w[3][plen - 1] = '\0';
        }
        bool name_ok = strcmp(w[1], "*") == 0 || sl_scram_name_ok(w[1]);
        if (!name_ok || r->ops == 0 || strlen(w[3]) >= sizeof(r->pattern)) {
            snprintf(why, why_len, "allow: want PRINCIPAL|* OPS STREAM|PREFIX*|* with OPS from "
                                   "produce,consume,queue,admin or all");
            return SL_EINVAL;
        }
        copy_field(r->principal, sizeof(r->principal), w[1]);
        memcpy(r->pattern, w[3], strlen(w[3]) + 1);
        a->n_rules++;
        return SL_OK;
    }
    snprintf(why, why_len, "unknown rule '%s' (user, awskey or allow, with their fields)", w[0]);
    return SL_EINVAL;
}

static int check_mode(const char *path, char *why, size_t why_len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        snprintf(why, why_len, "auth_file %s: %s", path, strerror(e));
        return e == ENOENT ? SL_ENOTFOUND : SL_EINVAL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "auth_file %s is not a regular file", path);
        return SL_EINVAL;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(why, why_len, "auth_file %s holds secrets but is readable by others (mode %04o): "
                               "chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        return SL_EINVAL;
    }
    if ((uint64_t)st.st_size > SL_AUTH_FILE_BYTES_MAX) {
        snprintf(why, why_len, "auth_file %s is over %u bytes", path, SL_AUTH_FILE_BYTES_MAX);
        return SL_ETOOBIG;
    }
    return SL_OK;
}

int sl_auth_parse(const char *text, size_t len, const char *name, struct sl_auth **out,
                  char *why, size_t why_len)
{
    if (len > SL_AUTH_FILE_BYTES_MAX) {
        snprintf(why, why_len, "%s is over %u bytes", name, SL_AUTH_FILE_BYTES_MAX);
        return SL_ETOOBIG;
    }
    struct sl_auth *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    char line[SL_AUTH_LINE_MAX + 1], lwhy[256];
    int rc = SL_OK;
    size_t off = 0;
    for (uint32_t lineno = 1; rc == SL_OK && off < len; lineno++) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - (text + off)) : len - off;
        if (n > SL_AUTH_LINE_MAX || memchr(text + off, '\0', n) != NULL) {
            snprintf(lwhy, sizeof(lwhy), "%s", n > SL_AUTH_LINE_MAX ? "line too long"
                                                                    : "a NUL byte in the line");
            rc = SL_EINVAL;
        } else {
            memcpy(line, text + off, n);
            line[n] = '\0';
            rc = parse_line(a, line, lwhy, sizeof(lwhy));
        }
        if (rc != SL_OK) {
            snprintf(why, why_len, "%s:%u: %s", name, lineno, lwhy);
        }
        off += n + (nl != NULL);
    }
    if (rc != SL_OK) {
        sl_auth_free(a);
        return rc;
    }
    *out = a;
    return SL_OK;
}

int sl_auth_load(const char *path, struct sl_auth **out, char *why, size_t why_len)
{
    int rc = check_mode(path, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    FILE *f = fopen(path, "r");
    char *text = malloc(SL_AUTH_FILE_BYTES_MAX + 1);
    size_t len = 0;
    if (f != NULL && text != NULL) {
        len = fread(text, 1, SL_AUTH_FILE_BYTES_MAX + 1, f);
    }
    if (f == NULL || text == NULL || ferror(f)) {
        snprintf(why, why_len, "auth_file %s: %s", path,
                 text == NULL ? "out of memory" : strerror(errno));
        rc = text == NULL ? SL_ENOMEM : SL_EINVAL;
    } else {
        rc = sl_auth_parse(text, len, path, out, why, why_len);
    }
    if (f != NULL) {
        fclose(f);
    }
    free(text);
    return rc;
}

void sl_auth_free(struct sl_auth *a)
{
    if (a == NULL) {
        return;
    }
    if (a->keys != NULL) {
        memset(a->keys, 0, (size_t)a->n_keys * sizeof(*a->keys)); /* secrets */
    }
    free(a->users);
    free(a->keys);
    free(a->rules);
    free(a);
}

bool sl_auth_scram_lookup(void *ctx, const char *user, struct sl_scram_cred *cred)
{
    const struct sl_auth *a = ctx;
    for (uint32_t i = 0; i < a->n_users; i++) {
        if (strcmp(a->users[i].name, user) == 0) {
            *cred = a->users[i].cred;
            return true;
        }
    }
    return false;
}

const char *sl_auth_aws_secret(const struct sl_auth *a, const char *key_id,
                               const char **principal)
{
    for (uint32_t i = 0; i < a->n_keys; i++) {
        if (strcmp(a->keys[i].id, key_id) == 0) {
            *principal = a->keys[i].principal;
            return a->keys[i].secret;
        }
    }
    return NULL;
}

bool sl_auth_allowed(const struct sl_auth *a, const char *principal, uint32_t ops,
                     const char *stream)
{
    SL_ASSERT(ops != 0 && (ops & ~(uint32_t)SL_ACL_ANY) == 0);
    if (principal == NULL || principal[0] == '\0') {
        return false;
    }
    for (uint32_t i = 0; i < a->n_rules; i++) {
        const struct auth_rule *r = &a->rules[i];
        if ((r->ops & ops) == 0 ||
            (strcmp(r->principal, "*") != 0 && strcmp(r->principal, principal) != 0)) {
            continue;
        }
        /* "*" (prefix "") matches every stream and the requests about none */
        bool match = r->prefix ? strncmp(stream, r->pattern, strlen(r->pattern)) == 0 &&
                                     (stream[0] != '\0' || r->pattern[0] == '\0')
                               : strcmp(stream, r->pattern) == 0 && stream[0] != '\0';
        if (match) {
            return true;
        }
    }
    return false;
}

uint32_t sl_auth_user_count(const struct sl_auth *a)
{
    return a->n_users;
}
