/*
 * nucleo_f446re.c - NUCLEO-F446RE. Host link: USART2 on PA2 (TX) / PA3 (RX), AF7,
 * which the on-board ST-LINK exposes as its virtual COM port.
 * Clocks stay at reset (16 MHz HSI, APB1 undivided), so USART2 runs at PB_CLOCK_HZ.
 * Flash: 0 wait states, the reset value and right up to 30 MHz at 2.7-3.6 V (RM0390 3.4.1,
 * Table 5), with the ART accelerator's prefetch, instruction and data caches on, as ST's
 * start-up code leaves them, so cycle counts are those of a normally configured F446.
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

#if PB_CLOCK_HZ > 30000000u
#error "nucleo_f446re: more than 30 MHz needs flash wait states (RM0390 Table 5)"
#endif

void pb_board_init(void)
{
    FLASH_F4F7_ACR = (FLASH_F4F7_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_F4_ACR_PRFTEN | FLASH_F4_ACR_ICEN |
                     FLASH_F4_ACR_DCEN; /* LATENCY = 0 */
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
