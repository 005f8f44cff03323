/*
 * pb_board.h - what main.c needs from a board: bring-up, a byte pipe and a counter.
 *
 * Board facts come from pbkit/boards.py through -D flags set by the build (host/build.py
 * or PlatformIO's extra script), never from a table in C:
 *   PB_BOARD_NAME      string, e.g. "netduinoplus2"
 *   PB_CLOCK_HZ        core clock the counter runs at (reset clock on real boards)
 *   PB_COUNTER_KIND    PB_COUNTER_CYCLES (DWT CYCCNT) or PB_COUNTER_INSTRUCTIONS (QEMU
 *                      -icount + SysTick)
 *   PB_ICOUNT_SHIFT    the -icount shift QEMU is started with (0 on real boards)
 * The board's own .c file (src/boards/<name>.c) is picked by the build from the name.
 */
#ifndef PB_BOARD_H
#define PB_BOARD_H

#include <stdint.h>

#define PB_COUNTER_CYCLES       0
#define PB_COUNTER_INSTRUCTIONS 1

#ifndef PB_BOARD_NAME
#error "PB_BOARD_NAME must be set by the build (-DPB_BOARD_NAME=\"...\")"
#endif
#ifndef PB_CLOCK_HZ
#error "PB_CLOCK_HZ must be set by the build"
#endif
#ifndef PB_COUNTER_KIND
#error "PB_COUNTER_KIND must be set by the build"
#endif
#ifndef PB_ICOUNT_SHIFT
#define PB_ICOUNT_SHIFT 0
#endif

#define PB_UART_BAUD 115200u

/* Board bring-up: flash wait states and caches for the clock in use, pins, UART at
 * PB_UART_BAUD, then the counter. */
void pb_board_init(void);

/* Runs first in Reset_Handler, before .data and .bss exist and before any RAM access of its
 * own (weak: most boards need nothing there). */
void pb_board_early_init(void);

/* Blocking byte I/O on the host link UART. */
void pb_uart_write(const uint8_t *data, uint32_t len);
uint8_t pb_uart_read_byte(void);

/* Generic UART drivers; a board file calls the one that matches its chip's layout. */
void pb_usart_sr_init(uintptr_t base, uint32_t kernel_clock_hz, uint32_t baud);
void pb_usart_sr_write(uintptr_t base, const uint8_t *data, uint32_t len);
uint8_t pb_usart_sr_read_byte(uintptr_t base);
void pb_usart_isr_init(uintptr_t base, uint32_t kernel_clock_hz, uint32_t baud);
void pb_usart_isr_write(uintptr_t base, const uint8_t *data, uint32_t len);
uint8_t pb_usart_isr_read_byte(uintptr_t base);
void pb_cmsdk_uart_init(uintptr_t base, uint32_t pclk_hz, uint32_t baud);
void pb_cmsdk_uart_write(uintptr_t base, const uint8_t *data, uint32_t len);
uint8_t pb_cmsdk_uart_read_byte(uintptr_t base);

/* Free-running 64-bit tick counter (pb_counter.c), kind chosen by PB_COUNTER_KIND. */
void pb_counter_init(void);
uint64_t pb_counter_read(void);

#endif /* PB_BOARD_H */
