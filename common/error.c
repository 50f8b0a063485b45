/* error.c - messages and names for enum sl_err, and the errno mapping. */
#include "common/error.h"

#include <errno.h>

static const char *const messages[SL_ERR_COUNT_] = {
    [SL_OK] = "success",
    [SL_EAGAIN] = "resource temporarily unavailable, try again",
    [SL_ECORRUPT] = "data corrupt (checksum or structure mismatch)",
    [SL_ENOSPC] = "no space left on device",
    [SL_EPROTO] = "malformed input",
    [SL_ETOOBIG] = "input exceeds a size limit",
    [SL_ELIMIT] = "a configured limit was reached",
    [SL_ENOTFOUND] = "not found",
    [SL_ETRIMMED] = "position is below the oldest retained record",
    [SL_EFATAL] = "refusing writes after an unrecoverable I/O error",
    [SL_EIO] = "I/O error",
    [SL_EINVAL] = "invalid argument",
    [SL_ENOMEM] = "out of memory",
    [SL_EEXIST] = "already exists",
    [SL_ECLOSED] = "closed",
    [SL_EUNSUPPORTED] = "not supported by this kernel or build",
    [SL_ESYS] = "system error",
    [SL_EAUTH] = "authentication required or failed",
    [SL_EDENIED] = "permission denied",
    [SL_EFENCED] = "fenced: not the holder any more",
    [SL_ESHARD_CLOSED] = "the shard is closed (split or merged): write to its children",
    [SL_ECONFLICT] = "changed concurrently: read again and retry",
    [SL_ENOT_LEADER] = "this broker does not lead the shard: refresh metadata",
    [SL_ENOT_ENOUGH_REPLICAS] = "fewer in-sync replicas than min_insync_replicas",
};

static const char *const names[SL_ERR_COUNT_] = {
    [SL_OK] = "SL_OK",           [SL_EAGAIN] = "SL_EAGAIN",
    [SL_ECORRUPT] = "SL_ECORRUPT", [SL_ENOSPC] = "SL_ENOSPC",
    [SL_EPROTO] = "SL_EPROTO",   [SL_ETOOBIG] = "SL_ETOOBIG",
    [SL_ELIMIT] = "SL_ELIMIT",   [SL_ENOTFOUND] = "SL_ENOTFOUND",
    [SL_ETRIMMED] = "SL_ETRIMMED", [SL_EFATAL] = "SL_EFATAL",
    [SL_EIO] = "SL_EIO",         [SL_EINVAL] = "SL_EINVAL",
    [SL_ENOMEM] = "SL_ENOMEM",   [SL_EEXIST] = "SL_EEXIST",
    [SL_ECLOSED] = "SL_ECLOSED", [SL_EUNSUPPORTED] = "SL_EUNSUPPORTED",
    [SL_ESYS] = "SL_ESYS",       [SL_EAUTH] = "SL_EAUTH",
    [SL_EDENIED] = "SL_EDENIED",
    [SL_EFENCED] = "SL_EFENCED",
    [SL_ESHARD_CLOSED] = "SL_ESHARD_CLOSED",
    [SL_ECONFLICT] = "SL_ECONFLICT",
    [SL_ENOT_LEADER] = "SL_ENOT_LEADER",
    [SL_ENOT_ENOUGH_REPLICAS] = "SL_ENOT_ENOUGH_REPLICAS",
};

const char *sl_strerror(int err)
{
    if (err < 0 || err >= SL_ERR_COUNT_) {
        return "unknown error";
    }
    return messages[err];
}

const char *sl_errname(int err)
{
    if (err < 0 || err >= SL_ERR_COUNT_) {
        return "SL_E?";
    }
    return names[err];
}

int sl_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return SL_OK;
    case ENOSPC:
    case EDQUOT:
        return SL_ENOSPC;
    case EIO:
        return SL_EIO;
    case ENOMEM:
        return SL_ENOMEM;
    case ENOENT:
        return SL_ENOTFOUND;
    case EEXIST:
        return SL_EEXIST;
    case EINVAL:
        return SL_EINVAL;
    case EAGAIN:
        return SL_EAGAIN;
    case ENOSYS:
    case EOPNOTSUPP:
        return SL_EUNSUPPORTED;
    case EMFILE: /* the process's descriptor limit (RLIMIT_NOFILE) */
    case ENFILE: /* the system's (fs.file-max) */
        return SL_ELIMIT;
    default:
        return SL_ESYS;
    }
}
