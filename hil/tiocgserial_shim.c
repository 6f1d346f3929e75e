/*
 * LD_PRELOAD shim for running serial-port tools against a pty (the simulation rig).
 *
 * Tools such as Debian's isdv4-serial-debugger refuse a device unless
 * ioctl(TIOCGSERIAL) succeeds, and a pty has no serial_struct. This answers that
 * one request with a plain 16550A description when the real ioctl fails; every
 * other ioctl goes to libc untouched. Built by the tests: cc -shared -fPIC.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/serial.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>

int ioctl(int fd, unsigned long request, ...)
{
    static int (*real_ioctl)(int, unsigned long, ...);
    va_list ap;
    void *arg;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (!real_ioctl)
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    if (request == TIOCGSERIAL && arg && real_ioctl(fd, request, arg) != 0) {
        struct serial_struct *serial = arg;

        memset(serial, 0, sizeof(*serial));
        serial->type = PORT_16550A;
        serial->baud_base = 115200;
        return 0;
    }
    return real_ioctl(fd, request, arg);
}
