/* pb_usart_isr.c - polled driver for the STM32F7/H7 USART (ISR/ICR/RDR/TDR layout). */
#include "pb_board.h"
#include "pb_regs.h"

void pb_usart_isr_init(uintptr_t base, uint32_t kernel_clock_hz, uint32_t baud)
{
    USART_ISR_CR1(base) = 0u; /* UE off: BRR and CR2/CR3 are only writable then */
    /* Oversampling by 16: BRR = USARTDIV = kernel clock / baud. */
    USART_ISR_BRR(base) = (kernel_clock_hz + baud / 2u) / baud;
    USART_ISR_CR2(base) = 0u;
    USART_ISR_CR3(base) = 0u;
    USART_ISR_ICR(base) = USART_ICR_ERRORS;
    USART_ISR_CR1(base) = USART_ISR_CR1_UE | USART_ISR_CR1_TE | USART_ISR_CR1_RE;
}

void pb_usart_isr_write(uintptr_t base, const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        while ((USART_ISR_ISR(base) & USART_ISR_TXE) == 0u) {
        }
        USART_ISR_TDR(base) = data[i];
    }
}

uint8_t pb_usart_isr_read_byte(uintptr_t base)
{
    for (;;) {
        uint32_t isr = USART_ISR_ISR(base);
        if ((isr & USART_ISR_RXNE) != 0u) {
            return (uint8_t)USART_ISR_RDR(base);
        }
        if ((isr & USART_ISR_ORE) != 0u) {
            /* An overrun blocks further reception until cleared here. */
            USART_ISR_ICR(base) = USART_ICR_ORECF;
        }
    }
}
