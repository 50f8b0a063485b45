/* test_log.c - common/log: the line formats and JSON string escaping.
 *
 * Covers: sl_log_json_escape on quotes, backslashes, every control character, DEL, valid
 * UTF-8 of every length (kept as is), invalid UTF-8 (stray continuation bytes, overlong
 * forms, surrogates, past U+10FFFF, truncated sequences, 0xFF) as one \ufffd per byte, and
 * truncation that never splits an escape or a character; whole JSON lines written to
 * stderr parse (jansson) back to the message, level, subsystem and an RFC 3339 UTC time;
 * text lines carry a timestamp, or the syslog priority when stderr is the journal
 * (JOURNAL_STREAM naming stderr's device:inode) and not when it names another file.
 */
#include "test.h"

#include "common/log.h"

#include <jansson.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char buf[8192];

static const char *esc(const char *in, size_t len)
{
    sl_log_json_escape(buf, sizeof(buf), in, len);
    return buf;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

TEST(escape_quotes_backslashes_controls)
{
    CHECK(strcmp(ESC("plain text 123"), "plain text 123") == 0);
    CHECK(strcmp(ESC("say \"hi\" \\ bye"), "say \\\"hi\\\" \\\\ bye") == 0);
    CHECK(strcmp(ESC("a\nb\rc\td\be\ff"), "a\\nb\\rc\\td\\be\\ff") == 0);
    CHECK(strcmp(ESC("\x01\x1f\x7f"), "\\u0001\\u001f\\u007f") == 0);
    CHECK(strcmp(ESC("nul\0byte"), "nul\\u0000byte") == 0);
    /* every control character comes out as printable ASCII */
    for (int c = 0; c < 0x20; c++) {
        char in[1] = {(char)c};
        esc(in, 1);
        CHECK(buf[0] == '\\' && strlen(buf) >= 2);
        for (const char *p = buf; *p != '\0'; p++) {
            CHECK(*p >= 0x20 && *p < 0x7f);
        }
    }
}

TEST(escape_valid_utf8_kept)
{
    /* é (2 bytes), € (3), U+FFFD itself (3), 😀 (4), U+10FFFF (4), U+E000 (after the
     * surrogates) */
    const char *s = "caf\xc3\xa9 \xe2\x82\xac \xef\xbf\xbd \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf "
                    "\xee\x80\x80";
    CHECK(strcmp(esc(s, strlen(s)), s) == 0);
}

TEST(escape_invalid_utf8_replaced)
{
    CHECK(strcmp(ESC("a\x80z"), "a\\ufffdz") == 0);                   /* stray continuation */
    CHECK(strcmp(ESC("\xc0\xaf"), "\\ufffd\\ufffd") == 0);            /* overlong '/' */
    CHECK(strcmp(ESC("\xe0\x80\xaf"), "\\ufffd\\ufffd\\ufffd") == 0); /* overlong, 3 bytes */
    CHECK(strcmp(ESC("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd") == 0); /* surrogate D800 */
    CHECK(strcmp(ESC("\xf4\x90\x80\x80"), "\\ufffd\\ufffd\\ufffd\\ufffd") == 0); /* >10FFFF */
    CHECK(strcmp(ESC("\xff\xfe"), "\\ufffd\\ufffd") == 0);
    CHECK(strcmp(ESC("end\xe2\x82"), "end\\ufffd\\ufffd") == 0); /* truncated sequence */
    CHECK(strcmp(ESC("\xe2\x82x"), "\\ufffd\\ufffdx") == 0);     /* interrupted sequence */
}

TEST(escape_truncates_whole_pieces)
{
    char out[8];
    /* "ab" then an escape of 6 bytes that does not fit in the 5 left (7 + NUL) */
    CHECK_EQ(sl_log_json_escape(out, sizeof(out), "ab\x01", 3), 2);
    CHECK(strcmp(out, "ab") == 0);
    /* a 4-byte character is never split */
    CHECK_EQ(sl_log_json_escape(out, sizeof(out), "abcd\xf0\x9f\x98\x80", 8), 4);
    CHECK(strcmp(out, "abcd") == 0);
    CHECK_EQ(sl_log_json_escape(out, 1, "abc", 3), 0);
    CHECK(out[0] == '\0');
}

/* Runs `fn` with stderr sent to a temporary file; returns the file's text in `out`. */
static int capture(void (*fn)(void), char *out, size_t cap, int as_journal)
{
    char path[] = "/tmp/sluice-test-log-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    struct stat st;
    fstat(fd, &st);
    char js[64];
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (as_journal ? 0u : 1u));
    setenv("JOURNAL_STREAM", js, 1);
    fn();
    unsetenv("JOURNAL_STREAM");
    dup2(saved, STDERR_FILENO);
    close(saved);
    sl_log_set_format(SL_LOG_TEXT); /* and forget the journal */
    ssize_t n = pread(fd, out, cap - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? 0 : -1;
}

static void log_json(void)
{
    sl_log_set_format(SL_LOG_JSON);
    sl_warn("storage", "shard %s/%u: \"bad\" \x01 bytes \xff\xc3\xa9\n done", "s", 3u);
}

TEST(json_line_parses_back)
{
    char text[4096];
    CHECK(capture(log_json, text, sizeof(text), 0) == 0);
    size_t len = strlen(text);
    CHECK(len > 0 && text[len - 1] == '\n');
    CHECK(strchr(text, '\n') == text + len - 1); /* one line */
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    CHECK(obj != NULL);
    const char *ts = json_string_value(json_object_get(obj, "ts"));
    const char *level = json_string_value(json_object_get(obj, "level"));
    const char *subsys = json_string_value(json_object_get(obj, "subsys"));
    const char *msg = json_string_value(json_object_get(obj, "msg"));
    int ok = ts != NULL && level != NULL && subsys != NULL && msg != NULL;
    ok = ok && strlen(ts) == 24 && ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z';
    ok = ok && strcmp(level, "warn") == 0 && strcmp(subsys, "storage") == 0;
    ok = ok && strcmp(msg, "shard s/3: \"bad\" \x01 bytes \xef\xbf\xbd\xc3\xa9\n done") == 0;
    json_decref(obj);
    CHECK(ok);
}

static void log_text(void)
{
    sl_log_set_format(SL_LOG_TEXT);
    sl_error("net", "conn %u: closed", 7u);
    sl_info("broker", "hello");
}

TEST(text_lines_and_the_journal_prefix)
{
    char text[4096];
    CHECK(capture(log_text, text, sizeof(text), 1) == 0);
    CHECK(strcmp(text, "<3>net: conn 7: closed\n<6>broker: hello\n") == 0);
    CHECK(capture(log_text, text, sizeof(text), 0) == 0); /* JOURNAL_STREAM names another file */
    CHECK(text[0] == '2' && text[10] == 'T' && text[23] == 'Z');
    CHECK(strstr(text, " ERROR net: conn 7: closed\n") != NULL);
    CHECK(strstr(text, " INFO  broker: hello\n") != NULL);
}

int main(void)
{
    RUN(escape_quotes_backslashes_controls);
    RUN(escape_valid_utf8_kept);
    RUN(escape_invalid_utf8_replaced);
    RUN(escape_truncates_whole_pieces);
    RUN(json_line_parses_back);
    RUN(text_lines_and_the_journal_prefix);
    TEST_END();
}
