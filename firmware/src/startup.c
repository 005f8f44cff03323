/*
 * startup.c - vector table and reset for every Cortex-M4/M7 board, in C.
 *
 * Only the 16 system exceptions are listed: the firmware polls its UART and never
 * enables a peripheral interrupt, so no IRQ vector can be taken.
 */
#include <stdint.h>

#include "pb_regs.h"

/* Symbols from ld/pb_sections.ld. */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];
extern uint32_t _estack[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);

/* Weak aliases: a board or counter may provide the real handler. */
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*pb_vector_t)(void);

/* One line per vector, the reserved slots together (left as written by clang-format). */
/* clang-format off */
__attribute__((section(".isr_vector"), used)) const pb_vector_t pb_vectors[16] = {
    (pb_vector_t)(uintptr_t)_estack, /* initial main stack pointer */
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,                      /* reserved */
    SVC_Handler,
    DebugMon_Handler,
    0,                               /* reserved */
    PendSV_Handler,
    SysTick_Handler,
};
/* clang-format on */

/* What a board must do before the first RAM access (the H743's AXI SRAM erratum); it runs
 * on the reset stack pointer alone, so it must not touch memory itself. Empty by default. */
void pb_board_early_init(void) __attribute__((weak, alias("pb_board_early_init_none")));
void pb_board_early_init_none(void);
void pb_board_early_init_none(void)
{
}

void pb_reset_c(void) __attribute__((noreturn, used));

/* Naked: no prologue, so the early hook runs before the first access to RAM (even the
 * stack push a C function would start with). */
__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm volatile("bl pb_board_early_init\n\tb pb_reset_c");
}

void pb_reset_c(void)
{
    /* C needs initialised .data (copied from its flash image) and a zeroed .bss
     * before main; nothing else runs before main (no libc start-up files). */
    uint32_t *src = _sidata;
    for (uint32_t *dst = _sdata; dst < _edata; dst++) {
        *dst = *src++;
    }
    for (uint32_t *dst = _sbss; dst < _ebss; dst++) {
        *dst = 0u;
    }
    (void)main();
    for (;;) {
    }
}

#define SCB_AIRCR             PB_REG32(0xE000ED0Cu)
#define SCB_AIRCR_SYSRESETREQ 0x05FA0004u /* VECTKEY + SYSRESETREQ */

/* Any fault resets the chip rather than hanging: the host sees a timeout for the
 * one request, and the board answers the next HELLO again. */
void Default_Handler(void)
{
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = SCB_AIRCR_SYSRESETREQ;
    __asm volatile("dsb" ::: "memory");
    for (;;) {
    }
}
