/* native.h - the native protocol on a network listener (broker/net): length-
 * prefixed protobuf frames (docs/PROTOCOL.md) cut, unpacked and dispatched
 * to the handlers.
 *
 * Bad input: a frame longer than max_frame_bytes cannot be skipped safely,
 * so the broker answers with EPROTO/ETOOBIG (request id 0) and closes once
 * that is sent; an undecodable frame of legal length gets EPROTO and the
 * connection continues. Other connections are never affected.
 *
 * Threading: the main loop; proto->split (native_split) also on the loop
 * serving a connection when connections are spread (conn_workers).
 */
#ifndef SL_NATIVE_H
#define SL_NATIVE_H

#include "broker/net/net.h"

/* The listener's protocol; its ctx is a struct sl_native (handlers.h). */
extern const struct sl_proto sl_native_proto;

#endif
