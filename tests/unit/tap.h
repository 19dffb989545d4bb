/* A minimal TAP producer for unit tests, read by `prove`. Each test binary
 * prints "ok N - name" / "not ok N - name" lines and a plan at the end. */
#ifndef MG_TESTS_TAP_H
#define MG_TESTS_TAP_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

/* A deterministic generator (xorshift64) for randomized tests: every run
 * draws the same values, so a failure replays. A value below n. */
static uint64_t tap_rng = 0x9e3779b97f4a7c15ULL;

static inline uint32_t tap_rand(uint32_t n)
{
    tap_rng ^= tap_rng << 13;
    tap_rng ^= tap_rng >> 7;
    tap_rng ^= tap_rng << 17;
    return (uint32_t)(tap_rng % n);
}

#define TAP_OK(cond, ...)                                                                          \
    do {                                                                                           \
        bool tap_ok_ = (cond); /* once: cond may have side effects */                              \
        tap_n++;                                                                                   \
        if (tap_ok_) {                                                                             \
            printf("ok %d - ", tap_n);                                                             \
        } else {                                                                                   \
            tap_failed++;                                                                          \
            printf("not ok %d - ", tap_n);                                                         \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        if (!tap_ok_)                                                                              \
            printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
    } while (0)

#define TAP_IS_INT(got, want, ...)                                                                 \
    do {                                                                                           \
        long long tap_g_ = (long long)(got), tap_w_ = (long long)(want);                           \
        TAP_OK(tap_g_ == tap_w_, __VA_ARGS__);                                                     \
        if (tap_g_ != tap_w_)                                                                      \
            printf("#   got %lld, want %lld\n", tap_g_, tap_w_);                                   \
    } while (0)

#define TAP_IS_STR(got, want, ...)                                                                 \
    do {                                                                                           \
        const char *tap_g_ = (got), *tap_w_ = (want);                                              \
        int tap_eq_ = (tap_g_ && tap_w_) ? strcmp(tap_g_, tap_w_) == 0 : tap_g_ == tap_w_;         \
        TAP_OK(tap_eq_, __VA_ARGS__);                                                              \
        if (!tap_eq_)                                                                              \
            printf("#   got \"%s\", want \"%s\"\n", tap_g_ ? tap_g_ : "(null)",                    \
                   tap_w_ ? tap_w_ : "(null)");                                                    \
    } while (0)

/* A test that could not run here: counted and shown (prove prints stderr),
 * never silently dropped. */
#define TAP_SKIP(...)                                                                              \
    do {                                                                                           \
        tap_n++;                                                                                   \
        printf("ok %d # SKIP ", tap_n);                                                            \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
        fprintf(stderr, "# SKIP ");                                                                \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
    } while (0)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
