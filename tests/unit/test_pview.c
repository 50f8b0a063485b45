/* test_pview.c - the in-place Produce parser (broker/native/pview.c) on
 * hand-made frames: a packed Produce read without a copy (the view points
 * into the frame); fields in any order, repeated (last wins, a later
 * Produce replaces an earlier one) and unknown (skipped, every wire type);
 * varint edge cases read as protobuf-c reads them (a 10-byte shard, a
 * negative ack, a bool of many bytes); each kind of malformed frame refused
 * with its fault and a message naming it, and protobuf-c refusing the same;
 * every prefix of a frame agreeing with protobuf-c; other bodies left to
 * protobuf-c; and the .proto still matching what the parser assumes.
 */
#include "test.h"

#include "broker/native/pview.h"
#include "common/error.h"
#include "proto/frame.h"

#include <stdbool.h>
#include <stdint.h>

#define FRAME_MAX 4096u

struct buf {
    uint8_t b[FRAME_MAX];
    size_t n;
};

static void put(struct buf *f, const void *p, size_t n)
{
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void put_varint(struct buf *f, uint64_t v)
{
    while (v >= 0x80) {
        f->b[f->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    f->b[f->n++] = (uint8_t)v;
}

static void put_tag(struct buf *f, uint32_t num, uint32_t wt)
{
    put_varint(f, (uint64_t)num << 3 | wt);
}

static void put_len(struct buf *f, uint32_t num, const void *p, size_t n)
{
    put_tag(f, num, 2);
    put_varint(f, n);
    put(f, p, n);
}

/* A Produce body: stream, shard, ack, batch, in_order. */
static void produce_body(struct buf *p, const char *stream, uint32_t shard, uint32_t ack,
                         const char *batch, bool in_order)
{
    put_len(p, 1, stream, strlen(stream));
    put_tag(p, 2, 0);
    put_varint(p, shard);
    put_tag(p, 3, 0);
    put_varint(p, ack);
    put_len(p, 4, batch, strlen(batch));
    put_tag(p, 5, 0);
    put_varint(p, in_order);
}

static int parse(const struct buf *f, struct sl_pview *v)
{
    char why[256];
    return sl_pview_parse(f->b, f->n, v, why, sizeof(why));
}

/* The view and protobuf-c's unpack of the same frame agree. */
static bool same_as_protobuf_c(const struct buf *f, const struct sl_pview *v)
{
    sl_request *r = sl_request_unpack(f->b, f->n);
    if (r == NULL || r->body_case != SLUICE__V1__REQUEST__BODY_PRODUCE) {
        sl_request_free(r);
        return false;
    }
    const Sluice__V1__Produce *m = r->produce;
    bool ok = r->id == v->id && m->shard == v->shard && (int32_t)m->ack == v->ack &&
              m->in_order == v->in_order && m->trace == v->trace &&
              m->caller_routed == v->caller_routed && strlen(m->stream) == v->stream_len &&
              (v->stream_len == 0 || memcmp(m->stream, v->stream, v->stream_len) == 0) &&
              m->batch.len == v->batch_len &&
              (v->batch_len == 0 || memcmp(m->batch.data, v->batch, v->batch_len) == 0);
    sl_request_free(r);
    return ok;
}

TEST(packed_request_read_in_place)
{
    sl_request req = SLUICE__V1__REQUEST__INIT;
    Sluice__V1__Produce p = SLUICE__V1__PRODUCE__INIT;
    uint8_t batch[300];
    for (size_t i = 0; i < sizeof(batch); i++) {
        batch[i] = (uint8_t)(i * 7);
    }
    p.stream = "orders";
    p.shard = 3;
    p.ack = SLUICE__V1__ACK_MODE__ACK_WRITTEN;
    p.batch.data = batch;
    p.batch.len = sizeof(batch);
    p.in_order = true;
    p.trace = true;
    p.caller_routed = true;
    req.id = 1ull << 40;
    req.body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    req.produce = &p;
    struct buf f = {.n = sl_request_size(&req)};
    CHECK(f.n <= sizeof(f.b));
    sl_request_pack(&req, f.b);
    struct sl_pview v;
    CHECK_EQ(parse(&f, &v), SL_OK);
    CHECK_EQ(v.id, 1ull << 40);
    CHECK_EQ(v.shard, 3);
    CHECK_EQ(v.ack, SLUICE__V1__ACK_MODE__ACK_WRITTEN);
    CHECK(v.in_order);
    CHECK(v.trace);
    CHECK(v.caller_routed);
    CHECK(v.stream_len == 6 && memcmp(v.stream, "orders", 6) == 0);
    /* zero copy: the batch is the frame's own bytes */
    CHECK(v.batch > f.b && v.batch + v.batch_len <= f.b + f.n);
    CHECK(v.batch_len == sizeof(batch) && memcmp(v.batch, batch, sizeof(batch)) == 0);
    CHECK(same_as_protobuf_c(&f, &v));
}

TEST(fields_in_any_order_repeated_last_wins)
{
    struct buf p1 = {0}, p2 = {0}, f = {0};
    produce_body(&p1, "first", 1, 0, "aaaa", true);
    /* the second Produce sets only some fields: the rest are not merged from the first */
    put_tag(&p2, 2, 0);
    put_varint(&p2, 9);
    put_len(&p2, 4, "bb", 2);
    put_tag(&p2, 2, 0);
    put_varint(&p2, 10); /* a repeated scalar: the last one */
    put_len(&f, 15, p1.b, p1.n);
    put_tag(&f, 1, 0);
    put_varint(&f, 5);
    put_len(&f, 15, p2.b, p2.n);
    put_tag(&f, 1, 0);
    put_varint(&f, 6);
    struct sl_pview v;
    CHECK_EQ(parse(&f, &v), SL_OK);
    CHECK_EQ(v.id, 6);
    CHECK_EQ(v.shard, 10);
    CHECK_EQ(v.stream_len, 0);
    CHECK(!v.in_order);
    CHECK(v.batch_len == 2 && memcmp(v.batch, "bb", 2) == 0);
    CHECK(same_as_protobuf_c(&f, &v));
}

TEST(unknown_fields_skipped_every_wire_type)
{
    struct buf p = {0}, f = {0};
    put_tag(&p, 16, 0);
    put_varint(&p, UINT64_MAX);
    put_tag(&p, 17, 1);
    put(&p, "12345678", 8);
    put_len(&p, 18, "xyz", 3);
    put_tag(&p, 19, 5);
    put(&p, "1234", 4);
    put_tag(&p, 536870911, 0); /* the largest field number */
    put_varint(&p, 1);
    produce_body(&p, "s", 0, 2, "batch", false);
    p.b[p.n++] = 0x80; /* tag 0 in two bytes: protobuf-c takes it as an unknown field */
    p.b[p.n++] = 0x00;
    put_varint(&p, 7);
    put_len(&f, 15, p.b, p.n);
    struct sl_pview v;
    CHECK_EQ(parse(&f, &v), SL_OK);
    CHECK_EQ(v.ack, 2);
    CHECK(v.batch_len == 5 && memcmp(v.batch, "batch", 5) == 0);
    CHECK(same_as_protobuf_c(&f, &v));
}

TEST(varints_read_as_protobuf_c_reads_them)
{
    struct buf p = {0}, f = {0};
    put_len(&p, 1, "a\0b", 3); /* a C string ends at its NUL */
    put_tag(&p, 2, 0);
    put_varint(&p, (1ull << 32) + 5); /* uint32: the low 32 bits */
    put_tag(&p, 3, 0);
    put_varint(&p, (uint64_t)(int64_t)-1); /* an enum of 10 bytes: -1 */
    put_tag(&p, 5, 0);
    put(&p, "\x80\x80\x00", 3); /* bool: 0 spelled in 3 bytes */
    put_len(&f, 15, p.b, p.n);
    f.b[f.n++] = 0x08; /* id: 10 bytes, the 10th carrying bits past 64 */
    put(&f, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
    struct sl_pview v;
    CHECK_EQ(parse(&f, &v), SL_OK);
    CHECK_EQ(v.stream_len, 1);
    CHECK_EQ(v.shard, 5);
    CHECK_EQ(v.ack, -1);
    CHECK(!v.in_order);
    CHECK(v.id == UINT64_MAX);
    CHECK(v.batch == NULL && v.batch_len == 0);
    CHECK(same_as_protobuf_c(&f, &v));
}

/* A malformed frame: the fault expected, the message naming it, and
 * protobuf-c refusing the frame too (unless `pbc_takes`). */
static bool refused(const struct buf *f, enum sl_pview_fault fault, const char *word,
                    bool pbc_takes)
{
    struct sl_pview v;
    char why[256];
    int rc = sl_pview_parse(f->b, f->n, &v, why, sizeof(why));
    if (rc != SL_EPROTO || v.fault != fault || strstr(why, word) == NULL) {
        fprintf(stderr, "  rc %d fault %d why '%s'\n", rc, (int)v.fault, why);
        return false;
    }
    sl_request *r = sl_request_unpack(f->b, f->n);
    bool pbc_ok = r != NULL;
    sl_request_free(r);
    return pbc_ok == pbc_takes;
}

TEST(malformed_refused_with_the_cause)
{
    struct buf f = {0};
    put_tag(&f, 1, 0);
    put(&f, "\xff\xff", 2); /* varint cut by the end */
    CHECK(refused(&f, SL_PVIEW_BAD_VARINT, "varint", false));

    f.n = 0;
    put_tag(&f, 1, 0);
    put(&f, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11); /* 11 bytes */
    CHECK(refused(&f, SL_PVIEW_BAD_VARINT, "10 bytes", false));

    f.n = 0;
    put_tag(&f, 15, 2);
    put_varint(&f, 100); /* a Produce longer than the frame */
    put(&f, "\x0a\x01x", 3);
    CHECK(refused(&f, SL_PVIEW_BAD_LENGTH, "past the end", false));

    f.n = 0;
    struct buf p = {0};
    put_tag(&p, 4, 2);
    put_varint(&p, 1000); /* a batch longer than its Produce, inside a frame that has it */
    put_len(&f, 15, p.b, p.n);
    put_tag(&f, 99, 2);
    put_varint(&f, 1000);
    memset(f.b + f.n, 'z', 1000);
    f.n += 1000;
    CHECK(refused(&f, SL_PVIEW_BAD_LENGTH, "field 4", false));

    f.n = 0;
    put_tag(&f, 15, 2);
    put(&f, "\x80\x80\x80\x80\x80\x01", 6); /* a length prefix of 6 bytes */
    CHECK(refused(&f, SL_PVIEW_BAD_LENGTH, "5 bytes", false));

    f.n = 0;
    put_tag(&f, 15, 2);
    put(&f, "\xff\xff\xff\xff\x0f", 5); /* 2^32-1: over 2^31-1 */
    CHECK(refused(&f, SL_PVIEW_BAD_LENGTH, "length", false));

    f.n = 0;
    p.n = 0;
    put_tag(&p, 4, 0); /* batch as a varint */
    put_varint(&p, 1);
    put_len(&f, 15, p.b, p.n);
    CHECK(refused(&f, SL_PVIEW_BAD_WIRE_TYPE, "batch sent with wire type 0", false));

    f.n = 0;
    put_tag(&f, 15, 0); /* the Produce itself as a varint */
    put_varint(&f, 1);
    CHECK(refused(&f, SL_PVIEW_BAD_WIRE_TYPE, "produce", false));

    f.n = 0;
    p.n = 0;
    put_len(&p, 5, "\x01", 1); /* in_order as bytes: protobuf-c takes any wire type */
    put_len(&f, 15, p.b, p.n);
    CHECK(refused(&f, SL_PVIEW_BAD_WIRE_TYPE, "in_order", true));

    f.n = 0;
    p.n = 0;
    put_len(&p, 6, "\x01", 1); /* trace as bytes: the same difference */
    put_len(&f, 15, p.b, p.n);
    CHECK(refused(&f, SL_PVIEW_BAD_WIRE_TYPE, "trace", true));

    f.n = 0;
    p.n = 0;
    put_tag(&p, 16, 3); /* a group, start and end */
    put_tag(&p, 16, 4);
    put_len(&f, 15, p.b, p.n);
    CHECK(refused(&f, SL_PVIEW_GROUP, "groups", false));

    f.n = 0;
    put_tag(&f, 15, 2);
    put_varint(&f, 2);
    put(&f, "\x07\x00", 2); /* tag 0 (field number 0, wire type 7) inside the Produce */
    CHECK(refused(&f, SL_PVIEW_BAD_TAG, "tag", false));

    f.n = 0;
    put_tag(&f, 15, 1); /* the Produce as a fixed64 */
    put(&f, "12345678", 8);
    CHECK(refused(&f, SL_PVIEW_BAD_WIRE_TYPE, "produce", false));
    f.n = 0;
    put_tag(&f, 15, 2);
    put_varint(&f, 5);
    put_tag(&f, 7, 1); /* inside: fixed64 with 4 bytes left */
    put(&f, "1234", 4);
    CHECK(refused(&f, SL_PVIEW_BAD_FIXED, "cut", false));

    f.n = 0;
    put(&f, "\x80\x80\x80\x80\x80\x01", 6); /* a tag of 6 bytes */
    CHECK(refused(&f, SL_PVIEW_BAD_TAG, "tag", false));
}

TEST(other_bodies_left_to_protobuf_c)
{
    struct sl_pview v;
    struct buf f = {0};
    CHECK_EQ(parse(&f, &v), SL_ENOTFOUND); /* empty: no body */
    put_tag(&f, 1, 0);
    put_varint(&f, 7);
    CHECK_EQ(parse(&f, &v), SL_ENOTFOUND); /* an id alone */
    struct buf p = {0};
    produce_body(&p, "s", 0, 0, "b", false);
    put_len(&f, 15, p.b, p.n);
    CHECK_EQ(parse(&f, &v), SL_OK);
    put_len(&f, 10, "\x08\x01", 2); /* then a Hello: the oneof's last member wins */
    CHECK_EQ(parse(&f, &v), SL_ENOTFOUND);
    sl_request *r = sl_request_unpack(f.b, f.n);
    CHECK(r != NULL && r->body_case == SLUICE__V1__REQUEST__BODY_HELLO);
    sl_request_free(r);
}

TEST(every_prefix_agrees_with_protobuf_c)
{
    struct buf p = {0}, full = {0};
    put_tag(&p, 16, 1);
    put(&p, "12345678", 8);
    produce_body(&p, "stream-name", 70000, 1, "some batch bytes", true);
    put_tag(&p, 6, 0); /* trace */
    put_varint(&p, 1);
    put_tag(&full, 1, 0);
    put_varint(&full, 123456789);
    put_len(&full, 15, p.b, p.n);
    for (size_t n = 0; n <= full.n; n++) {
        struct buf f = {.n = n};
        memcpy(f.b, full.b, n);
        struct sl_pview v;
        int rc = parse(&f, &v);
        sl_request *r = sl_request_unpack(f.b, f.n);
        if (rc == SL_OK) {
            CHECK(same_as_protobuf_c(&f, &v));
        } else if (rc == SL_EPROTO) {
            CHECK(r == NULL);
        } else {
            CHECK(r == NULL || r->body_case != SLUICE__V1__REQUEST__BODY_PRODUCE);
        }
        sl_request_free(r);
    }
}

/* The parser hard-codes these numbers and types: a change to sluice.proto
 * must change pview.c too. */
TEST(proto_matches_the_parser)
{
    const ProtobufCMessageDescriptor *d = &sluice__v1__produce__descriptor;
    static const struct {
        uint32_t id;
        ProtobufCType type;
    } want[] = {{1, PROTOBUF_C_TYPE_STRING}, {2, PROTOBUF_C_TYPE_UINT32},
                {3, PROTOBUF_C_TYPE_ENUM},   {4, PROTOBUF_C_TYPE_BYTES},
                {5, PROTOBUF_C_TYPE_BOOL},   {6, PROTOBUF_C_TYPE_BOOL},
                {7, PROTOBUF_C_TYPE_BOOL}};
    CHECK_EQ(d->n_fields, 7);
    for (size_t i = 0; i < 7; i++) {
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(d, want[i].id);
        CHECK(fd != NULL && fd->type == want[i].type && fd->label != PROTOBUF_C_LABEL_REPEATED);
    }
    const ProtobufCFieldDescriptor *id =
        protobuf_c_message_descriptor_get_field(&sluice__v1__request__descriptor, 1);
    const ProtobufCFieldDescriptor *pr =
        protobuf_c_message_descriptor_get_field(&sluice__v1__request__descriptor, 15);
    CHECK(id != NULL && id->type == PROTOBUF_C_TYPE_UINT64);
    CHECK(pr != NULL && pr->type == PROTOBUF_C_TYPE_MESSAGE &&
          pr->descriptor == &sluice__v1__produce__descriptor &&
          (pr->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0);
}

int main(void)
{
    RUN(packed_request_read_in_place);
    RUN(fields_in_any_order_repeated_last_wins);
    RUN(unknown_fields_skipped_every_wire_type);
    RUN(varints_read_as_protobuf_c_reads_them);
    RUN(malformed_refused_with_the_cause);
    RUN(other_bodies_left_to_protobuf_c);
    RUN(every_prefix_agrees_with_protobuf_c);
    RUN(proto_matches_the_parser);
    TEST_END();
}
