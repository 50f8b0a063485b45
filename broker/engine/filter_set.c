/* filter_set.c - a set of event patterns matched together, with an index on
 * exact string fields, and the memo of its answers (see filter_set.h).
 *
 * Why the index answers exactly what each filter alone answers: a pattern is
 * filed under one condition of its top-level node (an AND, so the condition
 * must hold for the pattern to match) whose alternatives are all exact
 * strings or prefixes (case-sensitive ones). In body scope such a condition
 * holds exactly when one of the scalars at its path (arrays spread, as
 * filter_match.c reads them through the same sl_jsonflat) is a string equal
 * byte for byte to an exact alternative, or whose first L bytes equal a
 * prefix alternative of length L; in attribute scope, when the one value
 * the pattern reads for its key (flt_attr_value, shared with filter_match.c)
 * does. A path is (scope, keys): the two scopes never share one. So a record that the pattern
 * matches holds some key the pattern is filed under - (path, value) exact, or (path, the value's
 * first L bytes) for one of the prefix lengths L filed at that path - and the lookups make it a
 * candidate; every candidate is then matched in full with sl_filter_match. The index only ever
 * removes patterns that cannot match.
 *
 * Which condition: the one whose keys are filed least often so far (fewest
 * other patterns to match along with it; a prefix counts one more than an
 * exact value, as it stands for many values), then one on a path already
 * filed (fewer walks per record), then the first.
 *
 * Layout: slots[] hold the borrowed filters; `unindexed` is the bitset of the
 * slots matched for every record. paths[] are the distinct field paths under
 * which patterns are filed (copied, reference counted: a record costs one
 * walk per live path). The table maps (path, string) -> slot, one entry per
 * alternative of the filed condition: open addressing with linear probing
 * and tombstones, at most half full (tombstones counted), rebuilt on growth.
 * Its size is bounded: at most SL_FILTER_SET_MAX filed patterns of at most
 * SET_INDEX_VALUES_MAX alternatives each.
 *
 * The memo is direct-mapped on (version, shard, seq): consecutive records of
 * one shard of one set take consecutive entries, so a window of
 * SL_FILTER_MEMO_ENTRIES records of a shard is held whole; other shards and
 * sets share the entries and evict each other. An evicted answer is simply
 * computed again: bounded memory over a perfect one-match guarantee.
 */
#include "broker/engine/filter_set.h"

#include "broker/engine/filter_int.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/error.h"
#include "common/jsonflat.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A condition with more alternatives than this is not filed (its entries
 * would crowd the table); the pattern is filed under another condition or
 * matched for every record. The table is at most 4 x 1024 x 32 entries of 32
 * bytes (4 MiB) per set. */
#define SET_INDEX_VALUES_MAX 32u
#define TABLE_CAP_MIN        64u

_Static_assert(SET_INDEX_VALUES_MAX <= SL_FILTER_VALUES_MAX, "a subset of the values");

enum { ENT_EMPTY = 0, ENT_USED, ENT_TOMB };

struct fs_entry {
    uint64_t hash;
    const char *s; /* the alternative's bytes, borrowed from its filter */
    uint32_t len;
    uint32_t path;
    uint32_t slot;
    uint8_t state;
    bool prefix; /* the key is a prefix of the values it stands for */
};

struct fs_plen {
    uint32_t len;  /* a prefix length filed at the path */
    uint32_t refs; /* entries of that length */
};

struct fs_path {
    uint32_t refs; /* filed patterns; 0: the entry is free */
    uint8_t scope; /* enum sl_filter_scope: where the values are read */
    uint32_t seg_count;
    uint32_t seg_len[SL_FILTER_PATH_MAX];
    char *text;           /* owned: the keys back to back */
    struct fs_plen *plen; /* owned: distinct prefix lengths (a lookup each per value) */
    uint32_t plen_count, plen_cap;
};

struct fs_slot {
    const struct sl_filter *f; /* NULL: free */
    uint32_t path;             /* SL_FILTER_SET_NONE: matched for every record */
    uint32_t cond;             /* the filed condition (index into f->conds) */
};

struct sl_filter_set {
    struct fs_slot slots[SL_FILTER_SET_MAX];
    uint64_t used[SL_FILTER_SET_WORDS];
    uint64_t unindexed[SL_FILTER_SET_WORDS];
    uint32_t count, indexed;
    uint64_t version;
    struct fs_path *paths;
    uint32_t path_count, path_cap; /* path_count: high-water mark */
    struct fs_entry *table;
    uint32_t table_cap, table_live, table_tomb;
};

struct memo_entry {
    uint64_t version; /* 0: empty */
    uint64_t seq;
    uint32_t shard;
    uint64_t bits[SL_FILTER_SET_WORDS];
};

struct sl_filter_memo {
    struct memo_entry e[SL_FILTER_MEMO_ENTRIES];
};

static _Atomic uint64_t g_version; /* versions of every set of the process */

static uint64_t version_next(void)
{
    return atomic_fetch_add_explicit(&g_version, 1, memory_order_relaxed) + 1;
}

static uint64_t entry_hash(uint32_t path, const char *s, uint32_t len, bool prefix)
{
    return sl_checksum64(s, len) ^ ((uint64_t)(path + 1) * 0x9E3779B97F4A7C15ull) ^
           (prefix ? 0xA5A5A5A5A5A5A5A5ull : 0);
}

/* The alternatives the index files: exact strings and case-sensitive prefixes. */
static bool alt_fileable(const struct flt_alt *a)
{
    return a->op == FLT_EXACT || (a->op == FLT_PREFIX && !a->fold);
}

static uint32_t popcount_words(const uint64_t *w)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < SL_FILTER_SET_WORDS; i++) {
        n += (uint32_t)__builtin_popcountll(w[i]);
    }
    return n;
}

static void check_invariants(const struct sl_filter_set *fs)
{
    SL_ASSERT(fs->count <= SL_FILTER_SET_MAX && fs->indexed <= fs->count);
    SL_ASSERT(popcount_words(fs->used) == fs->count);
    SL_ASSERT(popcount_words(fs->unindexed) == fs->count - fs->indexed);
    SL_ASSERT(fs->table_cap == 0 || 2 * (fs->table_live + fs->table_tomb) <= fs->table_cap);
}

struct sl_filter_set *sl_filter_set_new(void)
{
    struct sl_filter_set *fs = calloc(1, sizeof(*fs));
    if (fs != NULL) {
        fs->version = version_next();
    }
    return fs;
}

void sl_filter_set_free(struct sl_filter_set *fs)
{
    if (fs == NULL) {
        return;
    }
    for (uint32_t p = 0; p < fs->path_count; p++) {
        free(fs->paths[p].text);
        free(fs->paths[p].plen);
    }
    free(fs->paths);
    free(fs->table);
    free(fs);
}

uint32_t sl_filter_set_count(const struct sl_filter_set *fs)
{
    return fs->count;
}

uint32_t sl_filter_set_indexed(const struct sl_filter_set *fs)
{
    return fs->indexed;
}

uint64_t sl_filter_set_version(const struct sl_filter_set *fs)
{
    return fs->version;
}

/* ---- choosing and filing ---- */

static bool path_equal(const struct fs_path *p, const struct sl_filter *f, const struct flt_cond *c)
{
    if (p->refs == 0 || p->scope != f->scope || p->seg_count != c->seg_count) {
        return false;
    }
    const char *t = p->text;
    for (uint32_t i = 0; i < c->seg_count; i++) {
        const struct flt_seg *seg = &f->segs[c->seg_first + i];
        if (seg->len != p->seg_len[i] || memcmp(t, seg->s, seg->len) != 0) {
            return false;
        }
        t += seg->len;
    }
    return true;
}

static uint32_t path_find(const struct sl_filter_set *fs, const struct sl_filter *f,
                          const struct flt_cond *c)
{
    for (uint32_t p = 0; p < fs->path_count; p++) {
        if (path_equal(&fs->paths[p], f, c)) {
            return p;
        }
    }
    return SL_FILTER_SET_NONE;
}

/* Entries filed under alternative `a` of path `p` (by other patterns). */
static uint32_t key_count(const struct sl_filter_set *fs, uint32_t p, const struct flt_alt *a)
{
    if (p == SL_FILTER_SET_NONE || fs->table_cap == 0) {
        return 0;
    }
    bool prefix = a->op == FLT_PREFIX;
    uint64_t h = entry_hash(p, a->s, a->len, prefix);
    uint32_t n = 0;
    for (uint32_t i = (uint32_t)h & (fs->table_cap - 1); fs->table[i].state != ENT_EMPTY;
         i = (i + 1) & (fs->table_cap - 1)) {
        const struct fs_entry *e = &fs->table[i];
        n += e->state == ENT_USED && e->hash == h && e->path == p && e->prefix == prefix &&
                     e->len == a->len && memcmp(e->s, a->s, a->len) == 0
                 ? 1
                 : 0;
    }
    return n;
}

/* The condition to file `f` under, or SL_FILTER_SET_NONE (see the top): a
 * top-level condition whose alternatives the index can file, the least
 * crowded first. */
static uint32_t cond_choose(const struct sl_filter_set *fs, const struct sl_filter *f)
{
    const struct flt_node *top = &f->nodes[0];
    uint32_t best = SL_FILTER_SET_NONE;
    uint64_t best_score = UINT64_MAX;
    bool best_known = false;
    for (uint32_t i = 0; i < top->cond_count; i++) {
        uint32_t ci = top->cond_first + i;
        const struct flt_cond *c = &f->conds[ci];
        bool ok = c->alt_count > 0 && c->alt_count <= SET_INDEX_VALUES_MAX;
        for (uint32_t a = 0; a < c->alt_count && ok; a++) {
            ok = alt_fileable(&f->alts[c->alt_first + a]);
        }
        if (!ok) {
            continue;
        }
        uint32_t p = path_find(fs, f, c);
        uint64_t score = 0;
        for (uint32_t a = 0; a < c->alt_count; a++) {
            const struct flt_alt *alt = &f->alts[c->alt_first + a];
            score += 1u + (alt->op == FLT_PREFIX ? 1u : 0u) + key_count(fs, p, alt);
        }
        bool known = p != SL_FILTER_SET_NONE;
        if (score < best_score || (score == best_score && known && !best_known)) {
            best = ci;
            best_score = score;
            best_known = known;
        }
    }
    return best;
}

/* The path of condition `c`, found or added with one reference more. */
static int path_ref(struct sl_filter_set *fs, const struct sl_filter *f, const struct flt_cond *c,
                    uint32_t *out)
{
    uint32_t p = path_find(fs, f, c);
    if (p != SL_FILTER_SET_NONE) {
        fs->paths[p].refs++;
        *out = p;
        return SL_OK;
    }
    for (p = 0; p < fs->path_count && fs->paths[p].refs > 0; p++) {
    }
    if (p == fs->path_cap) {
        uint32_t cap = fs->path_cap ? 2 * fs->path_cap : 8;
        struct fs_path *np = realloc(fs->paths, cap * sizeof(*np));
        if (np == NULL) {
            return SL_ENOMEM;
        }
        memset(np + fs->path_cap, 0, (cap - fs->path_cap) * sizeof(*np));
        fs->paths = np;
        fs->path_cap = cap;
    }
    size_t total = 0;
    for (uint32_t i = 0; i < c->seg_count; i++) {
        total += f->segs[c->seg_first + i].len;
    }
    char *text = malloc(total > 0 ? total : 1);
    if (text == NULL) {
        return SL_ENOMEM;
    }
    struct fs_path *path = &fs->paths[p];
    SL_ASSERT(path->text == NULL && path->plen == NULL); /* freed by path_unref */
    *path = (struct fs_path){.refs = 1, .scope = f->scope, .seg_count = c->seg_count, .text = text};
    for (uint32_t i = 0; i < c->seg_count; i++) {
        const struct flt_seg *seg = &f->segs[c->seg_first + i];
        memcpy(text, seg->s, seg->len);
        text += seg->len;
        path->seg_len[i] = seg->len;
    }
    fs->path_count = p == fs->path_count ? p + 1 : fs->path_count;
    *out = p;
    return SL_OK;
}

static void path_unref(struct sl_filter_set *fs, uint32_t p)
{
    SL_ASSERT(p < fs->path_count && fs->paths[p].refs > 0);
    if (--fs->paths[p].refs == 0) {
        SL_ASSERT(fs->paths[p].plen_count == 0);
        free(fs->paths[p].text);
        free(fs->paths[p].plen);
        fs->paths[p].text = NULL;
        fs->paths[p].plen = NULL;
        fs->paths[p].plen_cap = 0;
    }
}

/* Room for `more` prefix lengths at path `p`. */
static int plen_reserve(struct fs_path *p, uint32_t more)
{
    if (p->plen_count + more <= p->plen_cap) {
        return SL_OK;
    }
    uint32_t cap = p->plen_cap ? p->plen_cap : 4;
    while (cap < p->plen_count + more) {
        cap *= 2;
    }
    struct fs_plen *n = realloc(p->plen, cap * sizeof(*n));
    if (n == NULL) {
        return SL_ENOMEM;
    }
    p->plen = n;
    p->plen_cap = cap;
    return SL_OK;
}

/* One entry more (delta 1) or less (-1) of prefix length `len` at `p`. */
static void plen_count(struct fs_path *p, uint32_t len, int delta)
{
    for (uint32_t i = 0; i < p->plen_count; i++) {
        if (p->plen[i].len == len) {
            p->plen[i].refs = (uint32_t)((int64_t)p->plen[i].refs + delta);
            if (p->plen[i].refs == 0) {
                p->plen[i] = p->plen[--p->plen_count];
            }
            return;
        }
    }
    SL_ASSERT(delta == 1 && p->plen_count < p->plen_cap); /* reserved by the caller */
    p->plen[p->plen_count++] = (struct fs_plen){.len = len, .refs = 1};
}

/* Files `e` in the first entry not in use; true when that was a tombstone. */
static bool table_put(struct fs_entry *table, uint32_t cap, const struct fs_entry *e)
{
    for (uint32_t i = (uint32_t)e->hash & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (table[i].state != ENT_USED) {
            bool tomb = table[i].state == ENT_TOMB;
            table[i] = *e;
            table[i].state = ENT_USED;
            return tomb;
        }
    }
}

/* Room for `more` entries without passing half full; rebuilds (dropping
 * tombstones) into a larger table when needed. */
static int table_reserve(struct sl_filter_set *fs, uint32_t more)
{
    if (2 * (fs->table_live + fs->table_tomb + more) <= fs->table_cap) {
        return SL_OK;
    }
    uint32_t cap = TABLE_CAP_MIN;
    while (cap < 4 * (fs->table_live + more)) {
        cap *= 2;
    }
    struct fs_entry *t = calloc(cap, sizeof(*t));
    if (t == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < fs->table_cap; i++) {
        if (fs->table[i].state == ENT_USED) {
            (void)table_put(t, cap, &fs->table[i]);
        }
    }
    free(fs->table);
    fs->table = t;
    fs->table_cap = cap;
    fs->table_tomb = 0;
    return SL_OK;
}

static uint32_t slot_free(const struct sl_filter_set *fs)
{
    for (uint32_t w = 0; w < SL_FILTER_SET_WORDS; w++) {
        if (~fs->used[w] != 0) {
            return w * 64u + (uint32_t)__builtin_ctzll(~fs->used[w]);
        }
    }
    return SL_FILTER_SET_NONE;
}

int sl_filter_set_add(struct sl_filter_set *fs, const struct sl_filter *f, uint32_t *slot)
{
    SL_ASSERT(fs != NULL && f != NULL && f->node_count > 0);
    check_invariants(fs);
    uint32_t s = slot_free(fs);
    if (s == SL_FILTER_SET_NONE) {
        return SL_ELIMIT;
    }
    uint32_t ci = cond_choose(fs, f), path = SL_FILTER_SET_NONE;
    if (ci != SL_FILTER_SET_NONE) {
        const struct flt_cond *c = &f->conds[ci];
        uint32_t prefixes = 0;
        for (uint32_t a = 0; a < c->alt_count; a++) {
            prefixes += f->alts[c->alt_first + a].op == FLT_PREFIX ? 1 : 0;
        }
        int rc = path_ref(fs, f, c, &path);
        if (rc == SL_OK && ((rc = table_reserve(fs, c->alt_count)) != SL_OK ||
                            (rc = plen_reserve(&fs->paths[path], prefixes)) != SL_OK)) {
            path_unref(fs, path);
        }
        if (rc != SL_OK) {
            return rc;
        }
        for (uint32_t a = 0; a < c->alt_count; a++) {
            const struct flt_alt *alt = &f->alts[c->alt_first + a];
            bool prefix = alt->op == FLT_PREFIX;
            struct fs_entry e = {.hash = entry_hash(path, alt->s, alt->len, prefix),
                                 .s = alt->s,
                                 .len = alt->len,
                                 .path = path,
                                 .slot = s,
                                 .prefix = prefix};
            fs->table_tomb -= table_put(fs->table, fs->table_cap, &e) ? 1 : 0;
            fs->table_live++;
            if (prefix) {
                plen_count(&fs->paths[path], alt->len, 1);
            }
        }
        fs->indexed++;
    } else {
        fs->unindexed[s / 64u] |= 1ull << (s % 64u);
    }
    fs->slots[s] = (struct fs_slot){.f = f, .path = path, .cond = ci};
    fs->used[s / 64u] |= 1ull << (s % 64u);
    fs->count++;
    fs->version = version_next();
    check_invariants(fs);
    *slot = s;
    return SL_OK;
}

void sl_filter_set_remove(struct sl_filter_set *fs, uint32_t s)
{
    SL_ASSERT(s < SL_FILTER_SET_MAX && sl_filter_set_bit(fs->used, s));
    check_invariants(fs);
    struct fs_slot *sl = &fs->slots[s];
    if (sl->path != SL_FILTER_SET_NONE) {
        const struct flt_cond *c = &sl->f->conds[sl->cond];
        for (uint32_t a = 0; a < c->alt_count; a++) {
            const struct flt_alt *alt = &sl->f->alts[c->alt_first + a];
            bool prefix = alt->op == FLT_PREFIX;
            uint64_t h = entry_hash(sl->path, alt->s, alt->len, prefix);
            if (prefix) {
                plen_count(&fs->paths[sl->path], alt->len, -1);
            }
            uint32_t i = (uint32_t)h & (fs->table_cap - 1);
            for (;; i = (i + 1) & (fs->table_cap - 1)) {
                struct fs_entry *e = &fs->table[i];
                SL_ASSERT(e->state != ENT_EMPTY); /* every alternative was filed */
                if (e->state == ENT_USED && e->slot == s && e->s == alt->s) {
                    e->state = ENT_TOMB;
                    break;
                }
            }
            fs->table_live--;
            fs->table_tomb++;
        }
        path_unref(fs, sl->path);
        fs->indexed--;
    } else {
        fs->unindexed[s / 64u] &= ~(1ull << (s % 64u));
    }
    *sl = (struct fs_slot){.path = SL_FILTER_SET_NONE, .cond = SL_FILTER_SET_NONE};
    fs->used[s / 64u] &= ~(1ull << (s % 64u));
    fs->count--;
    fs->version = version_next();
    check_invariants(fs);
}

/* ---- matching ---- */

/* Marks in `cand` the patterns filed under key (p, s[0..len), prefix). */
static void key_candidates(const struct sl_filter_set *fs, uint32_t p, const char *s, uint32_t len,
                           bool prefix, uint64_t *cand)
{
    uint64_t h = entry_hash(p, s, len, prefix);
    for (uint32_t i = (uint32_t)h & (fs->table_cap - 1); fs->table[i].state != ENT_EMPTY;
         i = (i + 1) & (fs->table_cap - 1)) {
        const struct fs_entry *e = &fs->table[i];
        if (e->state == ENT_USED && e->hash == h && e->path == p && e->prefix == prefix &&
            e->len == len && memcmp(e->s, s, len) == 0) {
            cand[e->slot / 64u] |= 1ull << (e->slot % 64u);
        }
    }
}

/* Marks in `cand` the patterns filed under string `v` at path `p`: the whole
 * string, and its first L bytes for each prefix length L filed there. */
static void value_candidates(const struct sl_filter_set *fs, uint32_t p,
                             const struct sl_jsonflat_value *v, uint64_t *cand)
{
    const struct fs_path *path = &fs->paths[p];
    key_candidates(fs, p, v->s, v->len, false, cand);
    for (uint32_t i = 0; i < path->plen_count; i++) {
        if (path->plen[i].len <= v->len) {
            key_candidates(fs, p, v->s, path->plen[i].len, true, cand);
        }
    }
}

/* Marks in `cand` the patterns filed under a string the record holds at body
 * path `p` (every string scalar there). */
static void body_candidates(const struct sl_filter_set *fs, uint32_t p,
                            const struct sl_jsonflat *jf, uint64_t *cand)
{
    const struct fs_path *path = &fs->paths[p];
    uint32_t at = SL_JSONFLAT_ROOT;
    const char *t = path->text;
    for (uint32_t i = 0; i < path->seg_count && at != SL_JSONFLAT_NONE; i++) {
        at = sl_jsonflat_child(jf, at, t, path->seg_len[i]);
        t += path->seg_len[i];
    }
    uint32_t v = at != SL_JSONFLAT_NONE ? sl_jsonflat_first(jf, at) : SL_JSONFLAT_NONE;
    while (v != SL_JSONFLAT_NONE) {
        const struct sl_jsonflat_value *jv = sl_jsonflat_value(jf, v);
        v = jv->next;
        if (jv->type == SL_JSON_STRING) {
            value_candidates(fs, p, jv, cand);
        }
    }
}

/* Marks in `cand` the patterns filed under the record's value for attribute
 * path `p` (one key): the value, or each string element of a String.Array. */
static void attr_candidates(const struct sl_filter_set *fs, uint32_t p,
                            struct sl_filter_subject *s, uint64_t *cand)
{
    const struct fs_path *path = &fs->paths[p];
    SL_ASSERT(path->seg_count == 1);
    struct sl_jsonflat_value v;
    bool array = false;
    if (!flt_attr_value(s->rec, path->text, path->seg_len[0], &v, &array)) {
        return;
    }
    if (!array) {
        value_candidates(fs, p, &v, cand);
        return;
    }
    const struct sl_jsonflat *jf = NULL;
    for (uint32_t e = flt_attr_elements(s, &v, &jf); e != SL_JSONFLAT_NONE;) {
        const struct sl_jsonflat_value *ev = sl_jsonflat_value(jf, e);
        if (ev->type == SL_JSON_STRING) {
            value_candidates(fs, p, ev, cand);
        }
        e = ev->next;
    }
}

void sl_filter_set_match(const struct sl_filter_set *fs, struct sl_filter_subject *s,
                         uint64_t *bits)
{
    SL_ASSERT(fs != NULL && s != NULL && s->rec != NULL);
    uint64_t cand[SL_FILTER_SET_WORDS];
    memcpy(cand, fs->unindexed, sizeof(cand));
    const struct sl_jsonflat *jf = NULL;
    bool body_read = false; /* read only when a body path is filed */
    for (uint32_t p = 0; p < fs->path_count; p++) {
        if (fs->paths[p].refs == 0) {
            continue;
        }
        if (fs->paths[p].scope == SL_FILTER_SCOPE_ATTRIBUTES) {
            attr_candidates(fs, p, s, cand);
            continue;
        }
        if (!body_read) {
            jf = flt_subject_body(s);
            body_read = true;
        }
        if (jf != NULL) { /* else no body condition holds: no candidate */
            body_candidates(fs, p, jf, cand);
        }
    }
    for (uint32_t w = 0; w < SL_FILTER_SET_WORDS; w++) {
        uint64_t out = 0;
        for (uint64_t c = cand[w]; c != 0; c &= c - 1) {
            uint32_t slot = w * 64u + (uint32_t)__builtin_ctzll(c);
            SL_ASSERT(fs->slots[slot].f != NULL);
            if (sl_filter_match(fs->slots[slot].f, s)) {
                out |= 1ull << (slot % 64u);
            }
        }
        SL_ASSERT((out & ~fs->used[w]) == 0);
        bits[w] = out;
    }
}

/* ---- memo ---- */

struct sl_filter_memo *sl_filter_memo_new(void)
{
    return calloc(1, sizeof(struct sl_filter_memo));
}

void sl_filter_memo_free(struct sl_filter_memo *m)
{
    free(m);
}

static struct memo_entry *memo_entry(const struct sl_filter_memo *m, uint64_t version,
                                     uint32_t shard, uint64_t seq)
{
    uint64_t base = (version * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)shard * 0xC2B2AE3D27D4EB4Full);
    uint32_t i = (uint32_t)((seq + (base >> 32)) & (SL_FILTER_MEMO_ENTRIES - 1));
    return (struct memo_entry *)&m->e[i];
}

const uint64_t *sl_filter_memo_find(const struct sl_filter_memo *m, uint64_t version,
                                    uint32_t shard, uint64_t seq)
{
    SL_ASSERT(version != 0);
    const struct memo_entry *e = memo_entry(m, version, shard, seq);
    return e->version == version && e->shard == shard && e->seq == seq ? e->bits : NULL;
}

const uint64_t *sl_filter_memo_match(struct sl_filter_memo *m, const struct sl_filter_set *fs,
                                     struct sl_filter_subject *s, uint32_t shard, uint64_t seq)
{
    uint64_t version = sl_filter_set_version(fs);
    const uint64_t *hit = sl_filter_memo_find(m, version, shard, seq);
    if (hit != NULL) {
        return hit;
    }
    struct memo_entry *e = memo_entry(m, version, shard, seq);
    e->version = 0; /* not an answer until it is whole */
    sl_filter_set_match(fs, s, e->bits);
    e->version = version;
    e->shard = shard;
    e->seq = seq;
    return e->bits;
}
