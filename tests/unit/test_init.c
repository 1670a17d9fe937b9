/*
 * test_init.c - PID 1's duties against a fake machine: every call of
 * init_sys is replaced, so the boot runs here without mounting, loading
 * modules or powering anything off.
 *
 * The fake machine has a small in-memory file system (path -> bytes, with
 * a per-file cap on what one read returns, so short reads happen), records
 * mounts, module loads, reboots, syncs and everything written to the
 * console (fd 2 through init_sys.write), and has a clock that only sleep
 * moves.  Powering off jumps back into the test (longjmp from the fake
 * reboot), as the real machine would stop there.
 *
 * Checked: base64 and the kernel command line (sluice.config=, other
 * parameters ignored, quotes, bad base64, given twice); the order of the
 * configuration sources and what is said when none has one; the fw_cfg read
 * (size first, few large reads, caps, short items); modules in load-order
 * with EEXIST tolerated and failures logged by name; mounts and the
 * console; the random pool; loopback, the first NIC and DHCP; the whole
 * boot, and powering off with a plain message when there is no
 * configuration or a bad one; blank WAL devices; the power button; and
 * user-data over IMDSv2 (net/userdata.h): token first, 404 as none, the
 * token refused, no answer, too large, and through the source order.
 *
 * User-data comes over IMDSv2 from tests/unit/timds.h, a fake metadata
 * service on a loopback port that refuses any GET without a token.
 *
 * Log lines (log.c writes fd 2 itself) are caught by pointing the real
 * fd 2 at a file in build/test-init-tmp/ for the few checks that need them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <net/if.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>
#include "t.h"
#include "../../kernel/config.h"
#include "../../kernel/init.h"
#include "../../kernel/log.h"
#include "../../kernel/loop.h"
#include "../../net/userdata.h"
#include "timds.h"

#define TMP "build/test-init-tmp"

/* ---- the fake machine ---- */

#define MAXF 32
#define MAXFD 16
#define FD0 100

struct ffile {
	char path[128];
	const void *data;
	size_t len;
	size_t max_read;	/* 0: no cap */
	int open_err;		/* errno for open, 0 = opens */
	int finit_err;		/* errno for finit_module of this file */
	int power;		/* an input device with KEY_POWER */
	char wbuf[256];		/* what was written to it */
	size_t wlen;
	unsigned reads;		/* read calls, every open together */
	size_t first_ask;	/* n of the first read */
};

struct ffd {
	struct ffile *f;
	size_t off;
};

static struct {
	struct ffile files[MAXF];
	int nfiles;
	struct ffd fds[MAXFD];

	char console[8192];
	size_t conlen;

	char mounts[512];	/* "type:target " in call order */
	char mount_fail[32];	/* target whose mount fails */
	int mount_errno;
	int dup2_to[8];
	int ndup2;

	char modules[512];	/* paths given to finit_module, in order */

	int reboots[8];
	int nreboots;
	int sync_seq, drain_seq, reboot_seq, seq;
	jmp_buf *off;		/* where powering off jumps to */

	int random_eagain;	/* getrandom fails with EAGAIN this many times */
	int random_errno;	/* or always with this errno */
	unsigned random_calls;
	unsigned random_blocking;	/* calls without GRND_NONBLOCK */

	uint64_t now;

	const char *dirs[4];	/* "dir" */
	const char *entries[4][6];	/* its names */
	int ndirs;
	int listdir_empty_calls;	/* /sys/class/net shows only lo this many times */

	int lo_flags;		/* what SIOCSIFFLAGS set on lo */
	int lo_get, lo_set;

	char nic[IFNAMSIZ];
	int nic_rc;
	const char *nic_why;

	const char *userdata;
	int userdata_rc;
	int userdata_calls;
} m;

static struct ffile *add_file(const char *path, const void *data, size_t len)
{
	struct ffile *f = &m.files[m.nfiles++];

	if (m.nfiles > MAXF)
		abort();
	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->data = data;
	f->len = len;
	return f;
}

static struct ffile *add_text(const char *path, const char *text)
{
	return add_file(path, text, strlen(text));
}

static struct ffile *find_file(const char *path)
{
	for (int i = 0; i < m.nfiles; i++)
		if (strcmp(m.files[i].path, path) == 0)
			return &m.files[i];
	return NULL;
}

static void add_dir(const char *dir, const char *a, const char *b, const char *c, const char *d)
{
	int i = m.ndirs++;

	m.dirs[i] = dir;
	m.entries[i][0] = a;
	m.entries[i][1] = b;
	m.entries[i][2] = c;
	m.entries[i][3] = d;
	m.entries[i][4] = NULL;
}

static struct ffd *fd_of(int fd)
{
	if (fd < FD0 || fd >= FD0 + MAXFD || !m.fds[fd - FD0].f)
		return NULL;
	return &m.fds[fd - FD0];
}

static int f_open(const char *path, int flags, mode_t mode)
{
	struct ffile *f = find_file(path);

	if (!f && (flags & O_CREAT))
		f = add_file(path, NULL, 0);
	if (!f) {
		errno = ENOENT;
		return -1;
	}
	if (f->open_err) {
		errno = f->open_err;
		return -1;
	}
	for (int i = 0; i < MAXFD; i++) {
		if (!m.fds[i].f) {
			memset(&m.fds[i], 0, sizeof(m.fds[i]));
			m.fds[i].f = f;
			return FD0 + i;
		}
	}
	errno = EMFILE;
	return -1;
}

static ssize_t f_read(int fd, void *buf, size_t n)
{
	struct ffd *d = fd_of(fd);
	size_t k;

	if (!d) {
		errno = EBADF;
		return -1;
	}
	if (!d->f->reads++)
		d->f->first_ask = n;
	k = d->f->len - d->off;
	if (k > n)
		k = n;
	if (d->f->max_read && k > d->f->max_read)
		k = d->f->max_read;
	if (!k && d->f->power) {
		errno = EAGAIN;	/* an input device with nothing more to say */
		return -1;
	}
	memcpy(buf, (const char *)d->f->data + d->off, k);
	d->off += k;
	return (ssize_t)k;
}

static ssize_t f_write(int fd, const void *buf, size_t n)
{
	struct ffd *d;

	if (fd == 2) {
		size_t k = n < sizeof(m.console) - 1 - m.conlen ? n : sizeof(m.console) - 1 - m.conlen;

		memcpy(m.console + m.conlen, buf, k);
		m.conlen += k;
		m.console[m.conlen] = 0;
		return (ssize_t)n;
	}
	d = fd_of(fd);
	if (!d) {
		errno = EBADF;
		return -1;
	}
	if (n > sizeof(d->f->wbuf) - 1 - d->f->wlen)
		n = sizeof(d->f->wbuf) - 1 - d->f->wlen;
	memcpy(d->f->wbuf + d->f->wlen, buf, n);
	d->f->wlen += n;
	return (ssize_t)n;
}

static int f_close(int fd)
{
	struct ffd *d = fd_of(fd);

	if (fd == 50)
		return 0;	/* the socket */
	if (!d) {
		errno = EBADF;
		return -1;
	}
	d->f = NULL;
	return 0;
}

static unsigned open_fds(void)
{
	unsigned n = 0;

	for (int i = 0; i < MAXFD; i++)
		n += m.fds[i].f != NULL;
	return n;
}

static int f_dup2(int fd, int to)
{
	if (m.ndup2 < 8)
		m.dup2_to[m.ndup2++] = to;
	return to;
}

static int f_mount(const char *src, const char *target, const char *type, unsigned long flags,
		   const void *data)
{
	size_t n = strlen(m.mounts);

	snprintf(m.mounts + n, sizeof(m.mounts) - n, "%s:%s ", type, target);
	if (strcmp(target, m.mount_fail) == 0) {
		errno = m.mount_errno;
		return -1;
	}
	return 0;
}

static int f_mkdir(const char *path, mode_t mode)
{
	errno = EEXIST;
	return strcmp(path, "/proc") == 0 ? -1 : 0;
}

static int f_finit_module(int fd, const char *params, int flags)
{
	struct ffd *d = fd_of(fd);
	size_t n = strlen(m.modules);

	if (!d) {
		errno = EBADF;
		return -1;
	}
	snprintf(m.modules + n, sizeof(m.modules) - n, "%s ", d->f->path);
	if (d->f->finit_err) {
		errno = d->f->finit_err;
		return -1;
	}
	return 0;
}

static int f_reboot(int cmd)
{
	if (m.nreboots < 8)
		m.reboots[m.nreboots++] = cmd;
	if (cmd == (int)RB_POWER_OFF) {
		m.reboot_seq = ++m.seq;
		if (m.off)
			longjmp(*m.off, 1);
		abort();	/* a test powered off without expecting it */
	}
	return 0;
}

static void f_sync(void)
{
	m.sync_seq = ++m.seq;
}

static int f_tcdrain(int fd)
{
	m.drain_seq = ++m.seq;
	return 0;
}

static ssize_t f_getrandom(void *buf, size_t n, unsigned flags)
{
	m.random_calls++;
	if (!(flags & GRND_NONBLOCK)) {
		/* blocking: the kernel makes entropy, which the fake does at once */
		m.random_blocking++;
		memset(buf, 0x5a, n);
		return (ssize_t)n;
	}
	if (m.random_errno) {
		errno = m.random_errno;
		return -1;
	}
	if (m.random_eagain > 0) {
		m.random_eagain--;
		errno = EAGAIN;
		return -1;
	}
	memset(buf, 0x5a, n);
	return (ssize_t)n;
}

static int f_listdir(const char *dir, void (*fn)(const char *name, void *arg), void *arg)
{
	if (strcmp(dir, "/sys/class/net") == 0 && m.listdir_empty_calls > 0) {
		m.listdir_empty_calls--;
		fn("lo", arg);
		return 0;
	}
	for (int i = 0; i < m.ndirs; i++) {
		if (strcmp(m.dirs[i], dir) != 0)
			continue;
		for (int k = 0; m.entries[i][k]; k++)
			fn(m.entries[i][k], arg);
		return 0;
	}
	errno = ENOENT;
	return -1;
}

static void f_sleep_ms(unsigned ms)
{
	m.now += ms;
}

static uint64_t f_now_ms(void)
{
	return m.now;
}

static int f_socket(int domain, int type, int proto)
{
	return 50;
}

static int f_ioctl(int fd, unsigned long req, void *arg)
{
	struct ffd *d = fd_of(fd);

	if (fd == 50 && (req == SIOCGIFFLAGS || req == SIOCSIFFLAGS)) {
		struct ifreq *ifr = arg;

		if (strcmp(ifr->ifr_name, "lo") != 0) {
			errno = ENODEV;
			return -1;
		}
		if (req == SIOCGIFFLAGS) {
			m.lo_get++;
			ifr->ifr_flags = IFF_LOOPBACK;
		} else {
			m.lo_set++;
			m.lo_flags = ifr->ifr_flags;
		}
		return 0;
	}
	if (d && req == EVIOCGBIT(EV_KEY, (KEY_MAX / (8 * sizeof(unsigned long)) + 1) *
				  sizeof(unsigned long))) {
		unsigned long *bits = arg;
		const size_t per = 8 * sizeof(unsigned long);

		bits[KEY_A / per] |= 1UL << (KEY_A % per);
		if (d->f->power)
			bits[KEY_POWER / per] |= 1UL << (KEY_POWER % per);
		return 0;
	}
	if (d && req == EVIOCGNAME(63)) {
		snprintf(arg, 63, "%s", d->f->power ? "Power Button" : "AT keyboard");
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

static int f_configure_nic(const char *ifname, int timeout_ms, char *why, size_t whylen)
{
	snprintf(m.nic, sizeof(m.nic), "%s", ifname);
	if (m.nic_why)
		snprintf(why, whylen, "%s", m.nic_why);
	return m.nic_rc;
}

static int f_userdata(char **data, size_t *len, size_t max, char *why, size_t whylen)
{
	m.userdata_calls++;
	if (!m.userdata) {
		snprintf(why, whylen, "404: no user-data");
		return m.userdata_rc ? m.userdata_rc : SL_E_NOTFOUND;
	}
	*len = strlen(m.userdata);
	if (*len > max)
		return SL_E_TOOBIG;
	*data = strdup(m.userdata);
	return *data ? 0 : SL_E_NOMEM;
}

/* A fresh machine: no files, everything succeeds, nothing configured. */
static void machine(void)
{
	memset(&m, 0, sizeof(m));
	m.now = 1000;
	init_sys.mount = f_mount;
	init_sys.mkdir = f_mkdir;
	init_sys.open = f_open;
	init_sys.read = f_read;
	init_sys.write = f_write;
	init_sys.close = f_close;
	init_sys.dup2 = f_dup2;
	init_sys.ioctl = f_ioctl;
	init_sys.socket = f_socket;
	init_sys.finit_module = f_finit_module;
	init_sys.reboot = f_reboot;
	init_sys.sync = f_sync;
	init_sys.tcdrain = f_tcdrain;
	init_sys.getrandom = f_getrandom;
	init_sys.listdir = f_listdir;
	init_sys.sleep_ms = f_sleep_ms;
	init_sys.now_ms = f_now_ms;
	init_sys.configure_nic = f_configure_nic;
	init_sys.userdata = f_userdata;
	add_text("/dev/console", "");
}

/* ---- catching log lines (the real fd 2) ---- */

static int saved_stderr = -1;

static void catch_log(void)
{
	int fd = open(TMP "/log", O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd == -1)
		abort();
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* Stop catching; the lines caught into buf. */
static void caught(char *buf, size_t cap)
{
	int fd = open(TMP "/log", O_RDONLY);
	ssize_t n = fd == -1 ? 0 : read(fd, buf, cap - 1);

	buf[n > 0 ? n : 0] = 0;
	if (fd != -1)
		close(fd);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
}

/* ---- base64 and the command line ---- */

static void test_base64(void)
{
	uint8_t out[64];
	size_t n = 99;
	char why[128];

	T_EQ(init_base64_decode("", 0, out, sizeof(out), &n, why, sizeof(why)), 0);
	T_EQ(n, 0);
	T_EQ(init_base64_decode("c2x1aWNl", 8, out, sizeof(out), &n, why, sizeof(why)), 0);
	T_EQ(n, 6);
	T_MEMEQ(out, "sluice", 6);
	/* padded, and the same without its padding */
	T_EQ(init_base64_decode("c2x1aWNlLg==", 12, out, sizeof(out), &n, why, sizeof(why)), 0);
	T_EQ(n, 7);
	T_MEMEQ(out, "sluice.", 7);
	T_EQ(init_base64_decode("c2x1aWNlLg", 10, out, sizeof(out), &n, why, sizeof(why)), 0);
	T_EQ(n, 7);
	T_EQ(init_base64_decode("c2x1aWNlLjE=", 12, out, sizeof(out), &n, why, sizeof(why)), 0);
	T_EQ(n, 8);
	T_MEMEQ(out, "sluice.1", 8);
	/* every byte value survives */
	T_EQ(init_base64_decode("AP+A", 4, out, sizeof(out), &n, why, sizeof(why)), 0);
	T_EQ(n, 3);
	T_EQ(out[0], 0x00);
	T_EQ(out[1], 0xff);
	T_EQ(out[2], 0x80);

	/* bad letters are named with their offset */
	T_EQ(init_base64_decode("c2x1*WNl", 8, out, sizeof(out), &n, why, sizeof(why)), SL_E_INVALID);
	T_CHECK(strstr(why, "offset 4") != NULL);
	T_EQ(init_base64_decode("c2x1-WNl", 8, out, sizeof(out), &n, why, sizeof(why)), SL_E_INVALID);
	T_EQ(init_base64_decode("QQ==QQ==", 8, out, sizeof(out), &n, why, sizeof(why)), SL_E_INVALID);
	T_CHECK(strstr(why, "after '='") != NULL);
	/* lengths no encoder makes */
	T_EQ(init_base64_decode("c2x1a", 5, out, sizeof(out), &n, why, sizeof(why)), SL_E_INVALID);
	T_EQ(init_base64_decode("QQ=", 3, out, sizeof(out), &n, why, sizeof(why)), SL_E_INVALID);
	T_EQ(init_base64_decode("QUJD=", 5, out, sizeof(out), &n, why, sizeof(why)), SL_E_INVALID);
	T_EQ(init_base64_decode("Q===", 4, out, sizeof(out), &n, why, sizeof(why)), SL_E_INVALID);
	/* the output cap holds */
	T_EQ(init_base64_decode("c2x1aWNl", 8, out, 5, &n, why, sizeof(why)), SL_E_TOOBIG);
}

static void test_cmdline(void)
{
	/* "node.id=3\nnum.partitions=2\n" */
	static const char b64[] = "bm9kZS5pZD0zCm51bS5wYXJ0aXRpb25zPTIK";
	static const char want[] = "node.id=3\nnum.partitions=2\n";
	char line[512], why[256], *out = NULL;
	size_t n = 0;

	snprintf(line, sizeof(line), "BOOT_IMAGE=/vmlinuz console=ttyS0,115200 sluice.config.x=1 "
		 "xsluice.config=Zm9v sluice.config=%s quiet panic=10\n", b64);
	T_EQ(init_cmdline_config(line, strlen(line), &out, &n, why, sizeof(why)), 0);
	T_EQ(n, strlen(want));
	T_CHECK(out && strcmp(out, want) == 0);
	free(out);
	out = NULL;

	/* quoted, the kernel's two ways; first and last on the line */
	snprintf(line, sizeof(line), "\"sluice.config=%s\" ro", b64);
	T_EQ(init_cmdline_config(line, strlen(line), &out, &n, why, sizeof(why)), 0);
	T_CHECK(out && strcmp(out, want) == 0);
	free(out);
	out = NULL;
	snprintf(line, sizeof(line), "a=\"b c\" sluice.config=\"%s\"", b64);
	T_EQ(init_cmdline_config(line, strlen(line), &out, &n, why, sizeof(why)), 0);
	T_CHECK(out && strcmp(out, want) == 0);
	free(out);
	out = NULL;

	/* empty: a configuration, every key at its default */
	T_EQ(init_cmdline_config("sluice.config= x", 16, &out, &n, why, sizeof(why)), 0);
	T_EQ(n, 0);
	T_CHECK(out && out[0] == 0);
	free(out);
	out = NULL;

	/* absent: another source may have one */
	snprintf(line, sizeof(line), "console=ttyS0 sluice.config.x=%s", b64);
	T_EQ(init_cmdline_config(line, strlen(line), &out, &n, why, sizeof(why)), SL_E_NOTFOUND);
	T_CHECK(out == NULL);
	T_EQ(init_cmdline_config("", 0, &out, &n, why, sizeof(why)), SL_E_NOTFOUND);

	/* bad base64 is a configuration error that says where */
	T_EQ(init_cmdline_config("console=ttyS0 sluice.config=bm9k!S5pZD0z", 40, &out, &n, why,
				 sizeof(why)), SL_E_CONFIG);
	T_CHECK(out == NULL);
	T_CHECK(strstr(why, "sluice.config= is not base64") != NULL);
	T_CHECK(strstr(why, "offset 4") != NULL);

	/* twice is ambiguous */
	snprintf(line, sizeof(line), "sluice.config=%s sluice.config=%s", b64, b64);
	T_EQ(init_cmdline_config(line, strlen(line), &out, &n, why, sizeof(why)), SL_E_CONFIG);
	T_CHECK(strstr(why, "twice") != NULL);
	T_CHECK(out == NULL);
}

/* ---- the sources ---- */

static const char FW_SIZE[] = "40\n";
static const char FW_RAW[] = "node.id=2\nsluice.cluster.id=from-fwcfg\n\n";	/* 40 bytes */

static void fwcfg_present(void)
{
	struct ffile *f;

	add_text(INIT_FWCFG_DEV, "");
	add_text(INIT_FWCFG_ITEM "/size", FW_SIZE);
	f = add_text(INIT_FWCFG_ITEM "/raw", FW_RAW);
	f->max_read = 16;	/* the kernel hands out a page at most; here less */
}

static void test_fwcfg(void)
{
	char why[256], *data = NULL;
	size_t n = 0;
	struct ffile *f;

	T_EQ(strlen(FW_RAW), 40);
	machine();
	T_EQ(init_source_fwcfg(&data, &n, why, sizeof(why)), SL_E_NOTFOUND);
	T_CHECK(strstr(why, "no fw_cfg device") != NULL);
	add_text(INIT_FWCFG_DEV, "");
	T_EQ(init_source_fwcfg(&data, &n, why, sizeof(why)), SL_E_NOTFOUND);
	T_CHECK(strstr(why, "no item opt/sluice/config") != NULL);

	machine();
	fwcfg_present();
	T_EQ(init_source_fwcfg(&data, &n, why, sizeof(why)), 0);
	T_EQ(n, 40);
	T_CHECK(data && memcmp(data, FW_RAW, 40) == 0 && data[40] == 0);
	free(data);
	data = NULL;
	/* size was read, and raw in reads that each asked for all that was left */
	f = find_file(INIT_FWCFG_ITEM "/raw");
	T_EQ(f->reads, 3);	/* 16 + 16 + 8 */
	T_EQ(f->first_ask, 40);
	f = find_file(INIT_FWCFG_ITEM "/size");
	T_EQ(f->first_ask, 33);	/* its cap of 32 bytes, plus one to see whether there is more */
	T_EQ(open_fds(), 0);

	/* an item larger than any configuration is refused before reading it */
	machine();
	fwcfg_present();
	find_file(INIT_FWCFG_ITEM "/size")->data = "70000\n";
	find_file(INIT_FWCFG_ITEM "/size")->len = 6;
	T_EQ(init_source_fwcfg(&data, &n, why, sizeof(why)), SL_E_CONFIG);
	T_CHECK(strstr(why, "70000 bytes") != NULL);
	T_EQ(find_file(INIT_FWCFG_ITEM "/raw")->reads, 0);

	/* shorter than its size says */
	machine();
	fwcfg_present();
	find_file(INIT_FWCFG_ITEM "/size")->data = "41\n";
	T_EQ(init_source_fwcfg(&data, &n, why, sizeof(why)), SL_E_CONFIG);
	T_CHECK(strstr(why, "ended after 40 of its 41 bytes") != NULL);
	T_CHECK(data == NULL);
	T_EQ(open_fds(), 0);

	/* a size that is not a number */
	machine();
	fwcfg_present();
	find_file(INIT_FWCFG_ITEM "/size")->data = "4x\n";
	T_EQ(init_source_fwcfg(&data, &n, why, sizeof(why)), SL_E_CONFIG);
	T_CHECK(strstr(why, "size of '4x?'") != NULL);
}

static const char CMDLINE_WITH[] = "console=ttyS0 sluice.config=bm9kZS5pZD0xCg== quiet\n"; /* node.id=1 */
static const char CMDLINE_WITHOUT[] = "console=ttyS0 quiet\n";

static void test_source_order(void)
{
	struct config c;
	const char *src = NULL;
	char why[2048];
	const char *a, *b, *d;

	/* all three: the command line wins, and nothing else is asked */
	machine();
	add_text(INIT_CMDLINE, CMDLINE_WITH);
	fwcfg_present();
	m.userdata = "node.id=3\n";
	T_EQ(config_init(&c), 0);
	T_EQ(init_find_config(&c, &src, why, sizeof(why)), 0);
	T_EQ(c.node_id, 1);
	T_CHECK(src && strstr(src, "kernel command line") != NULL);
	T_EQ(m.userdata_calls, 0);
	T_EQ(find_file(INIT_FWCFG_ITEM "/size")->reads, 0);
	T_EQ(find_file(INIT_FWCFG_ITEM "/raw")->reads, 0);
	config_free(&c);

	/* no sluice.config=: fw_cfg */
	machine();
	add_text(INIT_CMDLINE, CMDLINE_WITHOUT);
	fwcfg_present();
	m.userdata = "node.id=3\n";
	T_EQ(config_init(&c), 0);
	T_EQ(init_find_config(&c, &src, why, sizeof(why)), 0);
	T_EQ(c.node_id, 2);
	T_STR_EQ(c.cluster_id, "from-fwcfg");
	T_CHECK(src && strstr(src, "fw_cfg") != NULL);
	T_EQ(m.userdata_calls, 0);
	config_free(&c);

	/* no fw_cfg either: user-data */
	machine();
	add_text(INIT_CMDLINE, CMDLINE_WITHOUT);
	m.userdata = "node.id=3\n";
	T_EQ(config_init(&c), 0);
	T_EQ(init_find_config(&c, &src, why, sizeof(why)), 0);
	T_EQ(c.node_id, 3);
	T_CHECK(src && strstr(src, "user-data") != NULL);
	T_EQ(m.userdata_calls, 1);
	config_free(&c);

	/* none: every source named, in order, with what it said */
	machine();
	add_text(INIT_CMDLINE, CMDLINE_WITHOUT);
	T_EQ(config_init(&c), 0);
	T_EQ(init_find_config(&c, &src, why, sizeof(why)), SL_E_NOTFOUND);
	T_CHECK(strstr(why, "no configuration found") != NULL);
	a = strstr(why, "1. kernel command line (sluice.config=<base64>): no sluice.config= parameter");
	b = strstr(why, "2. QEMU fw_cfg opt/sluice/config: no fw_cfg device");
	d = strstr(why, "3. EC2 user-data over IMDSv2: 404: no user-data");
	T_CHECK(a && b && d && a < b && b < d);
	T_EQ(c.node_id, 0);
	config_free(&c);

	/* a source that has one, but broken, stops the search: no fallback past an error */
	machine();
	add_text(INIT_CMDLINE, "sluice.config=%%%\n");
	fwcfg_present();
	T_EQ(config_init(&c), 0);
	T_EQ(init_find_config(&c, &src, why, sizeof(why)), SL_E_CONFIG);
	T_CHECK(strstr(why, "sluice.config= is not base64") != NULL);
	config_free(&c);

	/* bad keys are reported with the source and line */
	machine();
	add_text(INIT_CMDLINE, CMDLINE_WITHOUT);
	m.userdata = "node.id=1\nnode.idd=2\n";
	T_EQ(config_init(&c), 0);
	T_EQ(init_find_config(&c, &src, why, sizeof(why)), SL_E_CONFIG);
	T_CHECK(strstr(why, "user-data:2: unknown key 'node.idd'") != NULL);
	config_free(&c);

	/* and cross-key checks run too */
	machine();
	add_text(INIT_CMDLINE, CMDLINE_WITHOUT);
	m.userdata = "advertised.listeners=PLAINTEXT://0.0.0.0:9092\n";
	T_EQ(config_init(&c), 0);
	T_EQ(init_find_config(&c, &src, why, sizeof(why)), SL_E_CONFIG);
	T_CHECK(strstr(why, "advertised.listeners") != NULL);
	config_free(&c);

	/* user-data too large for a configuration */
	machine();
	add_text(INIT_CMDLINE, CMDLINE_WITHOUT);
	{
		char *big = malloc(INIT_CONFIG_MAX + 2);

		memset(big, '#', INIT_CONFIG_MAX + 1);
		big[INIT_CONFIG_MAX + 1] = 0;
		m.userdata = big;
		T_EQ(config_init(&c), 0);
		T_EQ(init_find_config(&c, &src, why, sizeof(why)), SL_E_CONFIG);
		T_CHECK(strstr(why, "larger than") != NULL);
		config_free(&c);
		free(big);
	}
}

/* ---- modules ---- */

static void test_modules(void)
{
	struct init_modstats st;
	char log[4096];

	machine();
	add_text(INIT_MODULE_LIST, "# virtio first\n"
		 "virtio.ko\n"
		 "\n"
		 "/lib/modules/kernel/virtio_blk.ko\n"
		 "button.ko\r\n"
		 "missing.ko\n"
		 "  evdev.ko  ");
	add_text("/lib/modules/virtio.ko", "");
	add_text("/lib/modules/kernel/virtio_blk.ko", "")->finit_err = EEXIST;
	add_text("/lib/modules/button.ko", "")->finit_err = ENOEXEC;
	add_text("/lib/modules/evdev.ko", "");
	catch_log();
	T_EQ(init_load_modules(INIT_MODULE_LIST, &st), 0);
	caught(log, sizeof(log));
	T_STR_EQ(m.modules, "/lib/modules/virtio.ko /lib/modules/kernel/virtio_blk.ko "
		 "/lib/modules/button.ko /lib/modules/evdev.ko ");
	T_EQ(st.loaded, 2);
	T_EQ(st.present, 1);
	T_EQ(st.failed, 2);
	T_CHECK(strstr(log, "module button: cannot load /lib/modules/button.ko") != NULL);
	T_CHECK(strstr(log, "module missing: cannot open /lib/modules/missing.ko") != NULL);
	T_CHECK(strstr(log, "virtio_blk:") == NULL);	/* EEXIST is fine, and quiet */
	T_CHECK(strstr(log, "2 loaded, 1 already there, 2 failed") != NULL);
	T_EQ(open_fds(), 0);

	/* no list: no modules, and no error */
	machine();
	catch_log();
	T_EQ(init_load_modules(INIT_MODULE_LIST, &st), 0);
	caught(log, sizeof(log));
	T_EQ(st.loaded + st.present + st.failed, 0);
	T_STR_EQ(m.modules, "");
	T_CHECK(strstr(log, "loading no kernel modules") != NULL);
}

/* ---- mounts, random, network ---- */

static void test_mounts(void)
{
	char why[256];

	machine();
	m.mount_fail[0] = 0;
	T_EQ(init_mounts(why, sizeof(why)), 0);
	T_STR_EQ(m.mounts, "devtmpfs:/dev proc:/proc sysfs:/sys tmpfs:/tmp tmpfs:/run ");
	/* the console became fds 0, 1 and 2 */
	T_EQ(m.ndup2, 3);
	T_EQ(m.dup2_to[0], 0);
	T_EQ(m.dup2_to[1], 1);
	T_EQ(m.dup2_to[2], 2);
	T_EQ(open_fds(), 0);

	/* already mounted is fine */
	machine();
	snprintf(m.mount_fail, sizeof(m.mount_fail), "/proc");
	m.mount_errno = EBUSY;
	T_EQ(init_mounts(why, sizeof(why)), 0);

	/* anything else is fatal, and says what */
	machine();
	snprintf(m.mount_fail, sizeof(m.mount_fail), "/sys");
	m.mount_errno = EPERM;
	T_EQ(init_mounts(why, sizeof(why)), -EPERM);
	T_CHECK(strstr(why, "cannot mount sysfs on /sys") != NULL);

	/* without /dev, no console either; the error still comes back */
	machine();
	snprintf(m.mount_fail, sizeof(m.mount_fail), "/dev");
	m.mount_errno = ENODEV;
	T_EQ(init_mounts(why, sizeof(why)), -ENODEV);
	T_CHECK(strstr(why, "devtmpfs") != NULL);
}

static void test_random(void)
{
	char log[4096];

	machine();
	T_EQ(init_wait_random(1000), 0);
	T_EQ(m.random_calls, 1);
	T_EQ(m.random_blocking, 0);

	/* not ready at first: polled until it is */
	machine();
	m.random_eagain = 5;
	T_EQ(init_wait_random(1000), 0);
	T_EQ(m.random_calls, 6);
	T_EQ(m.random_blocking, 0);
	T_CHECK(m.now > 1000);

	/* not ready within the poll: one blocking call, said on the console */
	machine();
	m.random_eagain = 1 << 30;
	catch_log();
	T_EQ(init_wait_random(500), 0);
	caught(log, sizeof(log));
	T_CHECK(m.now - 1000 >= 500 && m.now - 1000 < 600);
	T_EQ(m.random_blocking, 1);
	T_CHECK(strstr(log, "gather entropy from CPU timing jitter") != NULL);
	T_CHECK(strstr(log, "random pool ready after") != NULL);

	/* a kernel without getrandom: nothing to wait with, and no blocking */
	machine();
	m.random_errno = ENOSYS;
	catch_log();
	T_EQ(init_wait_random(500), -ENOSYS);
	caught(log, sizeof(log));
	T_EQ(m.random_calls, 1);
	T_EQ(m.random_blocking, 0);
}

static void test_network(void)
{
	char why[256], nic[IFNAMSIZ];

	machine();
	add_dir("/sys/class/net", "lo", "eth1", "eth0", NULL);
	T_EQ(init_network(why, sizeof(why)), 0);
	T_EQ(m.lo_get, 1);
	T_EQ(m.lo_set, 1);
	T_CHECK(m.lo_flags & IFF_UP);
	T_CHECK(m.lo_flags & IFF_LOOPBACK);	/* the other flags kept */
	T_STR_EQ(m.nic, "eth0");
	T_CHECK(find_file("/etc/hosts") && strstr(find_file("/etc/hosts")->wbuf, "127.0.0.1\tlocalhost"));

	/* the NIC's driver probes late: waited for */
	machine();
	add_dir("/sys/class/net", "lo", "ens5", NULL, NULL);
	m.listdir_empty_calls = 3;
	T_EQ(init_first_nic(nic, sizeof(nic), 5000), 0);
	T_STR_EQ(nic, "ens5");
	T_EQ(m.now, 1150);

	/* none at all: not fatal, the broker runs on loopback */
	machine();
	add_dir("/sys/class/net", "lo", NULL, NULL, NULL);
	T_EQ(init_first_nic(nic, sizeof(nic), 5000), SL_E_NOTFOUND);
	T_CHECK(m.now - 1000 >= 5000);
	machine();
	add_dir("/sys/class/net", "lo", NULL, NULL, NULL);
	T_EQ(init_network(why, sizeof(why)), 0);
	T_STR_EQ(m.nic, "");

	/* no DHCP client in the build: the NIC stays down, the boot goes on */
	machine();
	add_dir("/sys/class/net", "lo", "eth0", NULL, NULL);
	m.nic_rc = SL_E_NOTFOUND;
	T_EQ(init_network(why, sizeof(why)), 0);

	/* DHCP that fails is fatal */
	machine();
	add_dir("/sys/class/net", "lo", "eth0", NULL, NULL);
	m.nic_rc = SL_E_TIMEOUT;
	m.nic_why = "no DHCPOFFER in 30 s";
	T_EQ(init_network(why, sizeof(why)), SL_E_TIMEOUT);
	T_CHECK(strstr(why, "cannot configure eth0 with DHCP: no DHCPOFFER in 30 s") != NULL);
}

/* ---- the whole boot ---- */

static void boot_machine(void)
{
	machine();
	add_dir("/sys/class/net", "lo", "eth0", NULL, NULL);
	add_text(INIT_CMDLINE, CMDLINE_WITHOUT);
}

static void test_boot(void)
{
	struct config c;
	char why[2048];

	boot_machine();
	fwcfg_present();
	add_text(INIT_MODULE_LIST, "virtio.ko\n");
	add_text("/lib/modules/virtio.ko", "");
	T_EQ(init_boot(&c, why, sizeof(why)), 0);
	T_EQ(c.node_id, 2);
	T_STR_EQ(c.cluster_id, "from-fwcfg");
	T_STR_EQ(m.mounts, "devtmpfs:/dev proc:/proc sysfs:/sys tmpfs:/tmp tmpfs:/run ");
	T_STR_EQ(m.modules, "/lib/modules/virtio.ko ");
	T_EQ(m.random_calls, 1);
	T_EQ(m.lo_set, 1);
	T_STR_EQ(m.nic, "eth0");
	T_EQ(m.nreboots, 0);
	T_EQ(open_fds(), 0);
	config_free(&c);
	log_set_level(LOG_INFO);
}

/* Run init_boot_or_poweroff; 1 when it powered off (jumping back here). */
static int boot_or_off(struct config *c)
{
	jmp_buf jb;
	volatile int off = 0;

	m.off = &jb;
	if (setjmp(jb) == 0)
		init_boot_or_poweroff(c);
	else
		off = 1;
	m.off = NULL;
	return off;
}

static void test_no_config_powers_off(void)
{
	struct config c;
	char log[4096];

	boot_machine();
	catch_log();
	T_EQ(boot_or_off(&c), 1);
	caught(log, sizeof(log));
	/* the console says plainly why, naming every source tried */
	T_CHECK(strstr(m.console, "sluice: ======== not starting ========\n") != NULL);
	T_CHECK(strstr(m.console, "sluice: no configuration found; tried, in order:\n") != NULL);
	T_CHECK(strstr(m.console, "sluice:   1. kernel command line") != NULL);
	T_CHECK(strstr(m.console, "sluice:   2. QEMU fw_cfg opt/sluice/config") != NULL);
	T_CHECK(strstr(m.console, "sluice:   3. EC2 user-data over IMDSv2") != NULL);
	T_CHECK(strstr(m.console, "sluice: powering off\n") != NULL);
	/* then: sync, drain the console, power off; nothing else */
	T_EQ(m.nreboots, 1);
	T_EQ(m.reboots[0], (int)RB_POWER_OFF);
	T_CHECK(m.sync_seq && m.sync_seq < m.drain_seq && m.drain_seq < m.reboot_seq);
	T_CHECK(strstr(log, "powering off") != NULL);
	T_EQ(open_fds(), 0);
}

static void test_bad_config_powers_off(void)
{
	struct config c;
	char log[4096];

	boot_machine();
	fwcfg_present();
	find_file(INIT_FWCFG_ITEM "/raw")->data = "node.id=2\nlisteners=PLAINTEXT://:x\n\n\n\n\n\n\n\n";
	catch_log();
	T_EQ(boot_or_off(&c), 1);
	caught(log, sizeof(log));
	T_CHECK(strstr(m.console, "sluice: configuration error in QEMU fw_cfg opt/sluice/config: "
		       "listeners: bad value") != NULL);
	T_EQ(m.nreboots, 1);
	T_EQ(m.reboots[0], (int)RB_POWER_OFF);

	/* DHCP failing powers off the same way */
	boot_machine();
	m.nic_rc = SL_E_TIMEOUT;
	m.nic_why = "no lease";
	catch_log();
	T_EQ(boot_or_off(&c), 1);
	caught(log, sizeof(log));
	T_CHECK(strstr(m.console, "sluice: cannot configure eth0 with DHCP: no lease\n") != NULL);
	T_EQ(m.nreboots, 1);
}

static void test_boot_with_config_runs(void)
{
	struct config c;

	boot_machine();
	m.userdata = "node.id=7\n";
	T_EQ(boot_or_off(&c), 0);
	T_EQ(c.node_id, 7);
	T_EQ(m.nreboots, 0);
	T_EQ(m.conlen, 0);
	config_free(&c);
}

static void test_signals(void)
{
	sigset_t now;

	machine();
	init_signals();
	T_EQ(m.nreboots, 1);
	T_EQ(m.reboots[0], (int)RB_DISABLE_CAD);
	sigprocmask(SIG_BLOCK, NULL, &now);
	T_CHECK(sigismember(&now, SIGTERM));
	T_CHECK(sigismember(&now, SIGINT));
	T_CHECK(sigismember(&now, SIGCHLD));
}

/* ---- around the broker ---- */

static void test_device_blank(void)
{
	static uint8_t dev[3 * 4096];
	int blank = -1;

	machine();
	add_file("/dev/vda", dev, sizeof(dev))->max_read = 4096;
	T_EQ(init_device_blank("/dev/vda", &blank), 0);
	T_EQ(blank, 1);
	T_EQ(open_fds(), 0);

	/* one byte in the second superblock slot: not blank */
	dev[4096 + 100] = 1;
	T_EQ(init_device_blank("/dev/vda", &blank), 0);
	T_EQ(blank, 0);
	dev[4096 + 100] = 0;
	/* past the superblocks does not matter */
	dev[2 * 4096] = 1;
	T_EQ(init_device_blank("/dev/vda", &blank), 0);
	T_EQ(blank, 1);

	/* too small to hold a WAL: not blank (opening it says why) */
	machine();
	add_file("/dev/vdb", dev, 4096);
	T_EQ(init_device_blank("/dev/vdb", &blank), 0);
	T_EQ(blank, 0);
	T_EQ(init_device_blank("/dev/vdc", &blank), -ENOENT);

	/* a device that appears late is waited for, within the bound */
	machine();
	add_file("/dev/vda", dev, sizeof(dev))->open_err = ENOENT;
	T_EQ(init_wait_path("/dev/vda", 1000), -ENOENT);
	T_CHECK(m.now - 1000 >= 1000);
	find_file("/dev/vda")->open_err = 0;
	T_EQ(init_wait_path("/dev/vda", 1000), 0);
	T_EQ(open_fds(), 0);
}

static void test_power_button(void)
{
	struct input_event press[3], other[2], release[1];
	int fds[4], n;

	memset(press, 0, sizeof(press));
	press[0].type = EV_MSC;
	press[1].type = EV_KEY;
	press[1].code = KEY_POWER;
	press[1].value = 1;
	press[2].type = EV_SYN;
	memset(other, 0, sizeof(other));
	other[0].type = EV_KEY;
	other[0].code = KEY_A;
	other[0].value = 1;
	other[1].type = EV_SYN;
	memset(release, 0, sizeof(release));
	release[0].type = EV_KEY;
	release[0].code = KEY_POWER;
	release[0].value = 0;

	machine();
	add_dir("/dev/input", "mice", "event0", "event1", "mouse0");
	add_file("/dev/input/event0", other, sizeof(other))->power = 0;
	add_file("/dev/input/event1", press, sizeof(press))->power = 1;
	add_file("/dev/input/mice", "", 0);
	n = init_power_buttons(fds, 4);
	T_EQ(n, 1);
	T_EQ(open_fds(), 1);	/* only the power button's stays open */
	T_EQ(init_power_pressed(fds[0]), 1);
	T_EQ(init_power_pressed(fds[0]), 0);	/* read once */
	f_close(fds[0]);

	/* another key, and releasing the power key, do nothing */
	machine();
	add_file("/dev/input/event0", other, sizeof(other))->power = 1;
	add_file("/dev/input/event1", release, sizeof(release))->power = 1;
	{
		int a = f_open("/dev/input/event0", O_RDONLY, 0);
		int b = f_open("/dev/input/event1", O_RDONLY, 0);

		T_EQ(init_power_pressed(a), 0);
		T_EQ(init_power_pressed(b), 0);
	}

	/* no input devices: said, and nothing to watch */
	machine();
	T_EQ(init_power_buttons(fds, 4), 0);
}

/* ---- user-data over IMDSv2 ---- */

static struct loop *UL;

/* init_sys.userdata for the tests: the fake service, on the test's loop. */
static int imds_userdata(char **data, size_t *len, size_t max, char *why, size_t whylen)
{
	return userdata_get(UL, FI.endpoint, max, 5000, data, len, why, whylen);
}

static void test_userdata_imds(void)
{
	char why[512], *data = NULL;
	size_t len = 0;
	int gets;

	init_sys_reset();
	UL = loop_new();
	fi_start(UL);

	/* none set: 404, asked for with a token */
	T_EQ(userdata_get(UL, FI.endpoint, 1024, 5000, &data, &len, why, sizeof(why)), SL_E_NOTFOUND);
	T_CHECK(data == NULL);
	T_CHECK(strstr(why, "404, no user-data set") != NULL);
	T_EQ(FI.puts, 1);
	T_EQ(FI.puts_without_ttl, 0);
	T_EQ(FI.gets, 1);
	T_STR_EQ(FI.last_path, "/latest/user-data");

	/* set: the bytes as the service sends them */
	snprintf(FI.user_data, sizeof(FI.user_data), "node.id=9\nsluice.cluster.id=ec2\n");
	T_EQ(userdata_get(UL, FI.endpoint, 1024, 5000, &data, &len, why, sizeof(why)), 0);
	T_EQ(len, strlen(FI.user_data));
	T_CHECK(data && strcmp(data, FI.user_data) == 0);
	free(data);
	data = NULL;
	T_EQ(FI.puts, 2);

	/* larger than a configuration may be */
	T_EQ(userdata_get(UL, FI.endpoint, 8, 5000, &data, &len, why, sizeof(why)), SL_E_TOOBIG);
	T_CHECK(data == NULL);

	/* the token refused (IMDS disabled, hop limit): none, saying so, and no GET without one */
	FI.token_status = 403;
	gets = FI.gets;
	T_EQ(userdata_get(UL, FI.endpoint, 1024, 5000, &data, &len, why, sizeof(why)), SL_E_NOTFOUND);
	T_CHECK(strstr(why, "HTTP 403") != NULL);
	T_EQ(FI.gets, gets);
	FI.token_status = 200;

	/* no answer at all: the deadline holds, and it counts as none */
	FI.stall = 1;
	T_EQ(userdata_get(UL, FI.endpoint, 1024, 300, &data, &len, why, sizeof(why)), SL_E_NOTFOUND);
	T_CHECK(strstr(why, "no answer from") != NULL);
	FI.stall = 0;

	/* nothing listening */
	T_EQ(userdata_get(UL, "http://127.0.0.1:1", 1024, 5000, &data, &len, why, sizeof(why)),
	     SL_E_NOTFOUND);
	T_CHECK(strstr(why, "not on EC2?") != NULL);

	/* a nonsense endpoint is a configuration error, not a missing source */
	T_EQ(userdata_get(UL, "ftp://x", 1024, 5000, &data, &len, why, sizeof(why)), SL_E_CONFIG);

	/* whatever happened, no GET went out without a token */
	T_EQ(FI.gets_without_token, 0);

	/* through the sources: the command line and fw_cfg have none, user-data wins */
	{
		struct config c;
		const char *src = NULL;
		char big[2048];

		machine();
		add_text(INIT_CMDLINE, CMDLINE_WITHOUT);
		init_sys.userdata = imds_userdata;
		T_EQ(config_init(&c), 0);
		T_EQ(init_find_config(&c, &src, big, sizeof(big)), 0);
		T_EQ(c.node_id, 9);
		T_STR_EQ(c.cluster_id, "ec2");
		T_CHECK(src && strstr(src, "user-data") != NULL);
		config_free(&c);

		FI.user_data[0] = 0;
		T_EQ(config_init(&c), 0);
		T_EQ(init_find_config(&c, &src, big, sizeof(big)), SL_E_NOTFOUND);
		T_CHECK(strstr(big, "3. EC2 user-data over IMDSv2: http://127.0.0.1:") != NULL);
		T_CHECK(strstr(big, "404, no user-data set") != NULL);
		config_free(&c);
	}
	fi_stop();
	loop_destroy(UL);
	UL = NULL;
	init_sys_reset();
}

int main(void)
{
	mkdir("build", 0755);
	mkdir(TMP, 0755);
	T_RUN(test_base64);
	T_RUN(test_cmdline);
	T_RUN(test_fwcfg);
	T_RUN(test_source_order);
	T_RUN(test_modules);
	T_RUN(test_mounts);
	T_RUN(test_random);
	T_RUN(test_network);
	T_RUN(test_boot);
	T_RUN(test_no_config_powers_off);
	T_RUN(test_bad_config_powers_off);
	T_RUN(test_boot_with_config_runs);
	T_RUN(test_signals);
	T_RUN(test_device_blank);
	T_RUN(test_power_button);
	T_RUN(test_userdata_imds);
	init_sys_reset();
	return t_done();
}
