/* filter_int.h - the compiled form of an event pattern, shared by
 * filter_parse.c (which builds it) and filter_match.c (which reads it).
 *
 * A pattern is an AND/OR tree. A node is an AND of conditions (one per field)
 * and of $or groups; a $or group is an OR of child nodes. Node 0 is the
 * top-level object. A node's conditions, a node's $or groups and a group's
 * children are each contiguous in their arrays (parsing finishes one node
 * before it starts the next). Depth of the tree <= SL_FILTER_OR_DEPTH_MAX + 1.
 *
 * Every string of a pattern (keys, operands) is copied into one arena of the
 * pattern text's length, allocated once: a decoded JSON string is never
 * longer than its quoted encoding and each is stored at most once, so the
 * arena never moves and never overflows.
 */
#ifndef SL_FILTER_INT_H
#define SL_FILTER_INT_H

#include "broker/engine/filter.h"

#include <stdbool.h>
#include <stdint.h>

enum flt_op {
    FLT_EXACT,       /* a string, byte for byte */
    FLT_NUMBER,      /* numeric equality */
    FLT_NULL,        /* body: JSON null */
    FLT_TRUE,        /* body: JSON true */
    FLT_FALSE,       /* body: JSON false */
    FLT_PREFIX,      /* .fold: ASCII case folded */
    FLT_SUFFIX,      /* .fold: ASCII case folded */
    FLT_IGNORE_CASE, /* equal under ASCII case folding */
    FLT_WILDCARD,    /* '*' any run; "\*" and "\\" literal */
    FLT_CIDR,        /* an IPv4 or IPv6 address inside a prefix */
    FLT_EXISTS,
    FLT_NUMERIC,     /* one or two comparisons, all must hold */
    FLT_BUT,         /* present and none of subs[sub_first, +sub_count] holds */
};

enum flt_cmp { FLT_CMP_EQ, FLT_CMP_LT, FLT_CMP_LE, FLT_CMP_GT, FLT_CMP_GE };

struct flt_alt {
    uint8_t op;   /* enum flt_op */
    bool fold;    /* FLT_PREFIX, FLT_SUFFIX */
    bool exists;  /* FLT_EXISTS */
    uint8_t cmp_count;
    uint8_t cmp_op[2]; /* enum flt_cmp */
    uint8_t cidr_family; /* 4 or 6 */
    uint8_t cidr_bits;
    uint8_t cidr_addr[16];
    uint32_t len;
    const char *s; /* string operands; into the arena */
    double num;    /* FLT_NUMBER */
    double cmp_val[2];
    uint32_t sub_first, sub_count; /* FLT_BUT: into subs */
};

struct flt_seg {
    const char *s; /* into the arena */
    uint32_t len;
};

/* One field and its alternatives: the field is one attribute key, or a path
 * of object keys into the body. */
struct flt_cond {
    uint32_t seg_first, seg_count; /* segs */
    uint32_t alt_first, alt_count; /* alts */
};

struct flt_node {
    uint32_t cond_first, cond_count; /* conds */
    uint32_t or_first, or_count;     /* ors */
};

struct flt_or {
    uint32_t node_first, node_count; /* nodes */
};

struct sl_filter {
    uint8_t scope; /* enum sl_filter_scope */
    struct flt_node *nodes;
    uint32_t node_count, node_cap;
    struct flt_or *ors;
    uint32_t or_count, or_cap;
    struct flt_cond *conds;
    uint32_t cond_count, cond_cap;
    struct flt_seg *segs;
    uint32_t seg_count, seg_cap;
    struct flt_alt *alts;
    uint32_t alt_count, alt_cap;
    struct flt_alt *subs; /* anything-but operands */
    uint32_t sub_count, sub_cap;
    char *arena;
    size_t arena_len, arena_cap;
};

/* The subject's value read as JSON (read at the first call for its record),
 * or NULL when it is not a JSON object of at most SL_JSONFLAT_DOC_MAX bytes
 * or there was no memory: then no body condition holds (filter_match.c). */
const struct sl_jsonflat *flt_subject_body(struct sl_filter_subject *s);

/* Attribute scope: the value a pattern on `key` reads from `rec` - the first
 * attribute named so, else the value of a typed SQS/SNS message attribute
 * (filter_match.c) - as a string in *v; false when the record has neither. */
struct sl_record_view;
struct sl_jsonflat_value;
bool flt_attr_value(const struct sl_record_view *rec, const char *key, uint32_t key_len,
                    struct sl_jsonflat_value *v, bool *array);
/* A String.Array attribute's value `v` (as flt_attr_value set it, *array true) read as JSON
 * into the subject's array scratch: the index of its first element in *jf (follow `next`),
 * or SL_JSONFLAT_NONE (not JSON, no memory: no element holds). */
uint32_t flt_attr_elements(struct sl_filter_subject *s, const struct sl_jsonflat_value *v,
                           const struct sl_jsonflat **jf);

#endif
