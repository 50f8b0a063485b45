/* ui.h - the web console's static files (ui/ in the source tree), embedded
 * in sluiced at build time (cmake/embed_ui.cmake) and served under /ui/
 * with revalidation (ETag) and a strict Content-Security-Policy: the pages
 * load nothing but themselves and talk only to /api/v1 (rest.c).
 *
 * Threading: the main loop.
 */
#ifndef SL_API_UI_H
#define SL_API_UI_H

#include "broker/api/call.h"

#include <stddef.h>

struct sl_ui_asset {
    const char *path;         /* "/ui/app.js" */
    const char *content_type; /* with charset */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted */
};

/* Generated (ui_assets.c). */
extern const struct sl_ui_asset sl_ui_assets[];
extern const unsigned sl_ui_asset_count;

/* Answers GET/HEAD `path` (without the query) below /ui: /ui and /ui/
 * redirect or serve index.html; an unknown file is 404. */
void sl_ui_handle(struct sl_api_call *call, const char *path);

#endif
