/*
 * nucleo_f746zg.c - NUCLEO-F746ZG. Host link: USART3 on PD8 (TX) / PD9 (RX), AF7,
 * the ST-LINK virtual COM port. Clocks stay at reset (16 MHz HSI, APB1 undivided);
 * USART3's kernel clock is APB1 after reset (RCC_DCKCFGR2.USART3SEL = 00).
 */
#include "pb_board.h"
#include "pb_gpio.h"
#include "pb_regs.h"

#define RCC_BASE        0x40023800u
#define RCC_AHB1ENR     PB_REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR     PB_REG32(RCC_BASE + 0x40u)
#define RCC_GPIODEN     (1u << 3)
#define RCC_USART3EN    (1u << 18)
#define GPIOD_BASE      0x40020C00u
#define USART3_BASE     0x40004800u
#define GPIO_AF7_USART3 7u

void pb_board_init(void)
{
    RCC_AHB1ENR |= RCC_GPIODEN;
    RCC_APB1ENR |= RCC_USART3EN;
    (void)RCC_APB1ENR; /* read back: the clock must be running before the next access */
    pb_gpio_set_af(GPIOD_BASE, 8u, GPIO_AF7_USART3);
    pb_gpio_set_af(GPIOD_BASE, 9u, GPIO_AF7_USART3);
    pb_usart_isr_init(USART3_BASE, PB_CLOCK_HZ, PB_UART_BAUD);
    pb_counter_init();
}

void pb_uart_write(const uint8_t *data, uint32_t len)
{
    pb_usart_isr_write(USART3_BASE, data, len);
}

uint8_t pb_uart_read_byte(void)
{
    return pb_usart_isr_read_byte(USART3_BASE);
}
