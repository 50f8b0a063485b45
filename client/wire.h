/* wire.h - the byte stream between the client and one broker connection: a
 * connected socket, plaintext or TLS (common/tls over memory buffers).
 *
 * Internal to libsluice (conn.c). Threads: one writer at a time (conn.c's
 * send_mu) and one reader (the I/O thread, or the connecting thread before
 * the I/O thread owns the connection) may use a wire at once; the TLS
 * session between them is serialised by the wire's own lock, held only
 * around session calls, never across socket I/O.
 *
 * Lifetime: reference-counted. The client holds one reference while the
 * connection is current, the reader one while it reads; the socket is
 * closed and the session freed with the last, so a reconnect never closes a
 * descriptor (or frees a session) the reader is still using.
 */
#ifndef SL_CLIENT_WIRE_H
#define SL_CLIENT_WIRE_H

#include "common/tls.h"

#include <stddef.h>
#include <stdint.h>

struct sl_wire;

/* Takes the connected, blocking socket `fd`; with `tls` (borrowed; NULL:
 * plaintext) runs the handshake before `deadline_ms`, verifying the broker's
 * certificate against `server_name`. One reference. Errors: SL_ECLOSED
 * (handshake failed, with the reason in `why`: "certificate verify failed:
 * unable to get local issuer certificate"), SL_ENOMEM. `fd` is closed on error. */
int sl_wire_new(int fd, struct sl_tls_ctx *tls, const char *server_name, uint64_t deadline_ms,
                struct sl_wire **out, char *why, size_t why_len);
void sl_wire_ref(struct sl_wire *w);
void sl_wire_unref(struct sl_wire *w); /* NULL-safe */
/* Shuts the socket down: a blocked reader or writer returns. */
void sl_wire_shutdown(struct sl_wire *w);
/* Writes all of `len` bytes (blocking). Errors: SL_ECLOSED (reason in `why`). */
int sl_wire_write(struct sl_wire *w, const void *data, size_t len, char *why, size_t why_len);
/* Waits up to `timeout_ms` for bytes and reads some into `buf`. SL_OK with
 * *got (0: nothing yet); SL_ECLOSED: the broker closed or the session
 * failed (reason in `why`). */
int sl_wire_read(struct sl_wire *w, void *buf, size_t cap, uint32_t timeout_ms, size_t *got,
                 char *why, size_t why_len);

#endif
