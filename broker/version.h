/* version.h - the broker's version, as Hello and /metrics report it. */
#ifndef SL_BROKER_VERSION_H
#define SL_BROKER_VERSION_H

#define SL_BROKER_VERSION "0.1.0"

#endif
