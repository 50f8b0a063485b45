/* ui.c - serves the embedded web console (see ui.h). */
#include "broker/api/ui.h"

#include <string.h>

/* The console loads only its own files and calls only its own origin; no
 * inline script or style, so a record rendered by mistake as markup still
 * cannot run. */
#define UI_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "            \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

#define HDR(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static const struct sl_ui_asset *find(const char *path)
{
    if (strcmp(path, "/ui/") == 0) {
        path = "/ui/index.html";
    }
    for (unsigned i = 0; i < sl_ui_asset_count; i++) {
        if (strcmp(sl_ui_assets[i].path, path) == 0) {
            return &sl_ui_assets[i];
        }
    }
    return NULL;
}

void sl_ui_handle(struct sl_api_call *call, const char *path)
{
    if (strcmp(path, "/ui") == 0) {
        struct sl_http_header h[] = {HDR("location", "/ui/")};
        sl_api_reply_headers(call, 308, "text/plain; charset=utf-8", h, 1, "", 0);
        return;
    }
    const struct sl_ui_asset *a = find(path);
    if (a == NULL) {
        static const char msg[] = "no such file in the console; start at /ui/\n";
        sl_api_reply(call, 404, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
        return;
    }
    /* no-cache: the browser keeps the file but asks each time; the ETag
     * makes that a 304 until the broker is upgraded. */
    struct sl_http_header h[] = {
        HDR("cache-control", "no-cache"),
        {"etag", 4, a->etag, (uint32_t)strlen(a->etag)},
        HDR("content-security-policy", UI_CSP),
        HDR("x-content-type-options", "nosniff"),
        HDR("x-frame-options", "DENY"),
        HDR("referrer-policy", "no-referrer"),
    };
    const char *inm = call->req != NULL ? sl_api_header(call->req, "if-none-match") : NULL;
    if (inm != NULL && strstr(inm, a->etag) != NULL) {
        sl_api_reply_headers(call, 304, a->content_type, h, sizeof(h) / sizeof(h[0]), "", 0);
        return;
    }
    sl_api_reply_headers(call, 200, a->content_type, h, sizeof(h) / sizeof(h[0]), a->data,
                         a->len);
}
