/* output.h - how `sluice` writes: broker errors on stderr, JSON documents and lines on
 * stdout, times and positions as text. */
#ifndef SL_CLI_OUTPUT_H
#define SL_CLI_OUTPUT_H

#include "client/sluice.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

/* Prints "sluice: WHAT: <the library's last error> (ERRNAME)" on stderr; returns
 * CLI_EXIT_ERR. */
int cli_broker_error(const char *what, int rc);

/* Writes `j` (borrowed) compactly on one stdout line. */
void cli_print_json(json_t *j);

/* obj[name] = the bytes as a JSON string, or obj[name + "_base64"] when not UTF-8. */
void cli_json_set_bytes(json_t *obj, const char *name, const uint8_t *p, size_t n);

/* The attributes as a JSON object (a value that is not UTF-8 becomes null); returns owned. */
json_t *cli_json_attrs(const struct sluice_attr *attrs, uint32_t count);

/* Unix milliseconds as "2026-12-04T18:40:03.123Z" in `buf`; returns buf. */
const char *cli_fmt_time(uint64_t ms, char *buf, size_t cap);

/* A position as the text --from takes ("oldest", "time:...", "seq:N"); returns buf or a
 * literal. */
const char *cli_fmt_position(const struct sluice_position *p, char *buf, size_t cap);

#endif
