/*
 * mps2.c - ARM MPS2 as QEMU models it: -M mps2-an386 (AN386 FPGA image, Cortex-M4) and
 * -M mps2-an500 (AN500, Cortex-M7) share this file; only the core and the linker script differ.
 * Host link: UART0, a CMSDK APB UART at 0x40004000 - QEMU wires serial0 to it.
 * There is no clock tree to set up: the core, SysTick (CLKSOURCE = processor clock) and
 * the APB peripherals all run on the FPGA's 25 MHz SYSCLK, which is PB_CLOCK_HZ.
 * On the AN500 (Cortex-M7) the L1 caches are invalidated and enabled as on the Nucleo M7
 * boards (pb_core.c), which runs that code under QEMU; QEMU models no cache, so the counts
 * stay instruction counts either way.
 */
#include "pb_board.h"
#include "pb_core.h"

#define UART0_BASE 0x40004000u

void pb_board_init(void)
{
    pb_core_enable_caches(); /* no-op on the AN386's Cortex-M4 */
    pb_cmsdk_uart_init(UART0_BASE, PB_CLOCK_HZ, PB_UART_BAUD);
    pb_counter_init();
}

void pb_uart_write(const uint8_t *data, uint32_t len)
{
    pb_cmsdk_uart_write(UART0_BASE, data, len);
}

uint8_t pb_uart_read_byte(void)
{
    return pb_cmsdk_uart_read_byte(UART0_BASE);
}
