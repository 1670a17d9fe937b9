/*
 * init.h - the duties of PID 1 in the appliance (DESIGN.md, "PID 1").
 *
 * The appliance is a kernel and an initramfs holding build/sluice as /init
 * and the kernel modules it loads.  When the kernel starts it, main.c calls
 * init_boot_or_poweroff(), which does in order:
 *
 *   mounts      devtmpfs /dev, then /dev/console as fds 0, 1, 2 (logs go to
 *               stderr, which is then the serial console), proc, sysfs,
 *               tmpfs /tmp and /run; an existing mount (EBUSY) is fine
 *   modules     every path of /lib/modules/load-order, in order, with
 *               finit_module; EEXIST is fine, a failure is logged by name
 *               and the boot goes on
 *   random      getrandom(GRND_NONBLOCK) polled until the kernel's pool is
 *               ready (RDRAND, virtio-rng), at most INIT_RANDOM_POLL_MS;
 *               then one blocking getrandom, which makes the kernel gather
 *               entropy from CPU timing jitter (about a second, even under
 *               QEMU without KVM, where polling alone waits much longer)
 *   network     loopback up, /etc/hosts; then the first NIC through
 *               init_sys.configure_nic (DHCP, address, route, MTU,
 *               /etc/resolv.conf)
 *   config      the first source found, in this order:
 *                 1. the kernel command line: sluice.config=<base64>
 *                 2. QEMU fw_cfg opt/sluice/config
 *                 3. EC2 user-data over IMDSv2 (init_sys.userdata)
 *               parsed as a properties file and validated.  None found is
 *               an error too: the built-in defaults never start silently.
 *
 * Any error on the way is printed plainly on the console (what EC2's
 * get-console-output shows), and the machine powers off: it never starts
 * half-configured.  main.c then prepares the WAL device (init_device_blank()
 * and sluice.wal.format.if.blank), runs the broker with the configuration
 * found, watching SIGTERM, SIGINT (ctrl-alt-del), SIGCHLD and the ACPI power
 * button (init_power_buttons()), and powers off when the broker returns.
 * PID 1 never exits: init_poweroff() does not return.
 *
 * Every system call goes through init_sys (SQLite's os_unix.c idea), so the
 * unit tests run the whole boot against fakes: no mounts, no modules, no
 * reboots.  Each member has the libc signature and returns -1 with errno set
 * on failure, except where its comment says otherwise.
 *
 * Contract with the image (image/, `make image`):
 *   /lib/modules/load-order   one module path per line, dependencies first;
 *                             relative paths are under /lib/modules/; blank
 *                             lines and lines starting with '#' are skipped
 *   /lib/modules/...ko        uncompressed modules
 *   For the power button the image must carry button.ko and evdev.ko (the
 *   Debian cloud kernel builds both as modules); for fw_cfg qemu_fw_cfg.ko.
 */
#ifndef SL_INIT_H
#define SL_INIT_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "err.h"

struct config;

#define INIT_MODULE_LIST "/lib/modules/load-order"
#define INIT_MODULE_DIR "/lib/modules"
#define INIT_CMDLINE "/proc/cmdline"
#define INIT_FWCFG_DEV "/sys/firmware/qemu_fw_cfg"
#define INIT_FWCFG_ITEM INIT_FWCFG_DEV "/by_name/opt/sluice/config"
#define INIT_CMDLINE_KEY "sluice.config="

/* The largest configuration any source may give (EC2 caps user-data at 16 KB). */
#define INIT_CONFIG_MAX (64 * 1024)
/* How long to poll for the random pool before asking the kernel to fill it. */
#define INIT_RANDOM_POLL_MS 1000
/* How long a NIC may take to appear after its module is loaded. */
#define INIT_NIC_WAIT_MS 5000
/* DHCP on the first NIC gives up after this long. */
#define INIT_DHCP_TIMEOUT_MS 30000
/* How long the WAL's block device may take to appear. */
#define INIT_DEVICE_WAIT_MS 10000
/* An EBS volume may be attached only after the instance runs (Terraform does that). */
#define INIT_VOLUME_WAIT_MS 180000
/* From the stop signal to power off, whatever is still flushing. */
#define INIT_SHUTDOWN_S 60

struct init_sys {
	int (*mount)(const char *src, const char *target, const char *type, unsigned long flags,
		     const void *data);
	int (*mkdir)(const char *path, mode_t mode);
	int (*open)(const char *path, int flags, mode_t mode);
	ssize_t (*read)(int fd, void *buf, size_t n);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*close)(int fd);
	int (*dup2)(int fd, int to);
	int (*ioctl)(int fd, unsigned long req, void *arg);
	int (*socket)(int domain, int type, int proto);
	int (*finit_module)(int fd, const char *params, int flags);
	/* reboot(2)'s cmd: RB_POWER_OFF, RB_DISABLE_CAD. */
	int (*reboot)(int cmd);
	void (*sync)(void);
	int (*tcdrain)(int fd);
	ssize_t (*getrandom)(void *buf, size_t n, unsigned flags);
	/* Directory entries (not "." or ".."), one call each; 0 or -1 and errno. */
	int (*listdir)(const char *dir, void (*fn)(const char *name, void *arg), void *arg);
	void (*sleep_ms)(unsigned ms);
	uint64_t (*now_ms)(void);	/* monotonic */

	/*
	 * Services rather than syscalls; they return 0 or a negative SL_E_*
	 * code and fill why on failure.
	 *
	 * configure_nic: DHCP on ifname (address, route, MTU, resolv.conf)
	 * within timeout_ms.  SL_E_NOTFOUND: this build cannot (the NIC stays
	 * down and the boot goes on); anything else is fatal.
	 *
	 * userdata: EC2 user-data over IMDSv2 into *data (malloc'd, the caller
	 * frees), at most max bytes.  SL_E_NOTFOUND when there is none (404),
	 * no metadata service answers, or this build has no IMDS client; why
	 * says which.  SL_E_TOOBIG above max; other errors are fatal.
	 */
	int (*configure_nic)(const char *ifname, int timeout_ms, char *why, size_t whylen);
	int (*userdata)(char **data, size_t *len, size_t max, char *why, size_t whylen);
};
extern struct init_sys init_sys;
/* Restore the real calls. */
void init_sys_reset(void);

/*
 * The whole boot (the list at the top), into cfg (config_init'd here; on
 * success the caller owns it and calls config_free).  On failure cfg is
 * freed and why holds a message for the console, which the caller prints
 * with init_fatal().
 */
SL_MUST_CHECK int init_boot(struct config *cfg, char *why, size_t whylen);
/* init_boot(), and on failure init_fatal(why): returns only with a configuration. */
void init_boot_or_poweroff(struct config *cfg);

/*
 * Print why plainly on the console, then power off.  Never returns (a test's
 * init_sys.reboot may longjmp out).
 */
void init_fatal(const char *why) __attribute__((noreturn));
/* Sync, drain the console, power off; never returns.  why goes to the log. */
void init_poweroff(const char *why) __attribute__((noreturn));

/* ---- the steps, in the order init_boot() runs them ---- */

/* Block SIGTERM, SIGINT, SIGCHLD (for the broker's signalfd) and let ctrl-alt-del send SIGINT. */
void init_signals(void);
/* /dev, the console, then the other mounts.  0 or the first fatal error (why). */
SL_MUST_CHECK int init_mounts(char *why, size_t whylen);

struct init_modstats {
	unsigned loaded, present, failed;
};
/*
 * Load the modules named in list (INIT_MODULE_LIST), in order.  A missing
 * list is not an error (a kernel with everything built in needs none).
 * Returns 0; failures of single modules are logged and counted.
 */
int init_load_modules(const char *list, struct init_modstats *st);

/*
 * Wait for the random pool: poll for up to poll_ms, then block in
 * getrandom (logged, with the time it took).  0, or the error of a kernel
 * that cannot say (logged; the boot goes on).
 */
int init_wait_random(uint64_t poll_ms);

/* Bring lo up (the kernel gives it 127.0.0.1 and ::1). */
SL_MUST_CHECK int init_loopback(void);
/*
 * The first NIC: the smallest name in /sys/class/net that is not lo, waiting
 * up to wait_ms for one to appear.  0, or SL_E_NOTFOUND.
 */
SL_MUST_CHECK int init_first_nic(char *name, size_t cap, uint64_t wait_ms);
/* Loopback, /etc/hosts, then DHCP on the first NIC.  0, or a fatal error (why). */
SL_MUST_CHECK int init_network(char *why, size_t whylen);

/*
 * Standard base64 (RFC 4648 section 4; '=' padding optional) of n bytes
 * into out (cap bytes; n / 4 * 3 + 3 suffice).  0 and *outlen, or
 * SL_E_INVALID with why naming the offset of the first bad character.
 */
SL_MUST_CHECK int init_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap,
				     size_t *outlen, char *why, size_t whylen);

/*
 * The value of sluice.config= in a kernel command line (n bytes, as in
 * /proc/cmdline), decoded into *out (malloc'd, the caller frees).  Other
 * parameters are ignored; double quotes group as the kernel's parser does.
 * Returns 0, SL_E_NOTFOUND when absent, SL_E_CONFIG (bad base64, given
 * twice, larger than INIT_CONFIG_MAX) with why.
 */
SL_MUST_CHECK int init_cmdline_config(const char *cmdline, size_t n, char **out, size_t *outlen,
				      char *why, size_t whylen);

/*
 * A configuration source's bytes into *data (malloc'd, the caller frees).
 * 0; SL_E_NOTFOUND when the source has none (why says why not); another
 * error (why) when it has one that cannot be used.
 */
SL_MUST_CHECK int init_source_cmdline(char **data, size_t *len, char *why, size_t whylen);
/* fw_cfg: size first, then the raw item in a few large reads (each read costs O(offset)). */
SL_MUST_CHECK int init_source_fwcfg(char **data, size_t *len, char *why, size_t whylen);

/*
 * Try the sources in order and parse the first found into cfg (already
 * config_init'd), then validate it.  0 and *source (a static name); or
 * SL_E_NOTFOUND when no source had a configuration, why naming each source
 * and what it said; or SL_E_CONFIG with the parser's message.
 */
SL_MUST_CHECK int init_find_config(struct config *cfg, const char **source, char *why,
				   size_t whylen);

/* ---- for main.c, around the broker ---- */

/* Wait up to wait_ms for path to open.  0, or the last -errno. */
SL_MUST_CHECK int init_wait_path(const char *path, uint64_t wait_ms);
/*
 * *blank = 1 when the first 8 KiB of path (a WAL's two superblock slots)
 * are all zero: a new volume.  0, or -errno (a short device is not blank).
 */
SL_MUST_CHECK int init_device_blank(const char *path, int *blank);

/*
 * Open every /dev/input/event* whose keys include KEY_POWER (the ACPI
 * button driver's "Power Button" devices), non-blocking, into fds (at most
 * max).  Returns how many; the caller closes them.
 */
int init_power_buttons(int *fds, int max);
/* Read what fd has; 1 when a KEY_POWER press was among it, else 0. */
int init_power_pressed(int fd);

/* Reap every exited child (SIGCHLD); returns how many. */
int init_reap(void);
/*
 * Power off after seconds whatever happens (SIGALRM, not blocked): bounds
 * a shutdown that hangs on a device.
 */
void init_shutdown_deadline(unsigned seconds);

#endif
