/*
 * pb_core.h - what differs between the Cortex-M4 and Cortex-M7 cores pbkit runs on, found at
 * run time from CPUID (one firmware source for both; mps2.c serves an M4 and an M7 image).
 */
#ifndef PB_CORE_H
#define PB_CORE_H

#include <stdint.h>

/* 1 on a Cortex-M7 (CPUID.PARTNO 0xC27), 0 otherwise. */
uint32_t pb_core_is_cortex_m7(void);

/* Cortex-M7: invalidates, then enables, the L1 instruction and data caches, as the
 * architecture requires after reset (invalid lines must not be used; nothing is dirty yet,
 * so nothing needs cleaning). A cache already on is left alone: invalidating a live D-cache
 * would drop dirty lines. Call before the first timed code; no-op when a cache is absent. */
void pb_core_enable_caches(void);

#endif /* PB_CORE_H */
