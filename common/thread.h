/* thread.h - starting the broker's helper threads. Every thread but the
 * main loop's takes no signal: SIGTERM/SIGINT go to the main loop's signalfd
 * (blocked there), and a thread that left them unblocked would die of them
 * (the default action) and take the process with it.
 */
#ifndef SL_THREAD_H
#define SL_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread. Errors:
 * SL_ENOMEM, SL_ESYS (from pthread_create's errno). */
int sl_thread_start(pthread_t *t, void *(*fn)(void *arg), void *arg);

#endif
