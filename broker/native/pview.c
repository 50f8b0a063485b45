/* pview.c - the Produce request parsed in place (see pview.h).
 *
 * Wire format (protobuf, proto/sluice.proto): a message is a sequence of
 * fields, each a tag varint (field number << 3 | wire type) and a value:
 * 0 varint (1..10 bytes), 1 fixed 8 bytes, 2 a length varint and that many
 * bytes, 5 fixed 4 bytes; 3/4 (groups) are not protobuf 3 and, like
 * protobuf-c, refused. Request is {id = 1 (uint64), oneof body {...,
 * produce = 15 (Produce), ...}}; Produce is {stream = 1 (string), shard = 2
 * (uint32), ack = 3 (enum), batch = 4 (bytes), in_order = 5 (bool), trace = 6
 * (bool), caller_routed = 7 (bool)}.
 *
 * Every limit below is protobuf-c 1.4's (protobuf-c.c: parse_tag_and_wiretype,
 * scan_length_prefixed_data, the unpack's varint scan, parse_uint32/64,
 * parse_boolean), so that both accept and refuse the same frames: a tag is
 * at most 5 bytes with a nonzero first field-number part, a varint at most
 * 10 bytes (the low 64 bits kept; a uint32/enum keeps the low 32), a length
 * at most 5 bytes and 2^31-1. Nothing here recurses or allocates; every read
 * is bounded by `rem`, the bytes left in the enclosing message.
 */
#include "broker/native/pview.h"

#include "common/assert.h"
#include "common/error.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

enum {
    WT_VARINT = 0,
    WT_FIXED64 = 1,
    WT_LEN = 2,
    WT_FIXED32 = 5,
};

#define TAG_BYTES_MAX    5u  /* protobuf-c's parse_tag_and_wiretype */
#define VARINT_BYTES_MAX 10u /* 64 bits in 7-bit groups */
#define LENPFX_BYTES_MAX 5u  /* protobuf-c's scan_length_prefixed_data */

#define REQ_ID      1u
#define REQ_PRODUCE 15u
#define PR_STREAM   1u
#define PR_SHARD    2u
#define PR_ACK      3u
#define PR_BATCH    4u
#define PR_IN_ORDER 5u
#define PR_TRACE    6u
#define PR_CALLER_ROUTED 7u

/* One field as scanned: its value's bytes are [val, val + val_len); for a
 * varint, val_len counts its bytes; for wire type 2 the prefix is skipped. */
struct field {
    uint32_t num;
    uint8_t wt;
    const uint8_t *val;
    size_t val_len;
};

struct cursor {
    const uint8_t *frame; /* for offsets in messages */
    const char *where;    /* "Request" or "Produce" */
    char *why;
    size_t why_len;
    struct sl_pview *out;
};

static int fault(struct cursor *cu, enum sl_pview_fault f, const uint8_t *at, const char *what,
                 uint32_t num)
{
    cu->out->fault = f;
    snprintf(cu->why, cu->why_len, "malformed %s: %s (field %u, byte %zu of the frame)",
             cu->where, what, num, (size_t)(at - cu->frame));
    return SL_EPROTO;
}

/* Reads a tag the way protobuf-c does; returns its bytes, 0 when invalid. */
static size_t read_tag(const uint8_t *p, size_t rem, uint32_t *num, uint8_t *wt)
{
    SL_ASSERT(rem > 0);
    size_t max = rem > TAG_BYTES_MAX ? TAG_BYTES_MAX : rem;
    if ((p[0] & 0xf8u) == 0) {
        return 0; /* field number 0 */
    }
    *wt = p[0] & 7u;
    uint32_t n = (uint32_t)(p[0] & 0x7fu) >> 3;
    if ((p[0] & 0x80u) == 0) {
        *num = n;
        return 1;
    }
    unsigned shift = 4;
    for (size_t i = 1; i < max; i++) {
        n |= (uint32_t)(p[i] & 0x7fu) << shift;
        if ((p[i] & 0x80u) == 0) {
            *num = n;
            return i + 1;
        }
        shift += 7;
    }
    return 0;
}

/* Scans one field at p (rem bytes left in its message); returns the bytes
 * it takes, or 0 with the fault set. */
static size_t scan_field(struct cursor *cu, const uint8_t *p, size_t rem, struct field *f)
{
    size_t t = read_tag(p, rem, &f->num, &f->wt);
    if (t == 0) {
        fault(cu, SL_PVIEW_BAD_TAG, p, "invalid tag (field number 0, or over 5 bytes)", 0);
        return 0;
    }
    const uint8_t *v = p + t;
    size_t left = rem - t;
    size_t n = 0;
    switch (f->wt) {
    case WT_VARINT: {
        size_t max = left < VARINT_BYTES_MAX ? left : VARINT_BYTES_MAX;
        while (n < max && (v[n] & 0x80u) != 0) {
            n++;
        }
        if (n == max) {
            fault(cu, SL_PVIEW_BAD_VARINT, v, "varint cut by the end or over 10 bytes", f->num);
            return 0;
        }
        f->val = v;
        f->val_len = n + 1;
        return t + n + 1;
    }
    case WT_FIXED64:
    case WT_FIXED32: {
        size_t w = f->wt == WT_FIXED64 ? 8u : 4u;
        if (left < w) {
            fault(cu, SL_PVIEW_BAD_FIXED, v, "fixed-width value cut by the end", f->num);
            return 0;
        }
        f->val = v;
        f->val_len = w;
        return t + w;
    }
    case WT_LEN: {
        size_t max = left < LENPFX_BYTES_MAX ? left : LENPFX_BYTES_MAX;
        uint64_t len = 0;
        for (n = 0; n < max; n++) {
            len |= (uint64_t)(v[n] & 0x7fu) << (7u * n);
            if ((v[n] & 0x80u) == 0) {
                break;
            }
        }
        if (n == max || len > INT_MAX || len > left - n - 1) {
            fault(cu, SL_PVIEW_BAD_LENGTH, v,
                  n == max ? "length prefix cut by the end or over 5 bytes"
                           : "length runs past the end of its message",
                  f->num);
            return 0;
        }
        f->val = v + n + 1;
        f->val_len = (size_t)len;
        return t + n + 1 + (size_t)len;
    }
    default:
        fault(cu, SL_PVIEW_GROUP, p, "wire type 3, 4, 6 or 7 (groups are not protobuf 3)",
              f->num);
        return 0;
    }
}

/* The low 64 bits of a varint (protobuf-c's parse_uint64). */
static uint64_t varint_u64(const struct field *f)
{
    uint64_t v = 0;
    for (size_t i = 0; i < f->val_len; i++) {
        v |= (uint64_t)(f->val[i] & 0x7fu) << (7u * i);
    }
    return v;
}

/* protobuf-c's parse_boolean: true when any 7-bit group is nonzero. */
static bool varint_bool(const struct field *f)
{
    for (size_t i = 0; i < f->val_len; i++) {
        if ((f->val[i] & 0x7fu) != 0) {
            return true;
        }
    }
    return false;
}

static int want(struct cursor *cu, const struct field *f, uint8_t wt, const char *name)
{
    if (f->wt == wt) {
        return SL_OK;
    }
    char what[96];
    snprintf(what, sizeof(what), "%s sent with wire type %u, expected %u", name, f->wt, wt);
    return fault(cu, SL_PVIEW_BAD_WIRE_TYPE, f->val, what, f->num);
}

/* One Produce message (the value of field 15): a fresh one each time, as
 * protobuf-c replaces a oneof member rather than merging into it. */
static int parse_produce(struct cursor *cu, const uint8_t *p, size_t len)
{
    struct sl_pview *o = cu->out;
    o->stream = NULL;
    o->stream_len = 0;
    o->shard = 0;
    o->ack = 0;
    o->batch = NULL;
    o->batch_len = 0;
    o->in_order = false;
    o->trace = false;
    o->caller_routed = false;
    cu->where = "Produce";
    size_t off = 0;
    while (off < len) {
        struct field f;
        size_t used = scan_field(cu, p + off, len - off, &f);
        if (used == 0) {
            return SL_EPROTO;
        }
        SL_ASSERT(used <= len - off);
        off += used;
        int rc = SL_OK;
        switch (f.num) {
        case PR_STREAM:
            if ((rc = want(cu, &f, WT_LEN, "stream")) == SL_OK) {
                const uint8_t *nul = f.val_len > 0 ? memchr(f.val, 0, f.val_len) : NULL;
                o->stream = f.val;
                o->stream_len = nul != NULL ? (size_t)(nul - f.val) : f.val_len;
            }
            break;
        case PR_SHARD:
            if ((rc = want(cu, &f, WT_VARINT, "shard")) == SL_OK) {
                o->shard = (uint32_t)varint_u64(&f);
            }
            break;
        case PR_ACK:
            if ((rc = want(cu, &f, WT_VARINT, "ack")) == SL_OK) {
                o->ack = (int32_t)(uint32_t)varint_u64(&f);
            }
            break;
        case PR_BATCH:
            if ((rc = want(cu, &f, WT_LEN, "batch")) == SL_OK) {
                o->batch = f.val_len > 0 ? f.val : NULL;
                o->batch_len = f.val_len;
            }
            break;
        case PR_IN_ORDER:
            if ((rc = want(cu, &f, WT_VARINT, "in_order")) == SL_OK) {
                o->in_order = varint_bool(&f);
            }
            break;
        case PR_TRACE:
            if ((rc = want(cu, &f, WT_VARINT, "trace")) == SL_OK) {
                o->trace = varint_bool(&f);
            }
            break;
        case PR_CALLER_ROUTED:
            if ((rc = want(cu, &f, WT_VARINT, "caller_routed")) == SL_OK) {
                o->caller_routed = varint_bool(&f);
            }
            break;
        default:
            break; /* unknown: skipped (protobuf-c keeps it aside, unused) */
        }
        if (rc != SL_OK) {
            return rc;
        }
    }
    SL_ASSERT(off == len);
    cu->where = "Request";
    return SL_OK;
}

int sl_pview_parse(const uint8_t *frame, size_t len, struct sl_pview *out, char *why,
                   size_t why_len)
{
    SL_ASSERT(frame != NULL || len == 0);
    SL_ASSERT(why != NULL && why_len > 0);
    memset(out, 0, sizeof(*out));
    why[0] = '\0';
    struct cursor cu = {.frame = frame, .where = "Request", .why = why, .why_len = why_len,
                        .out = out};
    bool produce = false;
    size_t off = 0;
    while (off < len) {
        struct field f;
        size_t used = scan_field(&cu, frame + off, len - off, &f);
        if (used == 0) {
            return SL_EPROTO;
        }
        off += used;
        int rc = SL_OK;
        if (f.num == REQ_ID) {
            if ((rc = want(&cu, &f, WT_VARINT, "id")) == SL_OK) {
                out->id = varint_u64(&f);
            }
        } else if (f.num == REQ_PRODUCE) {
            if ((rc = want(&cu, &f, WT_LEN, "produce")) == SL_OK) {
                rc = parse_produce(&cu, f.val, f.val_len);
                produce = true;
            }
        } else {
            return SL_ENOTFOUND; /* another body or an unknown field: protobuf-c's */
        }
        if (rc != SL_OK) {
            return rc;
        }
    }
    SL_ASSERT(off == len);
    SL_ASSERT(out->fault == SL_PVIEW_OK);
    return produce ? SL_OK : SL_ENOTFOUND;
}
