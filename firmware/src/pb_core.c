/* pb_core.c - Cortex-M7 L1 cache start-up (see pb_core.h). */
#include "pb_core.h"

#include "pb_regs.h"

static inline void barriers(void)
{
    __asm volatile("dsb 0xF\n\tisb 0xF" ::: "memory");
}

uint32_t pb_core_is_cortex_m7(void)
{
    return SCB_CPUID_PARTNO(SCB_CPUID) == SCB_CPUID_PARTNO_M7 ? 1u : 0u;
}

static uint32_t log2_ceil(uint32_t v)
{
    uint32_t n = 0;
    while ((1u << n) < v) {
        n++;
    }
    return n;
}

static void icache_enable(void)
{
    if ((SCB_CCR & SCB_CCR_IC) != 0u) {
        return;
    }
    barriers();
    SCB_ICIALLU = 0u;
    barriers();
    SCB_CCR |= SCB_CCR_IC;
    barriers(); /* later fetches see the cache on */
}

static void dcache_enable(void)
{
    if ((SCB_CCR & SCB_CCR_DC) != 0u) {
        return;
    }
    SCB_CSSELR = SCB_CSSELR_L1_DATA;
    barriers();
    const uint32_t ccsidr = SCB_CCSIDR;
    const uint32_t sets = CCSIDR_SETS(ccsidr), ways = CCSIDR_WAYS(ccsidr);
    const uint32_t set_shift = CCSIDR_LINE_WORDS_LOG2(ccsidr) + 2u; /* log2(bytes per line) */
    const uint32_t way_shift = 32u - log2_ceil(ways);               /* way in the top bits */
    for (uint32_t way = 0; way < ways; way++) {
        for (uint32_t set = 0; set < sets; set++) {
            SCB_DCISW = (ways > 1u ? way << way_shift : 0u) | (set << set_shift);
        }
    }
    barriers();
    SCB_CCR |= SCB_CCR_DC;
    barriers();
}

void pb_core_enable_caches(void)
{
    if (!pb_core_is_cortex_m7()) {
        return;
    }
    icache_enable();
    dcache_enable();
}
