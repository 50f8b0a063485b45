/* errors.c - the public error codes (enum sluice_err, client/sluice.h) pinned to the
 * internal ones (enum sl_err, common/error.h).
 *
 * The library returns SL_E* values from its internals and the broker's wire codes as they
 * come; applications compare them with SLUICE_E*. The two enums are written separately so
 * that the installed header needs no internal one; these assertions make the build fail
 * the moment they drift (a code renumbered, added to one and not the other). The wire's
 * ErrorCode (proto/sluice.proto) is pinned to enum sl_err in proto/frame.c.
 */
#include "client/sluice.h"
#include "common/error.h"

#define SL_SAME(name)                                                                          \
    _Static_assert((int)SLUICE_##name == (int)SL_##name, "SLUICE_" #name " == SL_" #name)

SL_SAME(OK);
SL_SAME(EAGAIN);
SL_SAME(ECORRUPT);
SL_SAME(ENOSPC);
SL_SAME(EPROTO);
SL_SAME(ETOOBIG);
SL_SAME(ELIMIT);
SL_SAME(ENOTFOUND);
SL_SAME(ETRIMMED);
SL_SAME(EFATAL);
SL_SAME(EIO);
SL_SAME(EINVAL);
SL_SAME(ENOMEM);
SL_SAME(EEXIST);
SL_SAME(ECLOSED);
SL_SAME(EUNSUPPORTED);
SL_SAME(ESYS);
SL_SAME(EAUTH);
SL_SAME(EDENIED);
SL_SAME(EFENCED);
SL_SAME(ESHARD_CLOSED);
SL_SAME(ECONFLICT);
SL_SAME(ENOT_LEADER);
SL_SAME(ENOT_ENOUGH_REPLICAS);
/* The count: a code added to enum sl_err must be added (and documented) in sluice.h. */
_Static_assert((int)SLUICE_ENOT_ENOUGH_REPLICAS + 1 == (int)SL_ERR_COUNT_, "sluice.h lists every sl_err");
