/*
 * pb_counter.c - a free-running 64-bit tick counter.
 *
 * PB_COUNTER_INSTRUCTIONS (QEMU): SysTick on the processor clock. QEMU derives SysTick
 * from virtual time, and with -icount each instruction advances virtual time by
 * 2**shift ns, so ticks convert to instructions exactly (Board.ticks_to_counter).
 * SysTick is only 24 bits, so its interrupt counts wraps to extend it to 64.
 *
 * PB_COUNTER_CYCLES (real boards): DWT CYCCNT counts core cycles but is 32 bits and
 * wraps after 2**32 cycles (268 s at 16 MHz). SysTick interrupts every 2**24 cycles
 * read it, so every wrap of CYCCNT is seen and the 64-bit value stays right however
 * long an inference runs.
 */
#include "pb_board.h"
#include "pb_core.h"
#include "pb_regs.h"

static uint32_t irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static void irq_restore(uint32_t primask)
{
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

#if PB_COUNTER_KIND == PB_COUNTER_INSTRUCTIONS

/* SysTick wraps seen so far: the upper bits of the 64-bit count. */
static volatile uint64_t systick_wraps;

void pb_counter_init(void)
{
    systick_wraps = 0u;
    SYST_CSR = 0u;
    SYST_RVR = SYST_RELOAD_MAX;
    SYST_CVR = 0u; /* any write clears the counter; it reloads on the next tick */
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

void SysTick_Handler(void)
{
    systick_wraps++;
}

uint64_t pb_counter_read(void)
{
    uint32_t primask = irq_save();
    uint64_t wraps = systick_wraps;
    uint32_t cvr = SYST_CVR;
    /* With interrupts off, a wrap between the last handler run and the CVR read shows
     * as a pending SysTick; a freshly reloaded (high) CVR then belongs to the next
     * period. A low CVR with the flag set means the wrap came after the read. */
    if ((SCB_ICSR & SCB_ICSR_PENDSTSET) != 0u && cvr > (SYST_RELOAD_MAX / 2u)) {
        wraps++;
    }
    irq_restore(primask);
    return wraps * ((uint64_t)SYST_RELOAD_MAX + 1u) + (SYST_RELOAD_MAX - cvr);
}

#elif PB_COUNTER_KIND == PB_COUNTER_CYCLES

static uint32_t cyccnt_high; /* CYCCNT wraps seen so far */
static uint32_t cyccnt_last; /* CYCCNT at the last read, to spot a wrap */

void pb_counter_init(void)
{
    DEMCR |= DEMCR_TRCENA;
    if (pb_core_is_cortex_m7()) {
        DWT_LAR = DWT_LAR_UNLOCK; /* the M7's DWT is locked after reset; the M4 has no such register */
    }
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    cyccnt_high = 0u;
    cyccnt_last = 0u;
    SYST_CSR = 0u;
    SYST_RVR = SYST_RELOAD_MAX;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

uint64_t pb_counter_read(void)
{
    uint32_t primask = irq_save();
    uint32_t now = DWT_CYCCNT;
    if (now < cyccnt_last) {
        cyccnt_high++;
    }
    cyccnt_last = now;
    uint64_t value = ((uint64_t)cyccnt_high << 32) | now;
    irq_restore(primask);
    return value;
}

void SysTick_Handler(void)
{
    (void)pb_counter_read();
}

#else
#error "PB_COUNTER_KIND must be PB_COUNTER_CYCLES or PB_COUNTER_INSTRUCTIONS"
#endif
