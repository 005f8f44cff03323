/* pb_gpio.c - STM32 GPIO alternate-function setup (same registers on F4, F7 and H7). */
#include "pb_gpio.h"

#include "pb_regs.h"

void pb_gpio_set_af(uintptr_t base, uint32_t pin, uint32_t af)
{
    /* Select the function before switching the mode, so the pin never drives a
     * different peripheral's signal in between. */
    if (pin < 8u) {
        GPIO_AFRL(base) = (GPIO_AFRL(base) & ~(0xFu << (4u * pin))) | (af << (4u * pin));
    } else {
        uint32_t shift = 4u * (pin - 8u);
        GPIO_AFRH(base) = (GPIO_AFRH(base) & ~(0xFu << shift)) | (af << shift);
    }
    GPIO_OSPEEDR(base) |= 2u << (2u * pin); /* high speed: clean edges at 115200 */
    GPIO_PUPDR(base) = (GPIO_PUPDR(base) & ~(3u << (2u * pin))) | (1u << (2u * pin)); /* pull-up: idle high */
    GPIO_MODER(base) = (GPIO_MODER(base) & ~(3u << (2u * pin))) | (GPIO_MODE_AF << (2u * pin));
}
