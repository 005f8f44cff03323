/*
 * nucleo_h743zi.c - NUCLEO-H743ZI. Host link: USART3 on PD8 (TX) / PD9 (RX), AF7,
 * the ST-LINK virtual COM port. Clocks stay at reset: 64 MHz HSI, all bus prescalers
 * at 1, USART3's kernel clock = pclk1 (RCC_D2CCIP2R.USART234578SEL = 000).
 * The H7 RCC sits at 0x58024400 with its own register map (RM0433).
 *
 * Cycle-count set-up (firmware/README.md):
 * - Flash: the reset latency is 7 wait states; at 64 MHz the AXI clock needs 1 in voltage
 *   scale 3, the reset scale (RM0433 4.3.8, Table 17: 0 WS up to 45 MHz, 1 WS up to 90 MHz;
 *   scale 2: 55/110 MHz; scale 1: 70/140 MHz), read from PWR_D3CR.VOS. No ART on the H7.
 * - L1 caches: 16 KB I and 16 KB D (pb_core.c); code runs from flash at 0x08000000 over the
 *   AXI bus, data and stack are in the 512 KB AXI SRAM at 0x24000000: both are cached.
 * - Rev Y silicon (DBGMCU_IDCODE.REV_ID 0x1003): ES0392 2.2.9, "reading from AXI SRAM may
 *   lead to data read corruption": set READ_ISS_OVERRIDE in AXI_TARG7_FN_MOD (0x51008108),
 *   as ST's SystemInit does, before the first AXI SRAM access (pb_board_early_init).
 */
#include "pb_board.h"
#include "pb_core.h"
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

#define DBGMCU_IDCODE     PB_REG32(0x5C001000u)
#define DBGMCU_REV_ID(v)  ((v) >> 16)
#define REV_V             0x2003u /* rev Y is 0x1003; rev V fixed the erratum */
#define AXI_TARG7_FN_MOD  PB_REG32(0x51008108u)
#define READ_ISS_OVERRIDE (1u << 0)

#define PWR_D3CR        PB_REG32(0x58024818u)
#define PWR_D3CR_VOS(v) (((v) >> 14) & 3u) /* 1: scale 3 (reset), 2: scale 2, 3: scale 1 */

#if PB_CLOCK_HZ > 90000000u
#error "nucleo_h743zi: extend the flash wait-state choice (RM0433 Table 17) for this clock"
#endif

void pb_board_early_init(void)
{
    if (DBGMCU_REV_ID(DBGMCU_IDCODE) < REV_V) {
        AXI_TARG7_FN_MOD = READ_ISS_OVERRIDE;
    }
}

/* RM0433 Table 17 at up to 90 MHz: 0 wait states below the scale's limit, else 1, with
 * WRHIGHFREQ (the programming delay) 0 or 1 to match. */
static void flash_wait_states(void)
{
    static const uint32_t zero_ws_max_hz[4] = {0u, 45000000u, 55000000u, 70000000u}; /* by VOS field */
    const uint32_t vos = PWR_D3CR_VOS(PWR_D3CR);
    const uint32_t ws = (vos == 0u || PB_CLOCK_HZ > zero_ws_max_hz[vos]) ? 1u : 0u;
    const uint32_t acr = ws | (ws << FLASH_H7_ACR_WRHIGHFREQ_SHIFT);
    FLASH_H7_ACR = acr;
    while ((FLASH_H7_ACR & 0x3Fu) != acr) {
        /* the new latency counts once it reads back (RM0433 4.3.8) */
    }
}

void pb_board_init(void)
{
    flash_wait_states();
    pb_core_enable_caches();
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
