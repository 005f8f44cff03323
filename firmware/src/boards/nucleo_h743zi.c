/*
 * nucleo_h743zi.c - NUCLEO-H743ZI. Host link: USART3 on PD8 (TX) / PD9 (RX), AF7,
 * the ST-LINK virtual COM port. Clocks stay at reset: 64 MHz HSI, all bus prescalers
 * at 1, USART3's kernel clock = pclk1 (RCC_D2CCIP2R.USART234578SEL = 000).
 * The H7 RCC sits at 0x58024400 with its own register map (RM0433).
 */
#include "pb_board.h"
#include "pb_gpio.h"
#include "pb_regs.h"

#define RCC_BASE        0x58024400u
#define RCC_AHB4ENR     PB_REG32(RCC_BASE + 0xE0u)
#define RCC_APB1LENR    PB_REG32(RCC_BASE + 0xE8u)
#define RCC_GPIODEN     (1u << 3)
#define RCC_USART3EN    (1u << 18)
#define GPIOD_BASE      0x58020C00u
#define USART3_BASE     0x40004800u
#define GPIO_AF7_USART3 7u

void pb_board_init(void)
{
    RCC_AHB4ENR |= RCC_GPIODEN;
    RCC_APB1LENR |= RCC_USART3EN;
    (void)RCC_APB1LENR; /* read back: the clock must be running before the next access */
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
