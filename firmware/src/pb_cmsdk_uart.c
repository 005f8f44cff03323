/* pb_cmsdk_uart.c - polled driver for the ARM CMSDK APB UART (MPS2 FPGA images). */
#include "pb_board.h"
#include "pb_regs.h"

void pb_cmsdk_uart_init(uintptr_t base, uint32_t pclk_hz, uint32_t baud)
{
    uint32_t div = (pclk_hz + baud / 2u) / baud;

    CMSDK_UART_CTRL(base) = 0u;
    /* The UART has no fractional divider: BAUDDIV = PCLK / baud, and it ignores values
     * below 16, so a clamp keeps it running (fast) rather than stuck at reset. */
    CMSDK_UART_BAUDDIV(base) = div < CMSDK_UART_BAUDDIV_MIN ? CMSDK_UART_BAUDDIV_MIN : div;
    CMSDK_UART_STATE(base) = CMSDK_UART_STATE_RXOVERRUN;                 /* stale overrun from before init */
    CMSDK_UART_INTCLEAR(base) = 0xFu;                                    /* polled: no interrupt stays pending */
    CMSDK_UART_CTRL(base) = CMSDK_UART_CTRL_TXEN | CMSDK_UART_CTRL_RXEN; /* always 8N1 */
}

void pb_cmsdk_uart_write(uintptr_t base, const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        while ((CMSDK_UART_STATE(base) & CMSDK_UART_STATE_TXFULL) != 0u) {
        }
        CMSDK_UART_DATA(base) = data[i];
    }
}

uint8_t pb_cmsdk_uart_read_byte(uintptr_t base)
{
    for (;;) {
        uint32_t state = CMSDK_UART_STATE(base);
        if ((state & CMSDK_UART_STATE_RXFULL) != 0u) {
            return (uint8_t)CMSDK_UART_DATA(base);
        }
        if ((state & CMSDK_UART_STATE_RXOVERRUN) != 0u) {
            /* The lost byte shows up as a bad frame that the protocol answers with an
             * error; the flag is cleared so it does not mask later overruns. */
            CMSDK_UART_STATE(base) = CMSDK_UART_STATE_RXOVERRUN;
        }
    }
}
