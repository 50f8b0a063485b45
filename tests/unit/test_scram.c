/* test_scram.c - common/scram: SCRAM-SHA-256.
 *
 * Covers: the RFC 7677 example exchange computed by our client (byte for byte) and its
 * server signature accepted; client and server together (right password, wrong password,
 * unknown user: the same EAUTH, and an unknown user's salt stable per name); credentials'
 * text form round trip and malformed forms refused; malformed and out-of-order messages
 * refused (EPROTO, never a crash); a nonce the server did not extend refused by the client.
 */
#include "test.h"

#include "common/error.h"
#include "common/scram.h"

#include <string.h>

static struct sl_scram_cred alice;
static const uint8_t fake_key[SL_SCRAM_KEY_BYTES] = {7, 7, 7};

static bool lookup(void *ctx, const char *user, struct sl_scram_cred *cred)
{
    (void)ctx;
    if (strcmp(user, "alice") != 0) {
        return false;
    }
    *cred = alice;
    return true;
}

TEST(rfc7677_example)
{
    struct sl_scram_client c;
    char out[SL_SCRAM_MSG_MAX];
    CHECK(sl_scram_client_first(&c, "user", out, sizeof(out)) == SL_OK);
    /* the RFC's client nonce instead of a random one */
    strcpy(c.nonce, "rOprNGfwEbeRWgbNEkqO");
    strcpy(c.client_first_bare, "n=user,r=rOprNGfwEbeRWgbNEkqO");
    const char *sf = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    CHECK(sl_scram_client_final(&c, "pencil", 6, sf, strlen(sf), out, sizeof(out)) == SL_OK);
    CHECK(strcmp(out, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") == 0);
    const char *sfinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    CHECK(sl_scram_client_verify(&c, sfinal, strlen(sfinal)) == SL_OK);
    const char *forged = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    CHECK(sl_scram_client_verify(&c, forged, strlen(forged)) == SL_EPROTO);
}

/* One whole exchange; returns the server's verdict. */
static int exchange(const char *user, const char *password)
{
    struct sl_scram_client c;
    struct sl_scram_server s;
    char m1[SL_SCRAM_MSG_MAX], m2[SL_SCRAM_MSG_MAX], m3[SL_SCRAM_MSG_MAX], m4[SL_SCRAM_MSG_MAX];
    if (sl_scram_client_first(&c, user, m1, sizeof(m1)) != SL_OK ||
        sl_scram_server_first(&s, m1, strlen(m1), lookup, NULL, fake_key, m2, sizeof(m2)) !=
            SL_OK ||
        sl_scram_client_final(&c, password, strlen(password), m2, strlen(m2), m3, sizeof(m3)) !=
            SL_OK) {
        return -1;
    }
    int rc = sl_scram_server_final(&s, m3, strlen(m3), m4, sizeof(m4));
    if (rc == SL_OK && sl_scram_client_verify(&c, m4, strlen(m4)) != SL_OK) {
        return -2;
    }
    return rc;
}

TEST(client_and_server)
{
    CHECK(sl_scram_cred_make("s3cret!", 7, 4096, &alice) == SL_OK);
    CHECK_EQ(exchange("alice", "s3cret!"), SL_OK);
    CHECK_EQ(exchange("alice", "s3cret"), SL_EAUTH);
    CHECK_EQ(exchange("mallory", "s3cret!"), SL_EAUTH);
    /* an unknown user's salt does not change between attempts */
    struct sl_scram_server s1, s2;
    char out1[SL_SCRAM_MSG_MAX], out2[SL_SCRAM_MSG_MAX];
    const char *m = "n,,n=mallory,r=abc";
    CHECK(sl_scram_server_first(&s1, m, strlen(m), lookup, NULL, fake_key, out1, 512) == SL_OK);
    CHECK(sl_scram_server_first(&s2, m, strlen(m), lookup, NULL, fake_key, out2, 512) == SL_OK);
    CHECK(strcmp(strstr(out1, ",s="), strstr(out2, ",s=")) == 0);
}

TEST(cred_text_round_trip)
{
    struct sl_scram_cred a, b;
    char text[SL_SCRAM_CRED_TEXT_MAX];
    CHECK(sl_scram_cred_make("pw", 2, 5000, &a) == SL_OK);
    sl_scram_cred_format(&a, text, sizeof(text));
    CHECK(strncmp(text, "SCRAM-SHA-256$5000:", 19) == 0);
    CHECK(sl_scram_cred_parse(text, &b) == SL_OK);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    CHECK(sl_scram_cred_parse("SCRAM-SHA-256$100:AAAA$AAAA:AAAA", &b) == SL_EINVAL);
    CHECK(sl_scram_cred_parse("SCRAM-SHA-1$4096:AAAA$AAAA:AAAA", &b) == SL_EINVAL);
    CHECK(sl_scram_cred_parse("SCRAM-SHA-256$4096:", &b) == SL_EINVAL);
    CHECK(sl_scram_cred_parse("", &b) == SL_EINVAL);
    CHECK(sl_scram_cred_make("pw", 2, 10, &a) == SL_EINVAL);
}

TEST(plain_password_check)
{
    struct sl_scram_cred a;
    CHECK(sl_scram_cred_make("s3cret\0x", 8, 4096, &a) == SL_OK);
    CHECK(sl_scram_cred_check(&a, "s3cret\0x", 8));
    CHECK(!sl_scram_cred_check(&a, "s3cret", 6));   /* the bytes after a NUL count */
    CHECK(!sl_scram_cred_check(&a, "s3cret\0y", 8));
    CHECK(!sl_scram_cred_check(&a, "", 0));
}

TEST(malformed_messages_refused)
{
    struct sl_scram_server s;
    char out[SL_SCRAM_MSG_MAX];
    const char *bad[] = {"", "n,", "p=tls-unique,,n=alice,r=x", "n,,n=alice", "n,,r=x,n=alice",
                         "n,,n=al,ice,r=x", "n,,n=alice,r=x,e=ext", "n,,n=,r=x", "n,,n=a b,r=x",
                         "n,,n=alice,r="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(sl_scram_server_first(&s, bad[i], strlen(bad[i]), lookup, NULL, fake_key, out,
                                    sizeof(out)) == SL_EPROTO);
    }
    /* final before first, final with another nonce, a proof of the wrong size */
    memset(&s, 0, sizeof(s));
    CHECK(sl_scram_server_final(&s, "c=biws,r=x,p=AAAA", 17, out, sizeof(out)) == SL_EPROTO);
    const char *m = "n,,n=alice,r=abc";
    CHECK(sl_scram_server_first(&s, m, strlen(m), lookup, NULL, fake_key, out, 512) == SL_OK);
    CHECK(sl_scram_server_final(&s, "c=biws,r=abc,p=AAAA", 19, out, sizeof(out)) == SL_EPROTO);
    char big[2 * SL_SCRAM_MSG_MAX];
    memset(big, 'a', sizeof(big));
    CHECK(sl_scram_server_first(&s, big, sizeof(big), lookup, NULL, fake_key, out, 512) ==
          SL_EPROTO);
    /* the client refuses a server nonce that does not extend its own */
    struct sl_scram_client c;
    CHECK(sl_scram_client_first(&c, "alice", out, sizeof(out)) == SL_OK);
    const char *sf = "r=zzzzzzzzzzzzzzzzzzzzzzzzzzzz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    CHECK(sl_scram_client_final(&c, "pw", 2, sf, strlen(sf), out, sizeof(out)) == SL_EPROTO);
    CHECK(sl_scram_client_first(&c, "bad name", out, sizeof(out)) == SL_EINVAL);
}

int main(void)
{
    RUN(rfc7677_example);
    RUN(client_and_server);
    RUN(cred_text_round_trip);
    RUN(plain_password_check);
    RUN(malformed_messages_refused);
    TEST_END();
}
