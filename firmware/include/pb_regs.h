/*
 * pb_regs.h - the few memory-mapped registers pbkit touches, written out by hand
 * (no vendor headers: the firmware must build from this tree alone).
 *
 * Addresses and bit positions come from the ARMv7-M Architecture Reference Manual
 * (core), the STM32 reference manuals RM0090 (F405), RM0390 (F446), RM0385 (F746)
 * and RM0433 (H743), and the Cortex-M System Design Kit TRM (ARM DDI 0479, the CMSDK
 * APB UART of the MPS2 FPGA images). Each board file only uses the peripherals of its
 * own chip.
 */
#ifndef PB_REGS_H
#define PB_REGS_H

#include <stdint.h>

#define PB_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- Cortex-M core (identical on M4 and M7) -------------------------------------- */
#define SCB_CPUID           PB_REG32(0xE000ED00u)
#define SCB_CPUID_PARTNO(v) (((v) >> 4) & 0xFFFu)
#define SCB_CPUID_PARTNO_M7 0xC27u /* M4: 0xC24 */
#define SCB_ICSR            PB_REG32(0xE000ED04u)
#define SCB_ICSR_PENDSTSET  (1u << 26) /* SysTick exception pending */
#define SCB_VTOR            PB_REG32(0xE000ED08u)

#define SYST_CSR           PB_REG32(0xE000E010u)
#define SYST_RVR           PB_REG32(0xE000E014u)
#define SYST_CVR           PB_REG32(0xE000E018u)
#define SYST_CSR_ENABLE    (1u << 0)
#define SYST_CSR_TICKINT   (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)   /* 1 = processor clock, 0 = external reference */
#define SYST_RELOAD_MAX    0x00FFFFFFu /* the counter is 24 bits wide */

#define DEMCR              PB_REG32(0xE000EDFCu)
#define DEMCR_TRCENA       (1u << 24) /* powers the DWT unit */
#define DWT_CTRL           PB_REG32(0xE0001000u)
#define DWT_CYCCNT         PB_REG32(0xE0001004u)
#define DWT_LAR            PB_REG32(0xE0001FB0u) /* Cortex-M7 only: software lock (not defined on M4) */
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_LAR_UNLOCK     0xC5ACCE55u

/* ---- Cortex-M7 L1 caches (ARMv7-M ARM B3.2; Cortex-M7 TRM / DUI0646 4.8) ---------- */
#define SCB_CCR                   PB_REG32(0xE000ED14u)
#define SCB_CCR_DC                (1u << 16)            /* data cache enable */
#define SCB_CCR_IC                (1u << 17)            /* instruction cache enable */
#define SCB_CCSIDR                PB_REG32(0xE000ED80u) /* geometry of the cache CSSELR selects */
#define SCB_CSSELR                PB_REG32(0xE000ED84u)
#define SCB_CSSELR_L1_DATA        0u
#define SCB_ICIALLU               PB_REG32(0xE000EF50u) /* invalidate the whole I-cache */
#define SCB_DCISW                 PB_REG32(0xE000EF60u) /* invalidate a D-cache line by set/way */
#define CCSIDR_LINE_WORDS_LOG2(v) (((v) & 0x7u) + 2u)   /* LineSize: log2(words per line) - 2 */
#define CCSIDR_WAYS(v)            ((((v) >> 3) & 0x3FFu) + 1u)
#define CCSIDR_SETS(v)            ((((v) >> 13) & 0x7FFFu) + 1u)

/* ---- STM32 embedded flash interface ------------------------------------------------ */
/* F4 (RM0390 3.8.1) and F7 (RM0385 3.7.1): FLASH_ACR at 0x40023C00. */
#define FLASH_F4F7_ACR                PB_REG32(0x40023C00u)
#define FLASH_ACR_LATENCY_MASK        0xFu
#define FLASH_F4_ACR_PRFTEN           (1u << 8)
#define FLASH_F4_ACR_ICEN             (1u << 9)  /* ART instruction cache */
#define FLASH_F4_ACR_DCEN             (1u << 10) /* ART data cache */
#define FLASH_F7_ACR_PRFTEN           (1u << 8)
#define FLASH_F7_ACR_ARTEN            (1u << 9) /* ART on the ITCM flash interface (0x00200000) */
/* H7 (RM0433 4.9.1): FLASH_ACR at 0x52002000, LATENCY [3:0] and WRHIGHFREQ [5:4]; no ART. */
#define FLASH_H7_ACR                  PB_REG32(0x52002000u)
#define FLASH_H7_ACR_WRHIGHFREQ_SHIFT 4u

/* ---- STM32 GPIO (same layout on F4, F7 and H7) ----------------------------------- */
#define GPIO_MODER(base)   PB_REG32((base) + 0x00u)
#define GPIO_OSPEEDR(base) PB_REG32((base) + 0x08u)
#define GPIO_PUPDR(base)   PB_REG32((base) + 0x0Cu)
#define GPIO_AFRL(base)    PB_REG32((base) + 0x20u)
#define GPIO_AFRH(base)    PB_REG32((base) + 0x24u)
#define GPIO_MODE_AF       2u

/* ---- STM32 USART, F2/F4 layout (SR/DR/BRR/CR1) ------------------------------------ */
#define USART_SR_SR(base)  PB_REG32((base) + 0x00u)
#define USART_SR_DR(base)  PB_REG32((base) + 0x04u)
#define USART_SR_BRR(base) PB_REG32((base) + 0x08u)
#define USART_SR_CR1(base) PB_REG32((base) + 0x0Cu)
#define USART_SR_CR2(base) PB_REG32((base) + 0x10u)
#define USART_SR_CR3(base) PB_REG32((base) + 0x14u)
#define USART_SR_ORE       (1u << 3)
#define USART_SR_RXNE      (1u << 5)
#define USART_SR_TXE       (1u << 7)
#define USART_SR_CR1_RE    (1u << 2)
#define USART_SR_CR1_TE    (1u << 3)
#define USART_SR_CR1_UE    (1u << 13)

/* ---- STM32 USART, F7/H7 layout (CR1 first, ISR/ICR/RDR/TDR) ----------------------- */
#define USART_ISR_CR1(base) PB_REG32((base) + 0x00u)
#define USART_ISR_CR2(base) PB_REG32((base) + 0x04u)
#define USART_ISR_CR3(base) PB_REG32((base) + 0x08u)
#define USART_ISR_BRR(base) PB_REG32((base) + 0x0Cu)
#define USART_ISR_ISR(base) PB_REG32((base) + 0x1Cu)
#define USART_ISR_ICR(base) PB_REG32((base) + 0x20u)
#define USART_ISR_RDR(base) PB_REG32((base) + 0x24u)
#define USART_ISR_TDR(base) PB_REG32((base) + 0x28u)
#define USART_ISR_CR1_UE    (1u << 0)
#define USART_ISR_CR1_RE    (1u << 2)
#define USART_ISR_CR1_TE    (1u << 3)
#define USART_ISR_ORE       (1u << 3)
#define USART_ISR_RXNE      (1u << 5)
#define USART_ISR_TXE       (1u << 7)
#define USART_ICR_ORECF     (1u << 3)
#define USART_ICR_ERRORS    0x0000000Fu /* PECF, FECF, NECF, ORECF: stale errors from before init */

/* ---- CMSDK APB UART (MPS2 AN385/AN386/AN500) ------------------------------------ */
#define CMSDK_UART_DATA(base)      PB_REG32((base) + 0x00u)
#define CMSDK_UART_STATE(base)     PB_REG32((base) + 0x04u)
#define CMSDK_UART_CTRL(base)      PB_REG32((base) + 0x08u)
#define CMSDK_UART_INTCLEAR(base)  PB_REG32((base) + 0x0Cu)
#define CMSDK_UART_BAUDDIV(base)   PB_REG32((base) + 0x10u)
#define CMSDK_UART_STATE_TXFULL    (1u << 0)
#define CMSDK_UART_STATE_RXFULL    (1u << 1)
#define CMSDK_UART_STATE_RXOVERRUN (1u << 3) /* write 1 to clear */
#define CMSDK_UART_CTRL_TXEN       (1u << 0)
#define CMSDK_UART_CTRL_RXEN       (1u << 1)
#define CMSDK_UART_BAUDDIV_MIN     16u /* the UART ignores smaller dividers */

#endif /* PB_REGS_H */
