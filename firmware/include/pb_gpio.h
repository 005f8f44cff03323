/* pb_gpio.h - routing one STM32 pin to an alternate function (UART TX/RX). */
#ifndef PB_GPIO_H
#define PB_GPIO_H

#include <stdint.h>

/* Puts pin (0..15) of the GPIO port at base into alternate function af (0..15). */
void pb_gpio_set_af(uintptr_t base, uint32_t pin, uint32_t af);

#endif /* PB_GPIO_H */
