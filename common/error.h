/* error.h - the one error enum of Sluice.
 *
 * Every fallible function returns `int` holding one of these (SL_OK == 0) and
 * passes results through out-parameters. The values are stable: they travel on
 * the wire (the protocol's error code) and in logs, so never renumber one.
 */
#ifndef SL_ERROR_H
#define SL_ERROR_H

enum sl_err {
    SL_OK = 0,
    SL_EAGAIN = 1,       /* try again later: a bounded buffer or queue is full */
    SL_ECORRUPT = 2,     /* checksum or structure mismatch in stored or received bytes */
    SL_ENOSPC = 3,       /* the disk is full; appends refused, reads keep working */
    SL_EPROTO = 4,       /* malformed input from a peer (bad magic, bad length, ...) */
    SL_ETOOBIG = 5,      /* an input exceeds a size limit */
    SL_ELIMIT = 6,       /* a configured count limit was reached */
    SL_ENOTFOUND = 7,    /* no such stream, shard, segment, record */
    SL_ETRIMMED = 8,     /* asked below the oldest retained sequence */
    SL_EFATAL = 9,       /* the object stopped accepting writes (e.g. after a failed fsync) */
    SL_EIO = 10,         /* an I/O error from the OS (errno kept in the log) */
    SL_EINVAL = 11,      /* an invalid argument from the caller */
    SL_ENOMEM = 12,      /* allocation failed */
    SL_EEXIST = 13,      /* already exists */
    SL_ECLOSED = 14,     /* the object is closing or closed */
    SL_EUNSUPPORTED = 15,/* the kernel or build lacks a needed feature */
    SL_ESYS = 16,        /* another OS error (errno kept in the log) */
    SL_EAUTH = 17,       /* authentication required, or it failed */
    SL_EDENIED = 18,     /* the authenticated principal lacks the right (ACL) */
    SL_EFENCED = 19,     /* a group member acted on what it no longer holds (rejoin) */
    SL_ESHARD_CLOSED = 20, /* the shard was split or merged: append to its children */
    SL_ECONFLICT = 21,   /* a versioned write lost a race: read again, then retry */
    SL_ENOT_LEADER = 22, /* this broker does not lead the shard: refresh metadata */
    SL_ENOT_ENOUGH_REPLICAS = 23, /* fewer in-sync replicas than min_insync_replicas */
    SL_ERR_COUNT_
};

/* Returns a static, human-readable message for `err`; never NULL. */
const char *sl_strerror(int err);

/* Returns the stable symbolic name ("SL_ENOSPC") for `err`; never NULL. */
const char *sl_errname(int err);

/* Maps an errno value (positive) onto the enum: ENOSPC/EDQUOT -> SL_ENOSPC,
 * EIO -> SL_EIO, ENOMEM -> SL_ENOMEM, ENOENT -> SL_ENOTFOUND, EEXIST ->
 * SL_EEXIST, EINVAL -> SL_EINVAL, EAGAIN -> SL_EAGAIN, ENOSYS/EOPNOTSUPP ->
 * SL_EUNSUPPORTED, EMFILE/ENFILE -> SL_ELIMIT (out of descriptors: a limit,
 * named to the user by sl_nofile_why), 0 -> SL_OK, others -> SL_ESYS. */
int sl_err_from_errno(int errnum);

#endif
