/* statelog_int.h - what statelog.c and statelog_park.c share (private to
 * storage/statelog*.c). */
#ifndef SL_STATELOG_INT_H
#define SL_STATELOG_INT_H

#include "storage/statelog.h"

/* Before a store opens its files: parks least recently used idle stores of
 * `c` (may be NULL) until SL_STATELOG_FDS more fit in its budget. */
void statelog_cache_room(struct sl_statelog_cache *c);
/* Out of descriptors opening a file of `sl` (not yet parkable itself):
 * parks idle stores of its cache whatever the budget. Returns the
 * descriptors freed (0: no cache, or nothing idle). */
uint32_t statelog_cache_shed(struct sl_statelog *sl);
/* The store's files are open (end of the open): charges them to the cache
 * as its most recently used. */
void statelog_lru_use(struct sl_statelog *sl);
/* Leaves the cache (fini): uncharges the store. No-op when not in it. */
void statelog_lru_remove(struct sl_statelog *sl);
/* A batch completed and the store may be idle: while its cache is over
 * budget, asks for a trim at the end of the loop tick (the flush deferral),
 * outside any callback. */
void statelog_settle(struct sl_statelog *sl);
/* From the store's flush deferral when trim_due: parks least recently used
 * idle stores of its cache (this one too) while it is over budget. */
void statelog_cache_trim(struct sl_statelog *sl);

#endif
