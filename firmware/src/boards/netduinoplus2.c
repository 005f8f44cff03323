/*
 * netduinoplus2.c - STM32F405RG as QEMU models it (-M netduinoplus2).
 * Host link: USART1 (PA9 TX, PA10 RX, AF7) - QEMU wires serial0 to USART1.
 * QEMU leaves RCC and GPIO unimplemented (writes are ignored) and ignores BRR, but
 * the set-up is the one real silicon needs, so the code stays honest to RM0090.
 */
#include "pb_board.h"
#include "pb_gpio.h"
#include "pb_regs.h"

#define RCC_BASE        0x40023800u
#define RCC_AHB1ENR     PB_REG32(RCC_BASE + 0x30u)
#define RCC_APB2ENR     PB_REG32(RCC_BASE + 0x44u)
#define RCC_GPIOAEN     (1u << 0)
#define RCC_USART1EN    (1u << 4)
#define GPIOA_BASE      0x40020000u
#define USART1_BASE     0x40011000u
#define GPIO_AF7_USART1 7u

void pb_board_init(void)
{
    RCC_AHB1ENR |= RCC_GPIOAEN;
    RCC_APB2ENR |= RCC_USART1EN;
    (void)RCC_APB2ENR; /* read back: the clock must be running before the next access */
    pb_gpio_set_af(GPIOA_BASE, 9u, GPIO_AF7_USART1);
    pb_gpio_set_af(GPIOA_BASE, 10u, GPIO_AF7_USART1);
    /* USART1 sits on APB2; QEMU's model runs everything at PB_CLOCK_HZ. */
    pb_usart_sr_init(USART1_BASE, PB_CLOCK_HZ, PB_UART_BAUD);
    pb_counter_init();
}

void pb_uart_write(const uint8_t *data, uint32_t len)
{
    pb_usart_sr_write(USART1_BASE, data, len);
}

uint8_t pb_uart_read_byte(void)
{
    return pb_usart_sr_read_byte(USART1_BASE);
}
