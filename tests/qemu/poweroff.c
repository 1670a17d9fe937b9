/*
 * poweroff.c - the baseline /init for tests/qemu: announce itself on the
 * console and power the machine off at once.
 *
 * tests/qemu/test_qemu.py boots the appliance's kernel with an initramfs
 * holding only this program, in the same run as the real image, so the
 * appliance's boot time is printed beside what the kernel alone costs on the
 * same machine at the same moment (under TCG that varies a lot between runs
 * and machines).  The kernel opens /dev/console for PID 1, so fd 1 is the
 * serial port; the marker line tells the test when user space began.
 */
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	static const char msg[] = "poweroff-init: running\n";

	if (write(1, msg, sizeof(msg) - 1) == -1) {
		/* No console: nothing to report, power off all the same. */
	}
	sync();
	reboot(RB_POWER_OFF);
	/* PID 1 must not exit (the kernel would panic): wait for the power to go. */
	for (;;)
		pause();
}
