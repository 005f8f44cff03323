/*
 * nucleo_f746zg.c - NUCLEO-F746ZG. Host link: USART3 on PD8 (TX) / PD9 (RX), AF7,
 * the ST-LINK virtual COM port. Clocks stay at reset (16 MHz HSI, APB1 undivided);
 * USART3's kernel clock is APB1 after reset (RCC_DCKCFGR2.USART3SEL = 00).
 * Flash: 0 wait states, right up to 30 MHz at 2.7-3.6 V (RM0385 3.3.2, Table 5). The image
 * is linked at 0x08000000 and so fetched over the AXIM bus through the core's 4 KB L1
 * I-cache; the ART accelerator and prefetch (also enabled) serve only the ITCM path at
 * 0x00200000. The 4 KB L1 D-cache covers SRAM1/SRAM2 and flash data; .data, .bss and the
 * stack start in the 64 KB DTCM at 0x20000000 (not cached: TCM is single-cycle anyway).
 */
#include "pb_board.h"
#include "pb_core.h"
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

#if PB_CLOCK_HZ > 30000000u
#error "nucleo_f746zg: more than 30 MHz needs flash wait states (RM0385 Table 5)"
#endif

void pb_board_init(void)
{
    FLASH_F4F7_ACR = (FLASH_F4F7_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_F7_ACR_PRFTEN | FLASH_F7_ACR_ARTEN;
    pb_core_enable_caches();
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
