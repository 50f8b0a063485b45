/* convert.c - native protocol values <-> engine values shared by the
 * handlers. */
#include "broker/native/handlers.h"

struct sl_position sl_native_position(const Sluice__V1__Position *p)
{
    struct sl_position pos = {.kind = SL_POS_TRIM_HORIZON};
    if (p == NULL) {
        return pos;
    }
    pos.seq = p->seq;
    pos.time_ms = p->time_ms;
    switch (p->kind) {
    case SLUICE__V1__POSITION_KIND__TRIM_HORIZON:
        pos.kind = SL_POS_TRIM_HORIZON;
        break;
    case SLUICE__V1__POSITION_KIND__LATEST:
        pos.kind = SL_POS_LATEST;
        break;
    case SLUICE__V1__POSITION_KIND__AT_SEQUENCE:
        pos.kind = SL_POS_AT_SEQ;
        break;
    case SLUICE__V1__POSITION_KIND__AFTER_SEQUENCE:
        pos.kind = SL_POS_AFTER_SEQ;
        break;
    case SLUICE__V1__POSITION_KIND__AT_TIMESTAMP:
        pos.kind = SL_POS_AT_TIME;
        break;
    default:
        pos.kind = UINT32_MAX; /* refused by the engine: unknown position kind */
        break;
    }
    return pos;
}
