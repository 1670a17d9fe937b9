/*
 * init.c - the duties of PID 1 in the appliance (see init.h for the order
 * and the contract with the image).
 *
 * Owns: the table of system calls (init_sys), the mount table, module
 * loading, the wait for the random pool, loopback and the call into DHCP,
 * the configuration sources and their order, the power button, reaping, and
 * the two ways out: init_fatal() and init_poweroff().
 *
 *   init_signals ─▶ init_mounts ─▶ modules ─▶ random ─▶ network ─▶ config ─▶ (main: WAL, broker)
 *        │               │                                   │         │            │
 *        │               └──────── any fatal error ──────────┴─────────┴──▶ init_fatal
 *        │                                                                    │
 *        └── SIGTERM, SIGINT (ctrl-alt-del), power button: broker stops ──▶ init_poweroff
 *
 * Invariants:
 *   1. Every system call of the boot and of the power button goes through
 *      init_sys, so the tests run each step, and the whole boot, against
 *      fakes.  Not through it: log.c's writes to stderr (init_fatal's
 *      console messages do go through it), the signal mask, reaping, and
 *      the shutdown deadline, whose handler may only make plain syscalls.
 *   2. Nothing here returns to the kernel: init_fatal() and init_poweroff()
 *      end in reboot(RB_POWER_OFF), and if even that fails, in sleep.
 *   3. Before a step fails the boot, it frees what it holds, so the only
 *      thing left to do is print why and power off.
 *   4. Bytes from outside (the command line, fw_cfg, user-data) are
 *      bounded by INIT_CONFIG_MAX before anything is allocated for them,
 *      and read with the cursor of buf.h; messages quote them only through
 *      quote(), which shows at most a few printable bytes.
 *   5. The built-in defaults never run silently: a configuration must come
 *      from one of the sources, even an empty one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/input.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "buf.h"
#include "config.h"
#include "init.h"
#include "log.h"

/* ---- the real calls ---- */

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static int sys_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg);
}

static int sys_finit_module(int fd, const char *params, int flags)
{
	return (int)syscall(SYS_finit_module, fd, params, flags);
}

static int sys_reboot(int cmd)
{
	return reboot(cmd);
}

static ssize_t sys_getrandom(void *buf, size_t n, unsigned flags)
{
	return getrandom(buf, n, flags);
}

static int sys_listdir(const char *dir, void (*fn)(const char *name, void *arg), void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		fn(de->d_name, arg);
	}
	closedir(d);
	return 0;
}

static void sys_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static uint64_t sys_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The call site of DHCP on the first NIC.  This build has no DHCP client
 * yet (net/dhcp.h): the NIC stays down and the broker is reachable only
 * from inside the machine.
 */
static int no_dhcp(const char *ifname, int timeout_ms, char *why, size_t whylen)
{
	say(why, whylen, "this build has no DHCP client");
	return SL_E_NOTFOUND;
}

/* The call site of IMDSv2 user-data; this build has no IMDS client yet (net/imds.h). */
static int no_userdata(char **data, size_t *len, size_t max, char *why, size_t whylen)
{
	say(why, whylen, "this build has no IMDS client");
	return SL_E_NOTFOUND;
}

/* The real calls; a macro because a const struct is not a constant initializer in C. */
#define INIT_SYS_REAL { \
	.mount = mount, \
	.mkdir = mkdir, \
	.open = sys_open, \
	.read = read, \
	.write = write, \
	.close = close, \
	.dup2 = dup2, \
	.ioctl = sys_ioctl, \
	.socket = socket, \
	.finit_module = sys_finit_module, \
	.reboot = sys_reboot, \
	.sync = sync, \
	.tcdrain = tcdrain, \
	.getrandom = sys_getrandom, \
	.listdir = sys_listdir, \
	.sleep_ms = sys_sleep_ms, \
	.now_ms = sys_now_ms, \
	.configure_nic = no_dhcp, \
	.userdata = no_userdata, \
}

struct init_sys init_sys = INIT_SYS_REAL;

void init_sys_reset(void)
{
	const struct init_sys real = INIT_SYS_REAL;

	init_sys = real;
}

/* ---- small helpers ---- */

static int say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return 0;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return 0;
}

/* At most 32 bytes of s, unprintable bytes as '?', for messages (invariant 4). */
static void quote(char *out, size_t cap, const char *s, size_t n)
{
	size_t i, k = 0, lim = n < 32 ? n : 32;

	for (i = 0; i < lim && k + 1 < cap; i++)
		out[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (n > lim && k + 4 < cap) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	if (cap)
		out[k] = 0;
}

/* Write all of s to fd (the console); errors are ignored, there is nowhere to report them. */
static void put(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = init_sys.write(fd, s, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/*
 * Read a whole file of at most max bytes into *out (malloc'd, NUL added,
 * not counted in *len).  0, -errno, or SL_E_TOOBIG when it holds more.
 */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	char *buf = malloc(max + 1);
	size_t got = 0;
	int fd, rc = 0;

	*out = NULL;
	*len = 0;
	if (!buf)
		return SL_E_NOMEM;
	fd = init_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd == -1) {
		rc = -errno;
		free(buf);
		return rc;
	}
	for (;;) {
		/* Ask for one byte past max, to see whether the file is larger. */
		ssize_t r = init_sys.read(fd, buf + got, max + 1 - got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > max) {
			rc = SL_E_TOOBIG;
			break;
		}
	}
	init_sys.close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[got] = 0;
	*out = buf;
	*len = got;
	return 0;
}

/* The next line of r, without its '\n' and surrounding blanks; 0 at the end. */
static int next_line(struct sl_rd *r, const char **line, size_t *n)
{
	const uint8_t *p;
	size_t k = 0, left = rd_left(r);
	const char *s;

	if (!left)
		return 0;
	while (k < left && r->p[r->off + k] != '\n')
		k++;
	if (rd_bytes(r, k, &p) != 0)
		return 0;
	if (rd_left(r) && rd_skip(r, 1) != 0)
		return 0;
	s = (const char *)p;
	while (k && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r')) {
		s++;
		k--;
	}
	while (k && (s[k - 1] == ' ' || s[k - 1] == '\t' || s[k - 1] == '\r'))
		k--;
	*line = s;
	*n = k;
	return 1;
}

/* ---- signals ---- */

void init_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Ctrl-alt-del then sends SIGINT to PID 1 instead of rebooting at
	 * once; the broker stops cleanly on it like on SIGTERM.  The signals
	 * are blocked, not ignored, and so are queued for PID 1 even though
	 * it has no handler (the kernel drops only unblocked signals with the
	 * default action for init), until the broker's signalfd reads them.
	 */
	if (init_sys.reboot(RB_DISABLE_CAD) == -1)
		log_warn("init", "cannot hand ctrl-alt-del to PID 1: %s", strerror(errno));
}

/* ---- mounts and the console ---- */

struct init_mount {
	const char *type, *target, *data;
	unsigned long flags;
};

static const struct init_mount init_dev = { "devtmpfs", "/dev", "mode=0755", MS_NOSUID };

static const struct init_mount init_mount_table[] = {
	{ "proc", "/proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC },
	{ "sysfs", "/sys", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC },
	{ "tmpfs", "/tmp", "mode=1777", MS_NOSUID | MS_NODEV },
	{ "tmpfs", "/run", "mode=0755", MS_NOSUID | MS_NODEV },
};

/* mkdir and mount; an existing mount (EBUSY) counts as done.  0 or -errno. */
static int mount_one(const struct init_mount *m)
{
	if (init_sys.mkdir(m->target, 0755) == -1 && errno != EEXIST)
		return -errno;
	if (init_sys.mount(m->type, m->target, m->type, m->flags, m->data) == -1 && errno != EBUSY)
		return -errno;
	return 0;
}

/* /dev/console as stdin, stdout and stderr: where every log line goes. */
static int console(void)
{
	int fd = init_sys.open("/dev/console", O_RDWR | O_NOCTTY, 0);

	if (fd == -1)
		return -errno;
	for (int i = 0; i < 3; i++) {
		if (fd != i && init_sys.dup2(fd, i) == -1) {
			int rc = -errno;

			if (fd > 2)
				init_sys.close(fd);
			return rc;
		}
	}
	if (fd > 2)
		init_sys.close(fd);
	return 0;
}

int init_mounts(char *why, size_t whylen)
{
	int rc, crc;
	size_t i;

	/*
	 * /dev first: the console lives there, and until it is open a log
	 * line may go nowhere (an initramfs without /dev/console gives PID 1
	 * no descriptors at all).
	 */
	rc = mount_one(&init_dev);
	crc = console();
	if (rc) {
		say(why, whylen, "cannot mount devtmpfs on /dev: %s", sl_strerror(rc));
		return rc;
	}
	if (crc)
		log_warn("init", "cannot open /dev/console: %s; logs may go nowhere", sl_strerror(crc));
	for (i = 0; i < sizeof(init_mount_table) / sizeof(init_mount_table[0]); i++) {
		const struct init_mount *m = &init_mount_table[i];

		rc = mount_one(m);
		if (rc) {
			say(why, whylen, "cannot mount %s on %s: %s", m->type, m->target, sl_strerror(rc));
			return rc;
		}
	}
	return 0;
}

/* ---- kernel modules ---- */

static void load_module(const char *line, size_t n, struct init_modstats *st)
{
	char path[512], name[128];
	const char *base;
	size_t blen;
	int fd, rc;

	if (line[0] == '/')
		rc = snprintf(path, sizeof(path), "%.*s", (int)n, line);
	else
		rc = snprintf(path, sizeof(path), "%s/%.*s", INIT_MODULE_DIR, (int)n, line);
	if (rc < 0 || (size_t)rc >= sizeof(path)) {
		quote(name, sizeof(name), line, n);
		log_error("init", "module %s: path too long", name);
		st->failed++;
		return;
	}
	/* The name is the file's, less ".ko": what lsmod would show. */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	blen = strlen(base);
	if (blen > 3 && strcmp(base + blen - 3, ".ko") == 0)
		blen -= 3;
	quote(name, sizeof(name), base, blen);

	fd = init_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd == -1) {
		log_error("init", "module %s: cannot open %s: %s", name, path, strerror(errno));
		st->failed++;
		return;
	}
	if (init_sys.finit_module(fd, "", 0) == 0) {
		log_debug("init", "module %s loaded", name);
		st->loaded++;
	} else if (errno == EEXIST) {
		log_debug("init", "module %s already loaded", name);
		st->present++;
	} else {
		log_error("init", "module %s: cannot load %s: %s", name, path, strerror(errno));
		st->failed++;
	}
	init_sys.close(fd);
}

int init_load_modules(const char *list, struct init_modstats *st)
{
	struct sl_rd r;
	const char *line;
	char *text;
	size_t len, n;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = read_file(list, INIT_CONFIG_MAX, &text, &len);
	if (rc == -ENOENT) {
		log_info("init", "no %s: loading no kernel modules", list);
		return 0;
	}
	if (rc) {
		log_error("init", "cannot read %s: %s; loading no kernel modules", list, sl_strerror(rc));
		return 0;
	}
	rd_init(&r, text, len);
	while (next_line(&r, &line, &n)) {
		if (!n || line[0] == '#')
			continue;
		load_module(line, n, st);
	}
	free(text);
	if (st->failed)
		log_warn("init", "kernel modules: %u loaded, %u already there, %u failed (named above)",
			 st->loaded, st->present, st->failed);
	else
		log_info("init", "kernel modules: %u loaded, %u already there", st->loaded, st->present);
	return 0;
}

/* ---- the random pool ---- */

int init_wait_random(uint64_t poll_ms)
{
	uint64_t start = init_sys.now_ms();
	uint8_t b[16];
	ssize_t r;

	for (;;) {
		r = init_sys.getrandom(b, sizeof(b), GRND_NONBLOCK);
		if (r > 0)
			return 0;
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno != EAGAIN) {
			/* ENOSYS on kernels before 3.17: nothing to wait with. */
			log_warn("init", "cannot ask whether the random pool is ready: %s", strerror(errno));
			return -errno;
		}
		if (init_sys.now_ms() - start >= poll_ms)
			break;
		init_sys.sleep_ms(20);
	}
	/*
	 * Nothing seeded the pool (no RDRAND, no virtio-rng).  Polling would
	 * wait for interrupts to trickle in, minutes under emulation; a
	 * blocking getrandom instead makes the kernel gather entropy from CPU
	 * timing jitter, which takes about a second.
	 */
	log_info("init", "the kernel's random pool is not ready (no RDRAND or virtio-rng?); "
		 "waiting for it to gather entropy from CPU timing jitter");
	do
		r = init_sys.getrandom(b, sizeof(b), 0);
	while (r == -1 && errno == EINTR);
	if (r == -1) {
		log_warn("init", "waiting for the random pool failed: %s", strerror(errno));
		return -errno;
	}
	log_info("init", "random pool ready after %" PRIu64 " ms", init_sys.now_ms() - start);
	return 0;
}

/* ---- network ---- */

int init_loopback(void)
{
	struct ifreq ifr;
	int s, rc = 0;

	s = init_sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s == -1)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (init_sys.ioctl(s, SIOCGIFFLAGS, &ifr) == -1) {
		rc = -errno;
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (init_sys.ioctl(s, SIOCSIFFLAGS, &ifr) == -1)
		rc = -errno;
out:
	init_sys.close(s);
	return rc;
}

struct nic_pick {
	char best[IFNAMSIZ];
};

static void pick_nic(const char *name, void *arg)
{
	struct nic_pick *p = arg;

	if (strcmp(name, "lo") == 0 || strlen(name) >= IFNAMSIZ)
		return;
	if (!p->best[0] || strcmp(name, p->best) < 0)
		snprintf(p->best, sizeof(p->best), "%s", name);
}

int init_first_nic(char *name, size_t cap, uint64_t wait_ms)
{
	uint64_t start = init_sys.now_ms();
	struct nic_pick p;

	for (;;) {
		memset(&p, 0, sizeof(p));
		if (init_sys.listdir("/sys/class/net", pick_nic, &p) == 0 && p.best[0]) {
			snprintf(name, cap, "%s", p.best);
			return 0;
		}
		/* Drivers probe after their module loads; give the NIC a moment. */
		if (init_sys.now_ms() - start >= wait_ms)
			return SL_E_NOTFOUND;
		init_sys.sleep_ms(50);
	}
}

static void write_hosts(void)
{
	static const char hosts[] = "127.0.0.1\tlocalhost\n::1\tlocalhost\n";
	int fd;

	if (init_sys.mkdir("/etc", 0755) == -1 && errno != EEXIST)
		goto fail;
	fd = init_sys.open("/etc/hosts", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		goto fail;
	if (init_sys.write(fd, hosts, sizeof(hosts) - 1) != (ssize_t)(sizeof(hosts) - 1)) {
		init_sys.close(fd);
		goto fail;
	}
	init_sys.close(fd);
	return;
fail:
	log_warn("init", "cannot write /etc/hosts: %s", strerror(errno));
}

int init_network(char *why, size_t whylen)
{
	char nic[IFNAMSIZ], dwhy[256];
	int rc;

	rc = init_loopback();
	if (rc) {
		say(why, whylen, "cannot bring up the loopback interface: %s", sl_strerror(rc));
		return rc;
	}
	write_hosts();
	if (init_first_nic(nic, sizeof(nic), INIT_NIC_WAIT_MS) != 0) {
		log_warn("init", "no network interface besides lo (is its driver in "
			 INIT_MODULE_LIST "?): the broker is reachable only from this machine");
		return 0;
	}
	dwhy[0] = 0;
	rc = init_sys.configure_nic(nic, INIT_DHCP_TIMEOUT_MS, dwhy, sizeof(dwhy));
	if (rc == SL_E_NOTFOUND) {
		log_warn("init", "%s left down: %s", nic, dwhy);
		return 0;
	}
	if (rc) {
		say(why, whylen, "cannot configure %s with DHCP: %s", nic,
		    dwhy[0] ? dwhy : sl_strerror(rc));
		return rc;
	}
	return 0;
}

/* ---- configuration sources ---- */

/* 0..63 for a base64 letter, -1 otherwise. */
static int b64_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int init_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
		       char *why, size_t whylen)
{
	struct sl_rd r;
	uint32_t acc = 0;
	size_t k = 0, bits = 0, letters = 0, pad = 0;
	uint8_t c;

	rd_init(&r, in, n);
	while (rd_u8(&r, &c) == 0) {
		int v;

		if (c == '=') {
			pad++;
			continue;
		}
		v = b64_value(c);
		if (v < 0 || pad) {
			say(why, whylen, "%s at offset %zu",
			    pad ? "a letter after '='" : "a character outside A-Z a-z 0-9 + / =",
			    r.off - 1);
			return SL_E_INVALID;
		}
		letters++;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k == cap) {
				say(why, whylen, "decodes to more than %zu bytes", cap);
				return SL_E_TOOBIG;
			}
			out[k++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/*
	 * A group of four letters makes three bytes; a last group of one
	 * letter cannot make any, and padding, when there is some, must
	 * complete the last group exactly.
	 */
	if (letters % 4 == 1 || (pad && (letters + pad) % 4 != 0) || pad > 2) {
		say(why, whylen, "%zu letters and %zu '=' are not the length of any encoding",
		    letters, pad);
		return SL_E_INVALID;
	}
	*outlen = k;
	return 0;
}

/*
 * The next parameter of a kernel command line, as the kernel splits it:
 * separated by blanks, double quotes grouping (and removed from the value
 * when they surround it, or the part after '=').  *p and *n are the
 * parameter as written, quotes included.
 */
static int next_param(struct sl_rd *r, const char **p, size_t *n)
{
	const uint8_t *b;
	size_t k = 0, left;
	int quoted = 0;
	uint8_t c;

	while (rd_left(r)) {
		c = r->p[r->off];
		if (c != ' ' && c != '\t' && c != '\n')
			break;
		if (rd_skip(r, 1) != 0)
			return 0;
	}
	left = rd_left(r);
	if (!left)
		return 0;
	while (k < left) {
		c = r->p[r->off + k];
		if (c == '"')
			quoted = !quoted;
		else if (!quoted && (c == ' ' || c == '\t' || c == '\n'))
			break;
		k++;
	}
	if (rd_bytes(r, k, &b) != 0)
		return 0;
	*p = (const char *)b;
	*n = k;
	return 1;
}

int init_cmdline_config(const char *cmdline, size_t n, char **out, size_t *outlen, char *why,
			size_t whylen)
{
	static const char key[] = INIT_CMDLINE_KEY;
	const size_t klen = sizeof(key) - 1;
	struct sl_rd r;
	const char *p, *val = NULL;
	size_t k, vlen = 0, cap, got;
	char *buf, bwhy[128];
	int rc;

	*out = NULL;
	*outlen = 0;
	rd_init(&r, cmdline, n);
	while (next_param(&r, &p, &k)) {
		/* A quoted parameter: "sluice.config=..." */
		if (k >= 2 && p[0] == '"' && p[k - 1] == '"') {
			p++;
			k -= 2;
		}
		if (k < klen || memcmp(p, key, klen) != 0)
			continue;
		if (val) {
			say(why, whylen, "%s is given twice on the kernel command line", key);
			return SL_E_CONFIG;
		}
		val = p + klen;
		vlen = k - klen;
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
			val++;
			vlen -= 2;
		}
	}
	if (!val) {
		say(why, whylen, "no %s parameter", key);
		return SL_E_NOTFOUND;
	}
	/* Capped before allocating (invariant 4): 4 letters make at most 3 bytes. */
	cap = vlen / 4 * 3 + 3;
	if (cap > INIT_CONFIG_MAX)
		cap = INIT_CONFIG_MAX;
	buf = malloc(cap + 1);
	if (!buf) {
		say(why, whylen, "out of memory");
		return SL_E_NOMEM;
	}
	rc = init_base64_decode(val, vlen, (uint8_t *)buf, cap, &got, bwhy, sizeof(bwhy));
	if (rc) {
		if (rc == SL_E_TOOBIG)
			say(why, whylen, "%s decodes to more than %d bytes", key, INIT_CONFIG_MAX);
		else
			say(why, whylen, "%s is not base64: %s", key, bwhy);
		free(buf);
		return SL_E_CONFIG;
	}
	buf[got] = 0;
	*out = buf;
	*outlen = got;
	return 0;
}

int init_source_cmdline(char **data, size_t *len, char *why, size_t whylen)
{
	char *text;
	size_t n;
	int rc;

	*data = NULL;
	*len = 0;
	/* x86 allows 2 KiB of command line; other machines more, none near this. */
	rc = read_file(INIT_CMDLINE, INIT_CONFIG_MAX * 2, &text, &n);
	if (rc) {
		say(why, whylen, "cannot read %s: %s", INIT_CMDLINE, sl_strerror(rc));
		return rc == SL_E_TOOBIG ? SL_E_CONFIG : SL_E_NOTFOUND;
	}
	rc = init_cmdline_config(text, n, data, len, why, whylen);
	free(text);
	return rc;
}

/* Decimal digits (then blanks) into *v; 0 or SL_E_INVALID. */
static int parse_size(const char *s, size_t n, uint64_t *v)
{
	size_t i = 0;

	*v = 0;
	if (!n || s[0] < '0' || s[0] > '9')
		return SL_E_INVALID;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (*v > (UINT64_MAX - 9) / 10)
			return SL_E_INVALID;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	for (; i < n; i++)
		if (s[i] != '\n' && s[i] != ' ')
			return SL_E_INVALID;
	return 0;
}

int init_source_fwcfg(char **data, size_t *len, char *why, size_t whylen)
{
	char *text = NULL, *buf = NULL, q[48];
	uint64_t size;
	size_t n, got = 0;
	int fd, rc;

	*data = NULL;
	*len = 0;
	fd = init_sys.open(INIT_FWCFG_DEV, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd == -1) {
		say(why, whylen, "no fw_cfg device (not QEMU, or qemu_fw_cfg.ko not loaded)");
		return SL_E_NOTFOUND;
	}
	init_sys.close(fd);
	rc = read_file(INIT_FWCFG_ITEM "/size", 32, &text, &n);
	if (rc == -ENOENT) {
		say(why, whylen, "no item opt/sluice/config");
		return SL_E_NOTFOUND;
	}
	if (rc) {
		say(why, whylen, "cannot read the size of opt/sluice/config: %s", sl_strerror(rc));
		return SL_E_CONFIG;
	}
	rc = parse_size(text, n, &size);
	quote(q, sizeof(q), text, n);
	free(text);
	if (rc) {
		say(why, whylen, "opt/sluice/config has a size of '%s'", q);
		return SL_E_CONFIG;
	}
	if (size > INIT_CONFIG_MAX) {
		say(why, whylen, "opt/sluice/config holds %" PRIu64 " bytes, above the limit of %d",
		    size, INIT_CONFIG_MAX);
		return SL_E_CONFIG;
	}
	buf = malloc((size_t)size + 1);
	if (!buf) {
		say(why, whylen, "out of memory");
		return SL_E_NOMEM;
	}
	fd = init_sys.open(INIT_FWCFG_ITEM "/raw", O_RDONLY | O_CLOEXEC, 0);
	if (fd == -1) {
		rc = -errno;
		say(why, whylen, "cannot open opt/sluice/config: %s", sl_strerror(rc));
		goto fail;
	}
	/*
	 * Each read of a fw_cfg item costs the kernel time in proportion to
	 * its offset, so ask for everything that is left every time: a few
	 * large reads, never many small ones.
	 */
	while (got < size) {
		ssize_t r = init_sys.read(fd, buf + got, (size_t)size - got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			rc = -errno;
			say(why, whylen, "cannot read opt/sluice/config: %s", sl_strerror(rc));
			break;
		}
		if (r == 0) {
			rc = SL_E_SHORT;
			say(why, whylen, "opt/sluice/config ended after %zu of its %" PRIu64 " bytes",
			    got, size);
			break;
		}
		got += (size_t)r;
	}
	init_sys.close(fd);
	if (rc)
		goto fail;
	buf[got] = 0;
	*data = buf;
	*len = got;
	return 0;
fail:
	free(buf);
	return SL_E_CONFIG;
}

static int source_userdata(char **data, size_t *len, char *why, size_t whylen)
{
	int rc;

	*data = NULL;
	*len = 0;
	rc = init_sys.userdata(data, len, INIT_CONFIG_MAX, why, whylen);
	if (rc == 0 || rc == SL_E_NOTFOUND)
		return rc;
	if (rc == SL_E_TOOBIG)
		say(why, whylen, "user-data is larger than %d bytes", INIT_CONFIG_MAX);
	free(*data);
	*data = NULL;
	return SL_E_CONFIG;
}

struct init_source {
	const char *name;	/* for the list of sources tried */
	const char *parse_name;	/* for the parser's messages: "NAME:LINE: ..." */
	int (*get)(char **data, size_t *len, char *why, size_t whylen);
};

static const struct init_source init_sources[] = {
	{ "kernel command line (" INIT_CMDLINE_KEY "<base64>)", "sluice.config", init_source_cmdline },
	{ "QEMU fw_cfg opt/sluice/config", "fw_cfg opt/sluice/config", init_source_fwcfg },
	{ "EC2 user-data over IMDSv2", "user-data", source_userdata },
};

int init_find_config(struct config *cfg, const char **source, char *why, size_t whylen)
{
	char tried[1024], swhy[512];
	size_t used = 0, i;
	int rc;

	tried[0] = 0;
	for (i = 0; i < sizeof(init_sources) / sizeof(init_sources[0]); i++) {
		const struct init_source *s = &init_sources[i];
		char *data = NULL;
		size_t len = 0;
		int w;

		swhy[0] = 0;
		rc = s->get(&data, &len, swhy, sizeof(swhy));
		if (rc == SL_E_NOTFOUND) {
			w = snprintf(tried + used, sizeof(tried) - used, "\n  %zu. %s: %s", i + 1,
				     s->name, swhy[0] ? swhy : "nothing there");
			if (w > 0)
				used += (size_t)w < sizeof(tried) - used ? (size_t)w : sizeof(tried) - used - 1;
			continue;
		}
		if (rc) {
			say(why, whylen, "configuration error: %s: %s", s->name,
			    swhy[0] ? swhy : sl_strerror(rc));
			return SL_E_CONFIG;
		}
		*source = s->name;
		if (len == 0)
			log_warn("init", "the configuration from %s is empty: every key at its default",
				 s->name);
		rc = config_parse(cfg, data, len, s->parse_name, swhy, sizeof(swhy));
		free(data);
		if (rc == 0)
			rc = config_validate(cfg, swhy, sizeof(swhy));
		if (rc) {
			say(why, whylen, "configuration error in %s: %s", s->name, swhy);
			return SL_E_CONFIG;
		}
		return 0;
	}
	say(why, whylen, "no configuration found; tried, in order:%s\n"
	    "Give one as a properties file (docs/CONFIG.md) through any of these.", tried);
	return SL_E_NOTFOUND;
}

/* ---- the boot ---- */

int init_boot(struct config *cfg, char *why, size_t whylen)
{
	struct init_modstats ms;
	struct listener_addr la;
	const char *source = NULL;
	enum log_level lvl;
	int rc;

	rc = init_mounts(why, whylen);
	if (rc)
		return rc;
	log_info("init", "PID 1: mounts and console ready");
	(void)init_load_modules(INIT_MODULE_LIST, &ms);
	(void)init_wait_random(INIT_RANDOM_POLL_MS);
	rc = init_network(why, whylen);
	if (rc)
		return rc;
	rc = config_init(cfg);
	if (rc) {
		say(why, whylen, "cannot initialise the configuration: %s", sl_strerror(rc));
		return rc;
	}
	rc = init_find_config(cfg, &source, why, whylen);
	if (rc) {
		config_free(cfg);
		return rc;
	}
	if (log_parse_level(cfg->log_level, &lvl) == 0)
		log_set_level(lvl);
	log_info("init", "configuration from %s", source);
	if (config_parse_listener(cfg->listeners, &la) == 0 &&
	    (strncmp(la.host, "127.", 4) == 0 || strcmp(la.host, "::1") == 0 ||
	     strcmp(la.host, "localhost") == 0))
		log_warn("init", "listeners is %s: clients outside this machine cannot connect "
			 "(PLAINTEXT://0.0.0.0:9092 listens on every address)", cfg->listeners);
	return 0;
}

void init_boot_or_poweroff(struct config *cfg)
{
	char why[2048];

	why[0] = 0;
	if (init_boot(cfg, why, sizeof(why)) != 0)
		init_fatal(why[0] ? why : "the boot failed");
}

/* ---- the ways out ---- */

void init_poweroff(const char *why)
{
	log_info("init", "powering off: %s", why);
	init_sys.sync();
	/* Let the serial port send what it holds: the last lines are the ones that matter. */
	init_sys.tcdrain(2);
	init_sys.reboot(RB_POWER_OFF);
	/* Still here: PID 1 must not exit (the kernel would panic), so wait forever. */
	log_error("init", "cannot power off: %s", strerror(errno));
	for (;;)
		init_sys.sleep_ms(60000);
}

void init_fatal(const char *why)
{
	static const char head[] = "\nsluice: ======== not starting ========\n";
	static const char tail[] = "sluice: powering off\n\n";
	const char *p = why, *nl;

	put(2, head, sizeof(head) - 1);
	/* Every line of why on its own console line, each marked as ours. */
	do {
		nl = strchr(p, '\n');
		put(2, "sluice: ", 8);
		put(2, p, nl ? (size_t)(nl - p) : strlen(p));
		put(2, "\n", 1);
		p = nl ? nl + 1 : NULL;
	} while (p);
	put(2, tail, sizeof(tail) - 1);
	init_poweroff("not started");
}

/* ---- around the broker ---- */

int init_wait_path(const char *path, uint64_t wait_ms)
{
	uint64_t start = init_sys.now_ms();
	int logged = 0;

	for (;;) {
		int fd = init_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
		int rc;

		if (fd != -1) {
			init_sys.close(fd);
			return 0;
		}
		rc = -errno;
		if (init_sys.now_ms() - start >= wait_ms)
			return rc;
		if (!logged) {
			logged = 1;
			log_info("init", "waiting for %s to appear", path);
		}
		init_sys.sleep_ms(100);
	}
}

int init_device_blank(const char *path, int *blank)
{
	uint8_t buf[2 * 4096];
	size_t got = 0, i;
	int fd, rc = 0;

	*blank = 0;
	fd = init_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	while (got < sizeof(buf)) {
		ssize_t r = init_sys.read(fd, buf + got, sizeof(buf) - got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	init_sys.close(fd);
	if (rc || got < sizeof(buf))
		return rc;
	for (i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return 0;
	*blank = 1;
	return 0;
}

struct buttons {
	int *fds;
	int max, n;
};

static void try_button(const char *name, void *arg)
{
	struct buttons *b = arg;
	unsigned long bits[KEY_MAX / (8 * sizeof(unsigned long)) + 1];
	const size_t per = 8 * sizeof(unsigned long);
	char path[300], dev[64];
	int fd;

	if (b->n == b->max || strncmp(name, "event", 5) != 0)
		return;
	snprintf(path, sizeof(path), "/dev/input/%s", name);
	fd = init_sys.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd == -1)
		return;
	memset(bits, 0, sizeof(bits));
	if (init_sys.ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(bits)), bits) == -1 ||
	    !(bits[KEY_POWER / per] & (1UL << (KEY_POWER % per)))) {
		init_sys.close(fd);
		return;
	}
	memset(dev, 0, sizeof(dev));
	if (init_sys.ioctl(fd, EVIOCGNAME(sizeof(dev) - 1), dev) == -1)
		snprintf(dev, sizeof(dev), "?");
	log_info("init", "%s (%s) has a power key: pressing it stops the broker and powers off",
		 path, dev);
	b->fds[b->n++] = fd;
}

int init_power_buttons(int *fds, int max)
{
	struct buttons b = { fds, max, 0 };

	if (init_sys.listdir("/dev/input", try_button, &b) == -1 || b.n == 0)
		log_warn("init", "no power button device (are button.ko and evdev.ko in "
			 INIT_MODULE_LIST "?): stop the machine with SIGTERM or ctrl-alt-del");
	return b.n;
}

int init_power_pressed(int fd)
{
	struct input_event ev[16];
	int pressed = 0;

	for (;;) {
		ssize_t r = init_sys.read(fd, ev, sizeof(ev));

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (size_t i = 0; i < (size_t)r / sizeof(ev[0]); i++)
			if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1)
				pressed = 1;
		if ((size_t)r < sizeof(ev))
			break;
	}
	return pressed;
}

int init_reap(void)
{
	int n = 0, st;

	while (waitpid(-1, &st, WNOHANG) > 0)
		n++;
	return n;
}

static void on_deadline(int sig)
{
	/* Only async-signal-safe calls: the broker may be stuck anywhere. */
	static const char msg[] = "sluice: the shutdown took too long; powering off now\n";

	(void)!write(2, msg, sizeof(msg) - 1);
	sync();
	reboot(RB_POWER_OFF);
}

void init_shutdown_deadline(unsigned seconds)
{
	struct sigaction sa;
	sigset_t m;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_deadline;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigemptyset(&m);
	sigaddset(&m, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &m, NULL);
	alarm(seconds);
}
