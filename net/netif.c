/*
 * netif.c - loopback and the first NIC by DHCP, for PID 1 (see netif.h).
 *
 * Owns: the control socket (AF_INET, for ioctls), the DHCP socket and the
 * packet socket of one bring-up, all closed before netif_configure
 * returns; a renewer's DHCP socket, timer and (while it looks for a new
 * lease) packet socket, until netif_renew_stop.
 *
 * Every syscall goes through netif_sys, so tests can play the kernel and a
 * DHCP server (tests/unit/test_netif.c); only the reading of
 * /sys/class/net is plain file access, on a path the caller may move.
 *
 * Bring-up, with the deadline shared by every step:
 *
 *   lo up ─▶ pick NIC (wait for one) ─▶ NIC up ─▶ carrier? (≤ link_wait)
 *         ─▶ DHCP: dhcp_next/dhcp_input until BOUND ─▶ apply ─▶ log
 *
 * Invariants:
 *   1. A lease is applied only once the engine says BOUND, and always in
 *      one order: address, netmask, MTU, routes, resolv.conf.  A failure
 *      before the routes leaves no default route behind.
 *   2. resolv.conf is replaced by rename(2): a reader sees the old file or
 *      the new one, never half of one.  Its text comes only from values
 *      the engine checked (addresses, and names of label characters).
 *   3. The renewer never removes an address it did not apply, and removes
 *      the one it applied before applying another.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "netif.h"
#include "../kernel/log.h"

#define TAG "net"
#define NIC_POLL_MS 100		/* how often to look for a NIC still probing */
#define LINK_POLL_MS 50		/* how often to look for carrier */
#define RECV_BUF 2048		/* more than any reply we accept (DHCP_MAX_MSG) */

/* ---- the syscall table ---- */

static int sys_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg);
}

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static ssize_t sys_getrandom(void *buf, size_t n, unsigned flags)
{
	return getrandom(buf, n, flags);
}

static uint64_t sys_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct netif_sys netif_sys = {
	socket, sys_ioctl, setsockopt, bind, sendto, recvfrom, poll, close,
	mkdir, sys_open, write, rename, sys_getrandom, sys_now_ms
};

void netif_sys_reset(void)
{
	netif_sys.socket = socket;
	netif_sys.ioctl = sys_ioctl;
	netif_sys.setsockopt = setsockopt;
	netif_sys.bind = bind;
	netif_sys.sendto = sendto;
	netif_sys.recvfrom = recvfrom;
	netif_sys.poll = poll;
	netif_sys.close = close;
	netif_sys.mkdir = mkdir;
	netif_sys.open = sys_open;
	netif_sys.write = write;
	netif_sys.rename = rename;
	netif_sys.getrandom = sys_getrandom;
	netif_sys.now_ms = sys_now_ms;
}

#define SYS netif_sys

/* ---- small helpers ---- */

static void ifr_init(struct ifreq *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->ifr_name, sizeof(r->ifr_name), "%s", name);
}

static void sa_ip(struct sockaddr *sa, uint32_t ip)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(ip);
	memcpy(sa, &sin, sizeof(sin));
}

static void sin_init(struct sockaddr_in *sin, uint32_t ip, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(ip);
	sin->sin_port = htons(port);
}

/* Sleep ms through the table (poll with no descriptors). */
static void nap(int ms)
{
	(void)SYS.poll(NULL, 0, ms);
}

static int get_flags(int fd, const char *name, short *flags)
{
	struct ifreq r;

	ifr_init(&r, name);
	if (SYS.ioctl(fd, SIOCGIFFLAGS, &r) == -1)
		return -errno;
	*flags = r.ifr_flags;
	return 0;
}

/* name up (IFF_UP), unless it already is. */
static int link_up(int fd, const char *name)
{
	struct ifreq r;
	int rc;

	ifr_init(&r, name);
	if (SYS.ioctl(fd, SIOCGIFFLAGS, &r) == -1) {
		rc = -errno;
		log_error(TAG, "%s: cannot read its flags: %s", name, sl_strerror(rc));
		return rc;
	}
	if (r.ifr_flags & IFF_UP)
		return 0;
	r.ifr_flags |= IFF_UP;
	if (SYS.ioctl(fd, SIOCSIFFLAGS, &r) == -1) {
		rc = -errno;
		log_error(TAG, "%s: cannot bring it up: %s", name, sl_strerror(rc));
		return rc;
	}
	return 0;
}

/* Remaining milliseconds to deadline (0 = none: INT_MAX), at least 0. */
static int remaining(uint64_t deadline, uint64_t now)
{
	if (!deadline)
		return INT_MAX;
	if (now >= deadline)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* ---- choosing the NIC ---- */

/* The first line of sysfs/name/file as a number; -1 if unreadable. */
static long sysfs_num(const char *sysfs, const char *name, const char *file)
{
	char path[PATH_MAX], buf[32];
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s/%s", sysfs, name, file) >= (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int sysfs_has(const char *sysfs, const char *name, const char *file)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s/%s", sysfs, name, file) >= (int)sizeof(path))
		return 0;
	return stat(path, &st) == 0;
}

/* Lower is better; -1 = not a candidate (loopback, not Ethernet, gone). */
static int nic_rank(const char *sysfs, const char *name)
{
	static const char *const prefixes[] = { "eth", "ens", "enp", "eno", "enx" };
	int rank = 0;
	size_t i;

	if (strcmp(name, "lo") == 0 || strlen(name) >= IFNAMSIZ || name[0] == '.')
		return -1;
	if (sysfs_num(sysfs, name, "type") != ARPHRD_ETHER)
		return -1;
	if (!sysfs_has(sysfs, name, "device"))
		rank += 2;		/* virtual: bridge, dummy, veth */
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(name, prefixes[i], 3) == 0)
			break;
	if (i == sizeof(prefixes) / sizeof(prefixes[0]))
		rank += 1;
	return rank;
}

int netif_pick(const char *sysfs_net, char *name)
{
	DIR *d = opendir(sysfs_net);
	struct dirent *e;
	int best = -1;
	long best_idx = 0;

	if (!d)
		return SL_E_NOTFOUND;
	while ((e = readdir(d)) != NULL) {
		int rank = nic_rank(sysfs_net, e->d_name);
		long idx;

		if (rank < 0)
			continue;
		/* Ties go to the lower ifindex (probed first), then the name. */
		idx = sysfs_num(sysfs_net, e->d_name, "ifindex");
		if (best < 0 || rank < best ||
		    (rank == best && (idx < best_idx || (idx == best_idx && strcmp(e->d_name, name) < 0)))) {
			best = rank;
			best_idx = idx;
			snprintf(name, IFNAMSIZ, "%s", e->d_name);
		}
	}
	closedir(d);
	return best < 0 ? SL_E_NOTFOUND : 0;
}

/* ---- applying a lease ---- */

static int add_route(int fd, const char *ifname, uint32_t dst, uint32_t mask, uint32_t gw,
		     unsigned short flags)
{
	struct rtentry rt;
	char dev[IFNAMSIZ];

	memset(&rt, 0, sizeof(rt));
	snprintf(dev, sizeof(dev), "%s", ifname);
	sa_ip(&rt.rt_dst, dst);
	sa_ip(&rt.rt_genmask, mask);
	sa_ip(&rt.rt_gateway, gw);
	rt.rt_flags = flags;
	rt.rt_dev = dev;
	if (SYS.ioctl(fd, SIOCADDRT, &rt) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Append printf output to buf[*n..cap); 0, or SL_E_FULL when it does not fit. */
static int put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(buf + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= cap - *n)
		return SL_E_FULL;
	*n += (size_t)k;
	return 0;
}

int netif_resolv_conf(const char *ifname, const struct dhcp_lease *l, char *buf, size_t cap)
{
	size_t n = 0;
	unsigned i;
	char ip[16];
	int rc;

	if (cap == 0)
		return SL_E_FULL;
	buf[0] = '\0';
	if ((rc = put(buf, cap, &n, "# written by sluice from the DHCP lease on %s (server %s)\n", ifname,
		      dhcp_ip_str(l->server, ip))) != 0)
		return rc;
	if (l->search[0] && (rc = put(buf, cap, &n, "search %s\n", l->search)) != 0)
		return rc;
	for (i = 0; i < l->ndns && i < DHCP_MAX_DNS; i++)
		if ((rc = put(buf, cap, &n, "nameserver %s\n", dhcp_ip_str(l->dns[i], ip))) != 0)
			return rc;
	if (l->ndns == 0 && (rc = put(buf, cap, &n, "# the lease named no DNS server\n")) != 0)
		return rc;
	return (int)n;
}

static int write_resolv(const char *etc, const char *ifname, const struct dhcp_lease *l)
{
	char text[1024], path[PATH_MAX], tmp[PATH_MAX];
	size_t off = 0;
	int fd, len, rc = 0;

	len = netif_resolv_conf(ifname, l, text, sizeof(text));
	if (len < 0)
		return len;
	if (snprintf(path, sizeof(path), "%s/resolv.conf", etc) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.resolv.conf.new", etc) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if (SYS.mkdir(etc, 0755) == -1 && errno != EEXIST)
		return -errno;
	fd = SYS.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -errno;
	while (off < (size_t)len) {
		ssize_t w = SYS.write(fd, text + off, (size_t)len - off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w == -1 ? -errno : -EIO;
			break;
		}
		off += (size_t)w;
	}
	if (SYS.close(fd) == -1 && rc == 0)
		rc = -errno;
	if (rc == 0 && SYS.rename(tmp, path) == -1)
		rc = -errno;
	return rc;
}

int netif_apply(const char *ifname, const struct dhcp_lease *l, const char *etc, uint16_t *mtu)
{
	struct ifreq r;
	char a[16], b[16];
	const char *step;
	int fd, rc = 0;

	if (!etc)
		etc = "/etc";
	fd = SYS.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		rc = -errno;
		log_error(TAG, "%s: no control socket: %s", ifname, sl_strerror(rc));
		return rc;
	}

	step = "address";
	ifr_init(&r, ifname);
	sa_ip(&r.ifr_addr, l->addr);
	if (SYS.ioctl(fd, SIOCSIFADDR, &r) == -1)
		goto sys_fail;
	step = "netmask";
	ifr_init(&r, ifname);
	sa_ip(&r.ifr_netmask, l->netmask);
	if (SYS.ioctl(fd, SIOCSIFNETMASK, &r) == -1)
		goto sys_fail;

	ifr_init(&r, ifname);
	*mtu = 0;
	if (SYS.ioctl(fd, SIOCGIFMTU, &r) == 0)
		*mtu = (uint16_t)r.ifr_mtu;
	if (l->mtu && l->mtu != *mtu) {
		ifr_init(&r, ifname);
		r.ifr_mtu = l->mtu;
		if (SYS.ioctl(fd, SIOCSIFMTU, &r) == -1)
			log_warn(TAG, "%s: the lease's MTU %u refused (%s); keeping %u", ifname,
				 l->mtu, strerror(errno), *mtu);
		else
			*mtu = l->mtu;
	}

	if (l->router) {
		step = "route to the router";
		/* A router outside the subnet (a /32 lease) needs a route of its own. */
		if ((l->router & l->netmask) != (l->addr & l->netmask) &&
		    (rc = add_route(fd, ifname, l->router, 0xffffffffu, 0, RTF_UP | RTF_HOST)) != 0)
			goto fail;
		step = "default route";
		if ((rc = add_route(fd, ifname, 0, 0, l->router, RTF_UP | RTF_GATEWAY)) != 0)
			goto fail;
	}
	step = "resolv.conf";
	if ((rc = write_resolv(etc, ifname, l)) != 0)
		goto fail;
	SYS.close(fd);
	return 0;

sys_fail:
	rc = -errno;
fail:
	log_error(TAG, "%s: cannot apply the lease's %s (%s/%d via %s): %s", ifname, step,
		  dhcp_ip_str(l->addr, a), dhcp_prefix_len(l->netmask), dhcp_ip_str(l->router, b),
		  sl_strerror(rc));
	SYS.close(fd);
	return rc;
}

/* The one line that says what the appliance's network is. */
static void log_lease(const char *verb, const char *ifname, const struct dhcp_lease *l, uint16_t mtu)
{
	char addr[16], gw[16], srv[16], dns[DHCP_MAX_DNS * 16 + 1], lease[16];
	size_t n = 0;
	unsigned i;

	dns[0] = '\0';
	for (i = 0; i < l->ndns; i++) {
		char ip[16];

		n += (size_t)snprintf(dns + n, sizeof(dns) - n, "%s%s", i ? "," : "", dhcp_ip_str(l->dns[i], ip));
	}
	if (l->lease_s == DHCP_INFINITE)
		snprintf(lease, sizeof(lease), "infinite");
	else
		snprintf(lease, sizeof(lease), "%us", l->lease_s);
	log_info(TAG, "%s %s %s/%d gw %s dns %s search %s mtu %u lease %s (server %s)", verb, ifname,
		 dhcp_ip_str(l->addr, addr), dhcp_prefix_len(l->netmask),
		 l->router ? dhcp_ip_str(l->router, gw) : "-", l->ndns ? dns : "-",
		 l->search[0] ? l->search : "-", mtu, lease, dhcp_ip_str(l->server, srv));
}

/* ---- the DHCP socket and conversation ---- */

static int dhcp_socket(const char *ifname, int *out)
{
	struct sockaddr_in sin;
	const char *what;
	int fd, one = 1, rc;

	fd = SYS.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_UDP);
	if (fd == -1) {
		rc = -errno;
		log_error(TAG, "%s: no UDP socket for DHCP: %s", ifname, sl_strerror(rc));
		return rc;
	}
	what = "SO_REUSEADDR";
	if (SYS.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	what = "SO_BROADCAST";
	if (SYS.setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) == -1)
		goto fail;
	what = "SO_BINDTODEVICE";
	if (SYS.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1) == -1)
		goto fail;
	what = "bind to 0.0.0.0:68";
	sin_init(&sin, 0, DHCP_CLIENT_PORT);
	if (SYS.bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		goto fail;
	*out = fd;
	return 0;
fail:
	rc = -errno;
	log_error(TAG, "%s: DHCP socket %s: %s", ifname, what, sl_strerror(rc));
	SYS.close(fd);
	return rc;
}

struct counts {
	unsigned discovers, requests, offers, naks, dropped;
};

static void send_msg(int fd, const char *ifname, const struct sl_wr *w, uint32_t dst, struct counts *n)
{
	struct sockaddr_in to;

	sin_init(&to, dst, DHCP_SERVER_PORT);
	if (w->len > 242 && w->p[242] == DHCPDISCOVER)	/* option 53 comes first */
		n->discovers++;
	else
		n->requests++;
	/* A lost message is the engine's business: it resends. */
	if (SYS.sendto(fd, w->p, w->len, 0, (struct sockaddr *)&to, sizeof(to)) == -1)
		log_debug(TAG, "%s: DHCP send: %s", ifname, strerror(errno));
}

/* One reply into the engine; counts it and keeps the most telling result in *best. */
static void feed(const char *ifname, struct dhcp_client *c, struct counts *n, const uint8_t *p,
		 size_t len, uint32_t src, int *best)
{
	char ip[16], a[16];
	int rc = dhcp_input(c, p, len, SYS.now_ms());

	dhcp_ip_str(src, ip);
	if (rc < 0) {
		n->dropped++;
		log_debug(TAG, "%s: DHCP reply from %s dropped: %s", ifname, ip, sl_strerror(rc));
		return;
	}
	if (rc == DHCP_OFFERED) {
		n->offers++;
		log_debug(TAG, "%s: offer of %s from %s", ifname, dhcp_ip_str(c->offer.addr, a), ip);
	} else if (rc == DHCP_NAKED) {
		n->naks++;
		log_warn(TAG, "%s: DHCPNAK from %s%s%s", ifname, ip, c->nak_message[0] ? ": " : "",
			 c->nak_message);
	}
	/* DHCP_LEASED or DHCP_RENEWED wins over whatever else came in the same batch. */
	if (rc == DHCP_LEASED || rc == DHCP_RENEWED || (*best != DHCP_LEASED && *best != DHCP_RENEWED))
		*best = rc;
}

/*
 * Read every datagram waiting on the UDP socket into the engine.  Returns
 * the most telling engine result, or 0 if nothing counted.
 */
static int receive(int fd, const char *ifname, struct dhcp_client *c, struct counts *n)
{
	uint8_t buf[RECV_BUF];
	int best = 0;

	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t got;

		memset(&from, 0, sizeof(from));
		got = SYS.recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (got == -1) {
			if (errno == EINTR)
				continue;
			return best;	/* EAGAIN: drained; anything else: the engine resends */
		}
		if ((size_t)got > sizeof(buf) || from.sin_family != AF_INET ||
		    ntohs(from.sin_port) != DHCP_SERVER_PORT) {
			n->dropped++;
			continue;
		}
		feed(ifname, c, n, buf, (size_t)got, ntohl(from.sin_addr.s_addr), &best);
	}
}

/*
 * The same for the packet socket: IPv4 packets as the NIC received them,
 * for servers that answer an address we do not hold yet by unicast (the
 * kernel drops those before UDP sees them).
 */
static int receive_raw(int fd, const char *ifname, struct dhcp_client *c, struct counts *n)
{
	uint8_t buf[RECV_BUF];
	int best = 0;

	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		const uint8_t *payload;
		size_t len;
		uint32_t src;
		uint16_t sport;
		ssize_t got;
		int rc;

		memset(&from, 0, sizeof(from));
		got = SYS.recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (got == -1) {
			if (errno == EINTR)
				continue;
			return best;
		}
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;	/* our own DISCOVER on its way out */
		if ((size_t)got > sizeof(buf)) {
			n->dropped++;
			continue;
		}
		rc = dhcp_unwrap(buf, (size_t)got, &payload, &len, &src, &sport);
		if (rc == SL_E_NOTFOUND)
			continue;	/* other traffic */
		if (rc != 0 || sport != DHCP_SERVER_PORT) {
			n->dropped++;
			continue;
		}
		feed(ifname, c, n, payload, len, src, &best);
	}
}

/*
 * A packet socket on ifname for IPv4, receive only (PACKET_OUTGOING frames
 * are skipped on reading).  Without CONFIG_PACKET this fails and DHCP
 * works with servers that broadcast, as the broadcast bit asks.
 */
static int packet_socket(const char *ifname, int *out)
{
	struct sockaddr_ll sll;
	struct ifreq r;
	int ctl, fd, rc;

	ctl = SYS.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ctl == -1)
		return -errno;
	ifr_init(&r, ifname);
	rc = SYS.ioctl(ctl, SIOCGIFINDEX, &r) == -1 ? -errno : 0;
	SYS.close(ctl);
	if (rc != 0)
		return rc;
	fd = SYS.socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_IP));
	if (fd == -1)
		return -errno;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_IP);
	sll.sll_ifindex = r.ifr_ifindex;
	if (SYS.bind(fd, (struct sockaddr *)&sll, sizeof(sll)) == -1) {
		rc = -errno;
		SYS.close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/* Talk DHCP until the engine is BOUND or gives up; raw may be -1. */
static int acquire(int fd, int raw, const char *ifname, struct dhcp_client *c, struct counts *n)
{
	for (;;) {
		struct dhcp_out out;
		struct sl_wr w;
		struct pollfd p[2];
		uint64_t now = SYS.now_ms();
		int rc, wait, got = 0;

		wr_init(&w, 0);
		rc = dhcp_next(c, now, &w, &out);
		if (rc == DHCP_SEND)
			send_msg(fd, ifname, &w, out.dst, n);
		wr_free(&w);
		if (rc == DHCP_SEND || rc == DHCP_EXPIRED)
			continue;
		if (rc < 0)
			return rc;
		if (out.wake_ms == UINT64_MAX)
			wait = -1;
		else if (out.wake_ms <= now)
			wait = 0;
		else
			wait = out.wake_ms - now > INT_MAX ? INT_MAX : (int)(out.wake_ms - now);
		p[0].fd = fd;
		p[1].fd = raw;
		p[0].events = p[1].events = POLLIN;
		p[0].revents = p[1].revents = 0;
		rc = SYS.poll(p, raw >= 0 ? 2 : 1, wait);
		if (rc == -1 && errno != EINTR)
			return -errno;
		if (rc <= 0)
			continue;
		if (p[0].revents)
			got = receive(fd, ifname, c, n);
		if (got != DHCP_LEASED && raw >= 0 && p[1].revents)
			got = receive_raw(raw, ifname, c, n);
		if (got == DHCP_LEASED)
			return 0;
	}
}

/* A seed for xids and jitter: not secret, only different per boot and NIC. */
static uint64_t make_seed(const uint8_t mac[6])
{
	uint64_t r = 0, x;
	size_t i;

	/* Non-blocking: before the pool is ready it fails, and that is fine. */
	if (SYS.getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = 0;
	x = r ^ SYS.now_ms() ^ ((uint64_t)time(NULL) << 20);
	for (i = 0; i < 6; i++)
		x = (x ^ mac[i]) * 0x100000001b3ull;
	/* splitmix64's finaliser spreads the bits. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* ---- PID 1's entry point ---- */

int netif_configure(int timeout_ms, struct netif_lease *out)
{
	struct netif_opts o;

	memset(&o, 0, sizeof(o));
	o.timeout_ms = timeout_ms;
	o.link_wait_ms = NETIF_DEFAULT_LINK_WAIT_MS;
	return netif_configure_opts(&o, out);
}

int netif_configure_opts(const struct netif_opts *o, struct netif_lease *out)
{
	const char *sysfs = o->sysfs_net ? o->sysfs_net : "/sys/class/net";
	const char *etc = o->etc ? o->etc : "/etc";
	uint64_t start = SYS.now_ms(), deadline = o->timeout_ms > 0 ? start + (uint64_t)o->timeout_ms : 0;
	uint64_t link_until;
	struct counts n = { 0, 0, 0, 0, 0 };
	struct ifreq r;
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	short flags = 0;
	int ctl, fd = -1, raw = -1, rc;

	memset(out, 0, sizeof(*out));
	ctl = SYS.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ctl == -1) {
		rc = -errno;
		log_error(TAG, "no control socket (is IPv4 in the kernel?): %s", sl_strerror(rc));
		return rc;
	}
	if ((rc = link_up(ctl, "lo")) != 0) {
		if (rc == -ENODEV)
			rc = SL_E_NOTFOUND;
		goto out;
	}

	/* The NIC: its driver may still be probing, so look until the deadline. */
	for (;;) {
		if (o->ifname) {
			snprintf(ifname, sizeof(ifname), "%s", o->ifname);
			rc = sysfs_has(sysfs, ifname, "type") ? 0 : SL_E_NOTFOUND;
		} else {
			rc = netif_pick(sysfs, ifname);
		}
		if (rc == 0)
			break;
		if (remaining(deadline, SYS.now_ms()) == 0) {
			log_error(TAG, "no network interface %s%sin %s after %d ms", o->ifname ? o->ifname : "",
				  o->ifname ? " " : "but lo ", sysfs, o->timeout_ms);
			rc = SL_E_TIMEOUT;
			goto out;
		}
		nap(NIC_POLL_MS);
	}

	ifr_init(&r, ifname);
	if (SYS.ioctl(ctl, SIOCGIFHWADDR, &r) == -1) {
		rc = -errno;
		log_error(TAG, "%s: cannot read its MAC address: %s", ifname, sl_strerror(rc));
		goto out;
	}
	if (r.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		log_error(TAG, "%s: not Ethernet (hardware type %u)", ifname, r.ifr_hwaddr.sa_family);
		rc = SL_E_INVALID;
		goto out;
	}
	memcpy(mac, r.ifr_hwaddr.sa_data, 6);
	if ((rc = link_up(ctl, ifname)) != 0)
		goto out;

	/* Carrier: a DISCOVER sent before it is lost, and the first resend is 4 s away. */
	link_until = SYS.now_ms() + (uint64_t)(o->link_wait_ms > 0 ? o->link_wait_ms : 0);
	for (;;) {
		uint64_t now = SYS.now_ms();

		if ((rc = get_flags(ctl, ifname, &flags)) != 0) {
			log_error(TAG, "%s: cannot read its flags: %s", ifname, sl_strerror(rc));
			goto out;
		}
		if ((flags & IFF_RUNNING) || now >= link_until || remaining(deadline, now) == 0)
			break;
		nap(LINK_POLL_MS);
	}
	if (!(flags & IFF_RUNNING))
		log_warn(TAG, "%s: no carrier after %d ms; trying DHCP anyway", ifname, o->link_wait_ms);

	if ((rc = dhcp_socket(ifname, &fd)) != 0)
		goto out;
	if ((rc = packet_socket(ifname, &raw)) != 0)
		log_info(TAG, "%s: no packet socket (%s); DHCP replies must be broadcast", ifname,
			 sl_strerror(rc));
	{
		uint64_t now = SYS.now_ms();
		int left = remaining(deadline, now);

		if (left == 0)
			left = 1;	/* the deadline passed while waiting: one DISCOVER still goes out */
		dhcp_init(&out->client, mac, make_seed(mac), o->timing);
		dhcp_start(&out->client, now, deadline ? (uint64_t)left : 0);
	}
	rc = acquire(fd, raw, ifname, &out->client, &n);
	SYS.close(fd);
	fd = -1;
	if (raw != -1)
		SYS.close(raw);
	raw = -1;
	if (rc == SL_E_TIMEOUT) {
		log_error(TAG, "%s: no DHCP lease after %d ms (%u DISCOVERs, %u offers, %u REQUESTs, "
			  "%u NAKs, %u replies dropped)", ifname, o->timeout_ms, n.discovers, n.offers,
			  n.requests, n.naks, n.dropped);
		goto out;
	}
	if (rc != 0) {
		log_error(TAG, "%s: DHCP: %s", ifname, sl_strerror(rc));
		goto out;
	}

	if ((rc = netif_apply(ifname, &out->client.lease, etc, &out->mtu)) != 0)
		goto out;
	snprintf(out->ifname, sizeof(out->ifname), "%s", ifname);
	memcpy(out->mac, mac, 6);
	out->lease = out->client.lease;
	log_lease("up:", ifname, &out->lease, out->mtu);
out:
	if (fd != -1)
		SYS.close(fd);
	if (raw != -1)
		SYS.close(raw);
	SYS.close(ctl);
	if (rc != 0) {
		struct dhcp_client keep = out->client;

		memset(out, 0, sizeof(*out));
		out->client = keep;	/* its state says how far it got */
	}
	return rc;
}

/* ---- renewal on the loop ---- */

struct netif_renewer {
	struct loop *l;
	int fd;
	int raw;			/* packet socket while acquiring, else -1 */
	struct loop_timer timer;
	struct dhcp_client c;
	char ifname[IFNAMSIZ];
	char etc[PATH_MAX];
	uint32_t applied;		/* the address we put on the NIC; 0 = none */
	uint16_t mtu;
	struct counts n;
};

/* Take our address off the NIC; its routes go with it. */
static void drop_address(struct netif_renewer *r)
{
	struct ifreq q;
	char a[16];
	int ctl;

	if (!r->applied)
		return;
	dhcp_ip_str(r->applied, a);
	ctl = SYS.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ctl == -1) {
		log_error(TAG, "%s: cannot remove %s: %s", r->ifname, a, strerror(errno));
		return;
	}
	ifr_init(&q, r->ifname);
	sa_ip(&q.ifr_addr, 0);	/* 0.0.0.0 deletes the address (devinet_ioctl) */
	if (SYS.ioctl(ctl, SIOCSIFADDR, &q) == -1)
		log_error(TAG, "%s: cannot remove %s: %s", r->ifname, a, strerror(errno));
	else
		log_warn(TAG, "%s: removed %s; asking DHCP again", r->ifname, a);
	SYS.close(ctl);
	r->applied = 0;
}

static void renew_readable(struct loop *l, int fd, unsigned events, void *arg);

/* The packet socket is open exactly while the engine looks for a lease. */
static void renew_raw(struct netif_renewer *r)
{
	int acquiring = r->c.state == DHCP_INIT || r->c.state == DHCP_SELECTING ||
			r->c.state == DHCP_REQUESTING;

	if (acquiring && r->raw == -1) {
		if (packet_socket(r->ifname, &r->raw) != 0)
			r->raw = -1;
		else if (loop_add(r->l, r->raw, LOOP_READ, renew_readable, r) != 0) {
			SYS.close(r->raw);
			r->raw = -1;
		}
	} else if (!acquiring && r->raw != -1) {
		loop_del(r->l, r->raw);
		SYS.close(r->raw);
		r->raw = -1;
	}
}

/* Drive the engine until it waits; arm the timer for then. */
static void renew_run(struct netif_renewer *r)
{
	int i;

	/* Bounded: each turn sends at most a few messages, whatever the engine says. */
	for (i = 0; i < 8; i++) {
		struct dhcp_out out;
		struct sl_wr w;
		uint64_t now = SYS.now_ms();
		int rc;

		wr_init(&w, 0);
		rc = dhcp_next(&r->c, now, &w, &out);
		renew_raw(r);
		if (rc == DHCP_SEND)
			send_msg(r->fd, r->ifname, &w, out.dst, &r->n);
		wr_free(&w);
		if (rc == DHCP_SEND)
			continue;
		if (rc == DHCP_EXPIRED) {
			char a[16];

			log_warn(TAG, "%s: the lease on %s ran out", r->ifname, dhcp_ip_str(r->c.lease.addr, a));
			drop_address(r);
			continue;
		}
		if (rc == DHCP_WAIT) {
			if (out.wake_ms == UINT64_MAX)
				loop_timer_cancel(r->l, &r->timer);
			else
				loop_timer_set(r->l, &r->timer, out.wake_ms > now ? out.wake_ms - now : 0);
			return;
		}
		log_error(TAG, "%s: DHCP renewal: %s", r->ifname, sl_strerror(rc));
		break;
	}
	loop_timer_set(r->l, &r->timer, 1000);	/* come back soon rather than spin */
}

static void renew_timer(struct loop *l, void *arg)
{
	renew_run(arg);
}

/* A reply on the UDP socket or the packet socket. */
static void renew_readable(struct loop *l, int fd, unsigned events, void *arg)
{
	struct netif_renewer *r = arg;
	char a[16];
	int rc = fd == r->raw ? receive_raw(fd, r->ifname, &r->c, &r->n) :
				receive(fd, r->ifname, &r->c, &r->n);

	if (rc == DHCP_NAKED) {
		drop_address(r);
	} else if (rc == DHCP_RENEWED || rc == DHCP_LEASED) {
		/* Options may have changed; applying is idempotent for what has not. */
		if (r->applied && r->applied != r->c.lease.addr)
			drop_address(r);
		if (netif_apply(r->ifname, &r->c.lease, r->etc, &r->mtu) == 0) {
			r->applied = r->c.lease.addr;
			if (rc == DHCP_RENEWED)
				log_info(TAG, "%s: lease on %s renewed for %us", r->ifname,
					 dhcp_ip_str(r->c.lease.addr, a), r->c.lease.lease_s);
			else
				log_lease("new lease:", r->ifname, &r->c.lease, r->mtu);
		}
	}
	renew_run(r);
}

int netif_renew_start(struct loop *l, const struct netif_lease *nl, const char *etc,
		      struct netif_renewer **out)
{
	struct netif_renewer *r;
	int rc;

	*out = NULL;
	if (nl->client.state != DHCP_BOUND)
		return SL_E_INVALID;
	r = calloc(1, sizeof(*r));
	if (!r)
		return SL_E_NOMEM;
	r->l = l;
	r->raw = -1;
	r->c = nl->client;
	r->applied = nl->lease.addr;
	r->mtu = nl->mtu;
	snprintf(r->ifname, sizeof(r->ifname), "%s", nl->ifname);
	snprintf(r->etc, sizeof(r->etc), "%s", etc ? etc : "/etc");
	loop_timer_init(&r->timer, renew_timer, r);
	if ((rc = dhcp_socket(r->ifname, &r->fd)) != 0) {
		free(r);
		return rc;
	}
	if ((rc = loop_add(l, r->fd, LOOP_READ, renew_readable, r)) != 0) {
		log_error(TAG, "%s: DHCP renewal not watched: %s", r->ifname, sl_strerror(rc));
		SYS.close(r->fd);
		free(r);
		return rc;
	}
	renew_run(r);
	*out = r;
	return 0;
}

const struct dhcp_client *netif_renew_client(const struct netif_renewer *r)
{
	return &r->c;
}

void netif_renew_stop(struct netif_renewer *r)
{
	if (!r)
		return;
	loop_timer_cancel(r->l, &r->timer);
	loop_del(r->l, r->fd);
	SYS.close(r->fd);
	if (r->raw != -1) {
		loop_del(r->l, r->raw);
		SYS.close(r->raw);
	}
	free(r);
}
