/*
 * nucleo_f446re.c - NUCLEO-F446RE. Host link: USART2 on PA2 (TX) / PA3 (RX), AF7,
 * which the on-board ST-LINK exposes as its virtual COM port.
 * Clocks stay at reset (16 MHz HSI, APB1 undivided), so USART2 runs at PB_CLOCK_HZ.
 */
#include "pb_board.h"
#include "pb_gpio.h"
#include "pb_regs.h"

#define RCC_BASE        0x40023800u
#define RCC_AHB1ENR     PB_REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR     PB_REG32(RCC_BASE + 0x40u)
#define RCC_GPIOAEN     (1u << 0)
#define RCC_USART2EN    (1u << 17)
#define GPIOA_BASE      0x40020000u
#define USART2_BASE     0x40004400u
#define GPIO_AF7_USART2 7u

void pb_board_init(void)
{
    RCC_AHB1ENR |= RCC_GPIOAEN;
    RCC_APB1ENR |= RCC_USART2EN;
    (void)RCC_APB1ENR; /* read back: the clock must be running before the next access */
    pb_gpio_set_af(GPIOA_BASE, 2u, GPIO_AF7_USART2);
    pb_gpio_set_af(GPIOA_BASE, 3u, GPIO_AF7_USART2);
    pb_usart_sr_init(USART2_BASE, PB_CLOCK_HZ, PB_UART_BAUD);
    pb_counter_init();
}

void pb_uart_write(const uint8_t *data, uint32_t len)
{
    pb_usart_sr_write(USART2_BASE, data, len);
}

uint8_t pb_uart_read_byte(void)
{
    return pb_usart_sr_read_byte(USART2_BASE);
}
