/* pb_usart_sr.c - polled driver for the STM32F2/F4 USART (SR/DR/BRR/CR1 layout). */
#include "pb_board.h"
#include "pb_regs.h"

void pb_usart_sr_init(uintptr_t base, uint32_t kernel_clock_hz, uint32_t baud)
{
    USART_SR_CR1(base) = 0u;
    /* Oversampling by 16: USARTDIV = f / baud, and BRR holds it as 12.4 fixed point,
     * which is the rounded f / baud read as a plain integer. */
    USART_SR_BRR(base) = (kernel_clock_hz + baud / 2u) / baud;
    USART_SR_CR2(base) = 0u;                                                  /* 1 stop bit */
    USART_SR_CR3(base) = 0u;                                                  /* no flow control */
    USART_SR_CR1(base) = USART_SR_CR1_UE | USART_SR_CR1_TE | USART_SR_CR1_RE; /* 8N1 */
}

void pb_usart_sr_write(uintptr_t base, const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        while ((USART_SR_SR(base) & USART_SR_TXE) == 0u) {
        }
        USART_SR_DR(base) = data[i];
    }
}

uint8_t pb_usart_sr_read_byte(uintptr_t base)
{
    for (;;) {
        uint32_t sr = USART_SR_SR(base);
        if ((sr & USART_SR_RXNE) != 0u) {
            return (uint8_t)USART_SR_DR(base);
        }
        if ((sr & USART_SR_ORE) != 0u) {
            /* Overrun: reading SR then DR clears it; the lost byte shows up as a bad
             * frame that the protocol answers with an error. */
            (void)USART_SR_DR(base);
        }
    }
}
