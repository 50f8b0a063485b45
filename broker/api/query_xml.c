/* query_xml.c - the AWS Query protocol's XML answers (see query_xml.h). */
#include "broker/api/query_xml.h"

#include <stdlib.h>
#include <string.h>

static bool put(char **out, size_t *len, size_t *cap, const char *s, bool escape)
{
    size_t n = strlen(s);
    if (*cap - *len < n * 6 + 1) { /* worst case: every byte escaped as &quot; */
        size_t ncap = *cap > 0 ? *cap : 1024;
        while (ncap - *len < n * 6 + 1) {
            ncap *= 2;
        }
        char *p = realloc(*out, ncap);
        if (p == NULL) {
            return false;
        }
        *out = p;
        *cap = ncap;
    }
    char *d = *out + *len;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (escape ? s[i] : 0) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\r':
            rep = "&#xD;";
            break;
        default:
            break;
        }
        if (rep != NULL) {
            size_t k = strlen(rep);
            memcpy(d, rep, k);
            d += k;
        } else {
            *d++ = s[i];
        }
    }
    *d = '\0';
    *len = (size_t)(d - *out);
    return true;
}

void sl_query_xml_put(struct sl_query_xml *x, const char *s, bool escape)
{
    x->failed = x->failed || !put(&x->p, &x->len, &x->cap, s, escape);
}

void sl_query_xml_open(struct sl_query_xml *x, const char *name)
{
    sl_query_xml_put(x, "<", false);
    sl_query_xml_put(x, name, false);
    sl_query_xml_put(x, ">", false);
}

void sl_query_xml_close(struct sl_query_xml *x, const char *name)
{
    sl_query_xml_put(x, "</", false);
    sl_query_xml_put(x, name, false);
    sl_query_xml_put(x, ">", false);
}

void sl_query_xml_leaf(struct sl_query_xml *x, const char *name, const char *text)
{
    sl_query_xml_open(x, name);
    sl_query_xml_put(x, text, true);
    sl_query_xml_close(x, name);
}

void sl_query_xml_begin(struct sl_query_xml *x, const char *ns, const char *op, bool result)
{
    sl_query_xml_put(x, "<?xml version=\"1.0\"?>\n<", false);
    sl_query_xml_put(x, op, false);
    sl_query_xml_put(x, "Response xmlns=\"", false);
    sl_query_xml_put(x, ns, true);
    sl_query_xml_put(x, "\">", false);
    if (result) {
        sl_query_xml_put(x, "<", false);
        sl_query_xml_put(x, op, false);
        sl_query_xml_put(x, "Result>", false);
    }
}

static char *finish(struct sl_query_xml *x)
{
    if (x->failed) {
        free(x->p);
        x->p = NULL;
        return NULL;
    }
    char *p = x->p;
    x->p = NULL;
    return p;
}

char *sl_query_xml_end(struct sl_query_xml *x, const char *op, bool result, const char *request_id)
{
    if (result) {
        sl_query_xml_put(x, "</", false);
        sl_query_xml_put(x, op, false);
        sl_query_xml_put(x, "Result>", false);
    }
    sl_query_xml_put(x, "<ResponseMetadata><RequestId>", false);
    sl_query_xml_put(x, request_id, true);
    sl_query_xml_put(x, "</RequestId></ResponseMetadata></", false);
    sl_query_xml_put(x, op, false);
    sl_query_xml_put(x, "Response>\n", false);
    return finish(x);
}

char *sl_query_xml_error(const char *ns, const char *code, bool sender, const char *message,
                         bool detail, const char *request_id)
{
    struct sl_query_xml x = {0};
    sl_query_xml_put(&x, "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"", false);
    sl_query_xml_put(&x, ns, true);
    sl_query_xml_put(&x, "\"><Error><Type>", false);
    sl_query_xml_put(&x, sender ? "Sender" : "Receiver", false);
    sl_query_xml_put(&x, "</Type><Code>", false);
    sl_query_xml_put(&x, code, true);
    sl_query_xml_put(&x, "</Code><Message>", false);
    sl_query_xml_put(&x, message, true);
    sl_query_xml_put(
        &x, detail ? "</Message><Detail/></Error><RequestId>" : "</Message></Error><RequestId>",
        false);
    sl_query_xml_put(&x, request_id, true);
    sl_query_xml_put(&x, "</RequestId></ErrorResponse>\n", false);
    return finish(&x);
}
