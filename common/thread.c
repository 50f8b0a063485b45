/* thread.c - helper threads that take no signal (see thread.h). */
#include "common/thread.h"

#include "common/error.h"

#include <signal.h>

int sl_thread_start(pthread_t *t, void *(*fn)(void *arg), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the new thread */
    int e = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e == 0 ? SL_OK : sl_err_from_errno(e);
}
