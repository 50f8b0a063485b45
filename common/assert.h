/* assert.h - SL_ASSERT: an assertion that stays on in release builds.
 *
 * Use it for programmer errors and invariants only; never for bytes that came
 * from the network or the disk (those return SL_EPROTO / SL_ECORRUPT).
 */
#ifndef SL_ASSERT_H
#define SL_ASSERT_H

_Noreturn void sl_assert_fail(const char *expr, const char *file, int line, const char *func);

#define SL_ASSERT(expr)                                                                            \
    ((expr) ? (void)0 : sl_assert_fail(#expr, __FILE__, __LINE__, __func__))

#endif
