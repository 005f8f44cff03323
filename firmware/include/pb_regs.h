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
#define SCB_ICSR            PB_REG32(0xE000ED04u)
#define SCB_ICSR_PENDSTSET  (1u << 26)    /* SysTick exception pending */
#define SCB_VTOR            PB_REG32(0xE000ED08u)

#define SYST_CSR            PB_REG32(0xE000E010u)
#define SYST_RVR            PB_REG32(0xE000E014u)
#define SYST_CVR            PB_REG32(0xE000E018u)
#define SYST_CSR_ENABLE     (1u << 0)
#define SYST_CSR_TICKINT    (1u << 1)
#define SYST_CSR_CLKSOURCE  (1u << 2)     /* 1 = processor clock, 0 = external reference */
#define SYST_RELOAD_MAX     0x00FFFFFFu   /* the counter is 24 bits wide */

#define DEMCR               PB_REG32(0xE000EDFCu)
#define DEMCR_TRCENA        (1u << 24)    /* powers the DWT unit */
#define DWT_CTRL            PB_REG32(0xE0001000u)
#define DWT_CYCCNT          PB_REG32(0xE0001004u)
#define DWT_LAR             PB_REG32(0xE0001FB0u)  /* Cortex-M7: software lock */
#define DWT_CTRL_CYCCNTENA  (1u << 0)
#define DWT_LAR_UNLOCK      0xC5ACCE55u

/* ---- STM32 GPIO (same layout on F4, F7 and H7) ----------------------------------- */
#define GPIO_MODER(base)    PB_REG32((base) + 0x00u)
#define GPIO_OSPEEDR(base)  PB_REG32((base) + 0x08u)
#define GPIO_PUPDR(base)    PB_REG32((base) + 0x0Cu)
#define GPIO_AFRL(base)     PB_REG32((base) + 0x20u)
#define GPIO_AFRH(base)     PB_REG32((base) + 0x24u)
#define GPIO_MODE_AF        2u

/* ---- STM32 USART, F2/F4 layout (SR/DR/BRR/CR1) ------------------------------------ */
#define USART_SR_SR(base)   PB_REG32((base) + 0x00u)
#define USART_SR_DR(base)   PB_REG32((base) + 0x04u)
#define USART_SR_BRR(base)  PB_REG32((base) + 0x08u)
#define USART_SR_CR1(base)  PB_REG32((base) + 0x0Cu)
#define USART_SR_CR2(base)  PB_REG32((base) + 0x10u)
#define USART_SR_CR3(base)  PB_REG32((base) + 0x14u)
#define USART_SR_ORE        (1u << 3)
#define USART_SR_RXNE       (1u << 5)
#define USART_SR_TXE        (1u << 7)
#define USART_SR_CR1_RE     (1u << 2)
#define USART_SR_CR1_TE     (1u << 3)
#define USART_SR_CR1_UE     (1u << 13)

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
#define USART_ICR_ERRORS    0x0000000Fu   /* PECF, FECF, NECF, ORECF: stale errors from before init */

/* ---- CMSDK APB UART (MPS2 AN385/AN386/AN500) ------------------------------------ */
#define CMSDK_UART_DATA(base)      PB_REG32((base) + 0x00u)
#define CMSDK_UART_STATE(base)     PB_REG32((base) + 0x04u)
#define CMSDK_UART_CTRL(base)      PB_REG32((base) + 0x08u)
#define CMSDK_UART_INTCLEAR(base)  PB_REG32((base) + 0x0Cu)
#define CMSDK_UART_BAUDDIV(base)   PB_REG32((base) + 0x10u)
#define CMSDK_UART_STATE_TXFULL    (1u << 0)
#define CMSDK_UART_STATE_RXFULL    (1u << 1)
#define CMSDK_UART_STATE_RXOVERRUN (1u << 3)  /* write 1 to clear */
#define CMSDK_UART_CTRL_TXEN       (1u << 0)
#define CMSDK_UART_CTRL_RXEN       (1u << 1)
#define CMSDK_UART_BAUDDIV_MIN     16u        /* the UART ignores smaller dividers */

#endif /* PB_REGS_H */
