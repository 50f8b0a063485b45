/* url.c - URLs shown to people (see url.h). */
#include "common/url.h"

#include "common/assert.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void sl_url_redact(const char *url, char *out, size_t cap)
{
    SL_ASSERT(url != NULL && out != NULL && cap > 0);
    const char *scheme = strstr(url, "://");
    const char *host = scheme != NULL ? scheme + 3 : url;
    size_t auth_len = strcspn(host, "/?#");
    const char *at = memrchr(host, '@', auth_len); /* browsers take the last */
    const char *after = at != NULL ? at + 1 : host; /* the host, without userinfo */
    size_t path_len = strcspn(host + auth_len, "?#");
    bool tail = host[auth_len + path_len] != '\0';
    snprintf(out, cap, "%.*s%s%.*s%s", (int)(host - url), url, at != NULL ? "***@" : "",
             (int)(host + auth_len + path_len - after), after, tail ? "?***" : "");
}
