/*
 * test_netif.c - the network bring-up (net/netif.c) against a fake kernel
 * and a fake DHCP server, both behind netif_sys: which NIC is chosen, the
 * order in which a lease is applied, resolv.conf's text, retransmission,
 * timeouts, a NIC that appears late, carrier, refused ioctls, a NAK, a
 * router outside the subnet, and renewal on a real loop.
 *
 * The fake kernel writes one line per thing it is asked to change into
 * F.log ("up eth0", "addr eth0 10.0.2.15", "route 0.0.0.0/0.0.0.0 via
 * 10.0.2.2 dev eth0", ...), so a test compares the whole sequence.  Time is
 * F.now: poll() with nothing to read moves it forward by its timeout.  The
 * DHCP socket is a real pipe, so a real loop can watch it; a queued server
 * reply is one byte in the pipe.  /sys/class/net and /etc are directories
 * under build/test-netif-tmp/.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "t.h"
#include "dhcp_fake.h"
#include "../../net/netif.h"
#include "../../kernel/log.h"

#define DIR "build/test-netif-tmp"
#define SYSFS DIR "/sys"
#define ETC DIR "/etc"

enum { SRV_SLIRP, SRV_EC2, SRV_SILENT, SRV_GCP };

/* A fake socket: a real pipe (so a loop can watch it) and its datagrams. */
struct fsock {
	int r, w;
	struct { uint8_t b[DF_MAX + 64]; size_t n; int pkttype; } q[8];
	int nq;
};

static struct {
	uint64_t now;
	char log[8192];
	int sockets;			/* open fake sockets, pipes included */
	int next_fd;
	struct fsock udp, raw;		/* the DHCP socket, the packet socket */
	int no_packet;			/* AF_PACKET sockets fail (no CONFIG_PACKET) */
	/* the server */
	int mode;
	int unicast;			/* answers go to yiaddr: only the packet socket sees them */
	int drop;			/* client messages to ignore before answering */
	int nak_requests;		/* REQUESTs to answer with a NAK */
	int discovers, requests;
	uint64_t first_send_ms;
	uint32_t last_ciaddr;
	/* the NIC */
	int flag_reads, running_after;	/* IFF_RUNNING from this many SIOCGIFFLAGS of eth0 on */
	int mtu;
	unsigned long fail_req;		/* this ioctl fails with fail_errno */
	int fail_errno;
	int fail_rename;
	uint64_t nic_at;		/* eth0 appears in sysfs when now reaches this; 0 = there */
} F;

static const uint8_t NIC_MAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static void flog(const char *fmt, ...)
{
	size_t n = strlen(F.log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(F.log + n, sizeof(F.log) - n, fmt, ap);
	va_end(ap);
	n = strlen(F.log);
	snprintf(F.log + n, sizeof(F.log) - n, "\n");
}

static uint32_t sa_get(const struct sockaddr *sa)
{
	struct sockaddr_in sin;

	memcpy(&sin, sa, sizeof(sin));
	return ntohl(sin.sin_addr.s_addr);
}

static const char *ip(uint32_t a)
{
	static char buf[4][16];
	static int k;

	k = (k + 1) % 4;
	return dhcp_ip_str(a, buf[k]);
}

/* ---- sysfs ---- */

static void mkdirs(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
	if (system(cmd) != 0)
		abort();
}

static void add_nic(const char *name, int type, int hardware)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), SYSFS "/%s", name);
	mkdirs(path);
	snprintf(path, sizeof(path), SYSFS "/%s/type", name);
	f = fopen(path, "w");
	fprintf(f, "%d\n", type);
	fclose(f);
	if (hardware) {
		snprintf(path, sizeof(path), SYSFS "/%s/device", name);
		mkdirs(path);
	}
}

static void set_ifindex(const char *name, int idx)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), SYSFS "/%s/ifindex", name);
	f = fopen(path, "w");
	fprintf(f, "%d\n", idx);
	fclose(f);
}

static void fresh(void)
{
	if (system("rm -rf " DIR) != 0)
		abort();
	mkdirs(SYSFS);
	memset(&F, 0, sizeof(F));
	F.next_fd = 1000;
	F.udp.r = F.udp.w = F.raw.r = F.raw.w = -1;
	F.mtu = 1500;
	F.now = 50000;
	add_nic("lo", 772, 0);
}

static char *slurp(const char *path)
{
	static char buf[2048];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* ---- the server ---- */

static void queue(struct fsock *k, const uint8_t *b, size_t n, int pkttype)
{
	if (k->r == -1)
		return;			/* not open: nobody hears it */
	if (k->nq == 8)
		abort();
	memcpy(k->q[k->nq].b, b, n);
	k->q[k->nq].n = n;
	k->q[k->nq].pkttype = pkttype;
	k->nq++;
	if (write(k->w, "x", 1) != 1)
		abort();
}

/* A reply from the server as the NIC receives it: UDP sees broadcasts only. */
static void deliver(const uint8_t *b, size_t n, uint32_t dst)
{
	uint8_t pkt[DF_MAX + 64];
	size_t len = df_wrap(pkt, b, n, DF_IP(10, 0, 2, 2), dst, 67, 68);

	if (dst == DHCP_BROADCAST)
		queue(&F.udp, b, n, 0);
	queue(&F.raw, pkt, len, dst == DHCP_BROADCAST ? PACKET_BROADCAST : PACKET_HOST);
}

static void serve(const uint8_t *m, size_t n)
{
	static const uint8_t slirp_offer[] = DF_SLIRP_OPTS(DHCPOFFER), slirp_ack[] = DF_SLIRP_OPTS(DHCPACK);
	static const uint8_t ec2_offer[] = DF_EC2_OPTS(DHCPOFFER), ec2_ack[] = DF_EC2_OPTS(DHCPACK);
	/* A /32 with the router outside it, as Google's cloud hands out. */
	static const uint8_t gcp_offer[] = { 53, 1, 2, 54, 4, 169, 254, 169, 254, 1, 4, 255, 255, 255, 255,
		3, 4, 10, 128, 0, 1, 6, 4, 169, 254, 169, 254, 51, 4, 0, 1, 0x51, 0x80, 255 };
	static const uint8_t gcp_ack[] = { 53, 1, 5, 54, 4, 169, 254, 169, 254, 1, 4, 255, 255, 255, 255,
		3, 4, 10, 128, 0, 1, 6, 4, 169, 254, 169, 254, 51, 4, 0, 1, 0x51, 0x80, 255 };
	static const uint8_t nak[] = { 53, 1, 6, 54, 4, 10, 0, 2, 2, 255 };
	uint8_t out[DF_MAX];
	const uint8_t *opts;
	size_t olen, len;
	uint32_t yi, xid;
	struct df_hdr h;
	uint8_t type;

	if (n < 243 || m[0] != 1)
		abort();
	/* A packet socket sees our own message leave, and other traffic. */
	{
		static const uint8_t dns[12] = { 1, 2 };
		uint8_t pkt[DF_MAX + 64];
		size_t plen = df_wrap(pkt, m, n, 0, DHCP_BROADCAST, 68, 67);

		queue(&F.raw, pkt, plen, PACKET_OUTGOING);
		plen = df_wrap(pkt, dns, sizeof(dns), DF_IP(10, 0, 2, 3), DF_IP(10, 0, 2, 9), 53, 5353);
		queue(&F.raw, pkt, plen, PACKET_HOST);
	}
	type = m[242];
	xid = df_get32(m + 4);
	F.last_ciaddr = df_get32(m + 12);
	if (type == DHCPDISCOVER)
		F.discovers++;
	else
		F.requests++;
	if (F.discovers + F.requests == 1)
		F.first_send_ms = F.now;
	if (F.mode == SRV_SILENT || F.drop > 0) {
		F.drop--;
		return;
	}
	switch (F.mode) {
	case SRV_SLIRP:
		yi = DF_IP(10, 0, 2, 15);
		opts = type == DHCPDISCOVER ? slirp_offer : slirp_ack;
		olen = sizeof(slirp_offer);
		break;
	case SRV_EC2:
		yi = DF_IP(172, 31, 40, 7);
		opts = type == DHCPDISCOVER ? ec2_offer : ec2_ack;
		olen = sizeof(ec2_offer);
		break;
	default:
		yi = DF_IP(10, 128, 0, 5);
		opts = type == DHCPDISCOVER ? gcp_offer : gcp_ack;
		olen = sizeof(gcp_offer);
		break;
	}
	if (type == DHCPREQUEST && F.nak_requests > 0) {
		F.nak_requests--;
		opts = nak;
		olen = sizeof(nak);
		yi = 0;
	}
	h = df_reply(xid, m + 28, yi, 0);
	len = df_build(out, &h, opts, olen, 0);
	deliver(out, len, F.unicast && yi ? yi : DHCP_BROADCAST);
}

/* ---- the fake syscalls ---- */

static int open_pipe(struct fsock *k)
{
	int p[2];

	T_EQ(k->r, -1);			/* one of each at a time */
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		abort();
	k->r = p[0];
	k->w = p[1];
	k->nq = 0;
	return p[0];
}

static int f_socket(int domain, int type, int proto)
{
	if (domain == AF_PACKET) {
		T_EQ(proto, htons(ETH_P_IP));
		if (F.no_packet) {
			errno = EAFNOSUPPORT;
			return -1;
		}
		F.sockets++;
		return open_pipe(&F.raw);
	}
	T_EQ(domain, AF_INET);
	F.sockets++;
	if (proto != IPPROTO_UDP)
		return F.next_fd++;
	return open_pipe(&F.udp);
}

static void close_pipe(struct fsock *k)
{
	close(k->r);
	close(k->w);
	k->r = k->w = -1;
	k->nq = 0;
}

static int f_close(int fd)
{
	if (fd < 1000 && fd != F.udp.r && fd != F.raw.r)
		return close(fd);	/* a file: resolv.conf */
	F.sockets--;
	if (fd == F.udp.r)
		close_pipe(&F.udp);
	else if (fd == F.raw.r)
		close_pipe(&F.raw);
	return 0;
}

static int f_ioctl(int fd, unsigned long req, void *arg)
{
	struct ifreq *r = arg;
	struct rtentry *rt = arg;

	if (req == F.fail_req) {
		flog("FAILED %lx", req);
		errno = F.fail_errno;
		return -1;
	}
	switch (req) {
	case SIOCGIFFLAGS:
		if (strcmp(r->ifr_name, "lo") == 0) {
			r->ifr_flags = IFF_LOOPBACK;
		} else {
			r->ifr_flags = IFF_BROADCAST | IFF_MULTICAST;
			if (F.flag_reads > 0)
				r->ifr_flags |= IFF_UP;	/* after SIOCSIFFLAGS */
			if (F.flag_reads++ >= F.running_after)
				r->ifr_flags |= IFF_RUNNING;
		}
		return 0;
	case SIOCSIFFLAGS:
		flog("up %s%s", r->ifr_name, (r->ifr_flags & IFF_UP) ? "" : " (not up?)");
		return 0;
	case SIOCGIFINDEX:
		r->ifr_ifindex = 2;
		return 0;
	case SIOCGIFHWADDR:
		r->ifr_hwaddr.sa_family = ARPHRD_ETHER;
		memcpy(r->ifr_hwaddr.sa_data, NIC_MAC, 6);
		return 0;
	case SIOCSIFADDR:
		flog("addr %s %s", r->ifr_name, ip(sa_get(&r->ifr_addr)));
		return 0;
	case SIOCSIFNETMASK:
		flog("mask %s %s", r->ifr_name, ip(sa_get(&r->ifr_netmask)));
		return 0;
	case SIOCGIFMTU:
		r->ifr_mtu = F.mtu;
		return 0;
	case SIOCSIFMTU:
		flog("mtu %s %d", r->ifr_name, r->ifr_mtu);
		F.mtu = r->ifr_mtu;
		return 0;
	case SIOCADDRT:
		flog("route %s/%s via %s dev %s%s%s", ip(sa_get(&rt->rt_dst)), ip(sa_get(&rt->rt_genmask)),
		     ip(sa_get(&rt->rt_gateway)), rt->rt_dev, (rt->rt_flags & RTF_GATEWAY) ? " G" : "",
		     (rt->rt_flags & RTF_HOST) ? " H" : "");
		T_CHECK(rt->rt_flags & RTF_UP);
		return 0;
	}
	flog("ioctl %lx?", req);
	errno = EINVAL;
	return -1;
}

static int f_setsockopt(int fd, int level, int name, const void *v, socklen_t len)
{
	T_EQ(fd, F.udp.r);
	T_EQ(level, SOL_SOCKET);
	if (name == SO_BINDTODEVICE)
		flog("sockopt BINDTODEVICE %s", (const char *)v);
	else if (name == SO_BROADCAST)
		flog("sockopt BROADCAST");
	else if (name == SO_REUSEADDR)
		flog("sockopt REUSEADDR");
	else
		flog("sockopt %d?", name);
	return 0;
}

static int f_bind(int fd, const struct sockaddr *a, socklen_t len)
{
	struct sockaddr_in sin;

	if (fd == F.raw.r) {
		struct sockaddr_ll sll;

		memcpy(&sll, a, sizeof(sll));
		T_EQ(sll.sll_family, AF_PACKET);
		T_EQ(sll.sll_protocol, htons(ETH_P_IP));
		flog("bind packet ifindex %d", sll.sll_ifindex);
		return 0;
	}
	memcpy(&sin, a, sizeof(sin));
	flog("bind %s:%u", ip(ntohl(sin.sin_addr.s_addr)), ntohs(sin.sin_port));
	return 0;
}

static ssize_t f_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tl)
{
	struct sockaddr_in sin;
	const uint8_t *m = buf;

	memcpy(&sin, to, sizeof(sin));
	T_EQ(fd, F.udp.r);
	flog("send %s %s:%u", n > 242 && m[242] == DHCPDISCOVER ? "DISCOVER" : "REQUEST",
	     ip(ntohl(sin.sin_addr.s_addr)), ntohs(sin.sin_port));
	serve(buf, n);
	return (ssize_t)n;
}

static ssize_t f_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fl)
{
	struct fsock *k = fd == F.udp.r ? &F.udp : fd == F.raw.r ? &F.raw : NULL;
	size_t len;
	char c;

	T_CHECK(k != NULL);
	T_CHECK(flags & MSG_DONTWAIT);
	if (!k || k->nq == 0) {
		errno = EAGAIN;
		return -1;
	}
	if (read(k->r, &c, 1) != 1)
		abort();
	len = k->q[0].n < n ? k->q[0].n : n;
	memcpy(buf, k->q[0].b, len);
	if (k == &F.udp) {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(67);
		sin.sin_addr.s_addr = htonl(DF_IP(10, 0, 2, 2));
		memcpy(from, &sin, sizeof(sin));
		*fl = sizeof(sin);
	} else {
		struct sockaddr_ll sll;

		memset(&sll, 0, sizeof(sll));
		sll.sll_family = AF_PACKET;
		sll.sll_protocol = htons(ETH_P_IP);
		sll.sll_ifindex = 2;
		sll.sll_pkttype = (unsigned char)k->q[0].pkttype;
		memcpy(from, &sll, sizeof(sll));
		*fl = sizeof(sll);
	}
	len = k->q[0].n;		/* MSG_TRUNC: the datagram's real length */
	memmove(&k->q[0], &k->q[1], sizeof(k->q[0]) * (size_t)(k->nq - 1));
	k->nq--;
	return (ssize_t)len;
}

static int f_poll(struct pollfd *p, nfds_t n, int ms)
{
	nfds_t i;
	int ready = 0;

	for (i = 0; i < n; i++) {
		struct fsock *k = p[i].fd == F.udp.r ? &F.udp : p[i].fd == F.raw.r ? &F.raw : NULL;

		T_CHECK(k != NULL);
		p[i].revents = k && k->nq ? POLLIN : 0;
		ready += p[i].revents != 0;
	}
	if (ready)
		return ready;
	if (ms < 0) {
		T_CHECK(!"poll for ever");
		errno = EINVAL;
		return -1;
	}
	F.now += (uint64_t)ms;
	if (F.nic_at && F.now >= F.nic_at) {
		add_nic("eth0", ARPHRD_ETHER, 1);
		F.nic_at = 0;
	}
	return 0;
}

static int f_rename(const char *a, const char *b)
{
	if (F.fail_rename) {
		errno = EROFS;
		return -1;
	}
	flog("resolv.conf");
	return rename(a, b);
}

static ssize_t f_getrandom(void *buf, size_t n, unsigned flags)
{
	errno = EAGAIN;			/* the pool is not ready at boot */
	return -1;
}

static uint64_t f_now(void)
{
	return F.now;
}

static void fake_sys(void)
{
	netif_sys_reset();
	netif_sys.socket = f_socket;
	netif_sys.close = f_close;
	netif_sys.ioctl = f_ioctl;
	netif_sys.setsockopt = f_setsockopt;
	netif_sys.bind = f_bind;
	netif_sys.sendto = f_sendto;
	netif_sys.recvfrom = f_recvfrom;
	netif_sys.poll = f_poll;
	netif_sys.rename = f_rename;
	netif_sys.getrandom = f_getrandom;
	netif_sys.now_ms = f_now;
}

static int run(int timeout_ms, struct netif_lease *nl)
{
	struct netif_opts o;

	memset(&o, 0, sizeof(o));
	o.sysfs_net = SYSFS;
	o.etc = ETC;
	o.timeout_ms = timeout_ms;
	o.link_wait_ms = 3000;
	return netif_configure_opts(&o, nl);
}

/* ---- tests ---- */

static void test_pick(void)
{
	char name[IFNAMSIZ];

	fresh();
	T_EQ(netif_pick(SYSFS, name), SL_E_NOTFOUND);	/* only lo */
	add_nic("sit0", 776, 0);			/* a tunnel: not Ethernet */
	add_nic("docker0", ARPHRD_ETHER, 0);		/* virtual, odd name */
	T_EQ(netif_pick(SYSFS, name), 0);
	T_STR_EQ(name, "docker0");
	add_nic("veth9", ARPHRD_ETHER, 0);
	add_nic("eth7", ARPHRD_ETHER, 0);		/* a good name, but virtual */
	T_EQ(netif_pick(SYSFS, name), 0);
	T_STR_EQ(name, "eth7");
	add_nic("wlan0", ARPHRD_ETHER, 1);		/* hardware beats a name */
	T_EQ(netif_pick(SYSFS, name), 0);
	T_STR_EQ(name, "wlan0");
	add_nic("ens5", ARPHRD_ETHER, 1);		/* EC2's ENA */
	T_EQ(netif_pick(SYSFS, name), 0);
	T_STR_EQ(name, "ens5");
	add_nic("eth1", ARPHRD_ETHER, 1);
	add_nic("eth0", ARPHRD_ETHER, 1);
	T_EQ(netif_pick(SYSFS, name), 0);
	T_STR_EQ(name, "ens5");				/* equal ranks: by name */
	set_ifindex("eth0", 3);
	set_ifindex("eth1", 2);
	set_ifindex("ens5", 4);
	T_EQ(netif_pick(SYSFS, name), 0);
	T_STR_EQ(name, "eth1");				/* ... after ifindex */
	T_EQ(netif_pick(DIR "/nowhere", name), SL_E_NOTFOUND);
}

static void test_slirp(void)
{
	struct netif_lease nl;
	const char *want =
		"up lo\n"
		"up eth0\n"
		"sockopt REUSEADDR\n"
		"sockopt BROADCAST\n"
		"sockopt BINDTODEVICE eth0\n"
		"bind 0.0.0.0:68\n"
		"bind packet ifindex 2\n"
		"send DISCOVER 255.255.255.255:67\n"
		"send REQUEST 255.255.255.255:67\n"
		"addr eth0 10.0.2.15\n"
		"mask eth0 255.255.255.0\n"
		"route 0.0.0.0/0.0.0.0 via 10.0.2.2 dev eth0 G\n"
		"resolv.conf\n";
	char *rc;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	T_EQ(run(30000, &nl), 0);
	T_STR_EQ(F.log, want);
	T_STR_EQ(nl.ifname, "eth0");
	T_MEMEQ(nl.mac, NIC_MAC, 6);
	T_EQ(nl.mtu, 1500);
	T_EQ(nl.lease.addr, DF_IP(10, 0, 2, 15));
	T_EQ(nl.lease.router, DF_IP(10, 0, 2, 2));
	T_EQ(nl.lease.lease_s, 86400);
	T_EQ(nl.client.state, DHCP_BOUND);
	T_EQ(nl.client.bound_ms, 50000);
	T_EQ(F.sockets, 0);
	rc = slurp(ETC "/resolv.conf");
	T_CHECK(rc != NULL);
	if (rc)
		T_STR_EQ(rc, "# written by sluice from the DHCP lease on eth0 (server 10.0.2.2)\n"
			     "nameserver 10.0.2.3\n");
	T_CHECK(access(ETC "/.resolv.conf.new", F_OK) != 0);	/* renamed, not left */
}

static void test_ec2(void)
{
	struct netif_lease nl;
	const char *want_tail =
		"addr ens5 172.31.40.7\n"
		"mask ens5 255.255.240.0\n"
		"mtu ens5 9001\n"
		"route 0.0.0.0/0.0.0.0 via 172.31.32.1 dev ens5 G\n"
		"resolv.conf\n";
	char *rc, *tail;

	fresh();
	fake_sys();
	add_nic("ens5", ARPHRD_ETHER, 1);
	F.mode = SRV_EC2;
	T_EQ(run(30000, &nl), 0);
	tail = strstr(F.log, "addr ");
	T_CHECK(tail != NULL);
	if (tail)
		T_STR_EQ(tail, want_tail);
	T_EQ(nl.mtu, 9001);
	T_EQ(F.mtu, 9001);
	rc = slurp(ETC "/resolv.conf");
	T_CHECK(rc != NULL);
	if (rc)
		T_STR_EQ(rc, "# written by sluice from the DHCP lease on ens5 (server 172.31.32.1)\n"
			     "search us-west-2.compute.internal\n"
			     "nameserver 172.31.0.2\n");
	/* The same MTU again is not set again. */
	F.log[0] = '\0';
	{
		uint16_t mtu;

		T_EQ(netif_apply("ens5", &nl.lease, ETC, &mtu), 0);
		T_CHECK(strstr(F.log, "mtu ") == NULL);
		T_EQ(mtu, 9001);
	}
	T_EQ(F.sockets, 0);
}

static void test_router_outside_subnet(void)
{
	struct netif_lease nl;
	const char *routes =
		"route 10.128.0.1/255.255.255.255 via 0.0.0.0 dev eth0 H\n"
		"route 0.0.0.0/0.0.0.0 via 10.128.0.1 dev eth0 G\n";

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_GCP;
	T_EQ(run(30000, &nl), 0);
	T_CHECK(strstr(F.log, routes) != NULL);
	T_EQ(dhcp_prefix_len(nl.lease.netmask), 32);
}

static void test_retransmit(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.drop = 2;			/* two DISCOVERs lost */
	T_EQ(run(30000, &nl), 0);
	T_EQ(F.discovers, 3);
	T_EQ(F.requests, 1);
	/* Resent after about 4 s and then 8 s more (+-1 s each). */
	T_CHECK(F.now >= 50000 + 10000 && F.now <= 50000 + 14000);
	T_EQ(nl.client.bound_ms, F.now);
}

static void test_timeout(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SILENT;
	T_EQ(run(20000, &nl), SL_E_TIMEOUT);
	T_EQ(F.now, 50000 + 20000);	/* gave up at the deadline, not later */
	T_CHECK(F.discovers >= 3 && F.discovers <= 4);	/* 0, ~4, ~12 s (and ~28 is too late) */
	T_CHECK(strstr(F.log, "addr ") == NULL);
	T_CHECK(access(ETC "/resolv.conf", F_OK) != 0);
	T_EQ(F.sockets, 0);
	T_STR_EQ(nl.ifname, "");
}

static void test_no_nic(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	T_EQ(run(5000, &nl), SL_E_TIMEOUT);
	T_CHECK(F.now >= 55000 && F.now < 55000 + 200);
	T_EQ(F.sockets, 0);
	T_STR_EQ(F.log, "up lo\n");
}

static void test_nic_appears_late(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	F.mode = SRV_SLIRP;
	F.nic_at = 51500;		/* the driver finishes probing 1.5 s in */
	T_EQ(run(30000, &nl), 0);
	T_STR_EQ(nl.ifname, "eth0");
	T_CHECK(F.first_send_ms >= 51500);
}

static void test_carrier_wait(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.running_after = 6;		/* carrier on the sixth look */
	T_EQ(run(30000, &nl), 0);
	T_EQ(F.first_send_ms, 50000 + 5 * 50);	/* looks 1..5 fail, 50 ms apart */

	/* No carrier at all: DHCP is tried anyway after link_wait_ms. */
	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.running_after = 1 << 30;
	T_EQ(run(30000, &nl), 0);
	T_EQ(F.first_send_ms, 50000 + 3000);
}

static void test_address_refused(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.fail_req = SIOCSIFADDR;
	F.fail_errno = EPERM;
	T_EQ(run(30000, &nl), -EPERM);
	T_CHECK(strstr(F.log, "route") == NULL);
	T_CHECK(access(ETC "/resolv.conf", F_OK) != 0);
	T_EQ(F.sockets, 0);

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.fail_req = SIOCADDRT;
	F.fail_errno = ENETUNREACH;
	T_EQ(run(30000, &nl), -ENETUNREACH);
	T_CHECK(access(ETC "/resolv.conf", F_OK) != 0);
	T_EQ(F.sockets, 0);

	/* lo missing: the kernel has no networking to speak of. */
	fresh();
	fake_sys();
	F.fail_req = SIOCGIFFLAGS;
	F.fail_errno = ENODEV;
	T_EQ(run(30000, &nl), SL_E_NOTFOUND);
	T_EQ(F.sockets, 0);
}

static void test_mtu_refused(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_EC2;
	F.fail_req = SIOCSIFMTU;
	F.fail_errno = EINVAL;		/* a virtio NIC without jumbo frames */
	T_EQ(run(30000, &nl), 0);
	T_EQ(nl.mtu, 1500);
	T_CHECK(strstr(F.log, "route 0.0.0.0/0.0.0.0 via 172.31.32.1") != NULL);
}

static void test_resolv_conf_text(void)
{
	struct dhcp_lease l;
	char buf[512];

	memset(&l, 0, sizeof(l));
	l.server = DF_IP(10, 0, 0, 1);
	l.ndns = 3;
	l.dns[0] = DF_IP(10, 0, 0, 2);
	l.dns[1] = DF_IP(1, 1, 1, 1);
	l.dns[2] = DF_IP(8, 8, 8, 8);
	snprintf(l.search, sizeof(l.search), "a.example b.example");
	T_EQ(netif_resolv_conf("eth0", &l, buf, sizeof(buf)), (int)strlen(buf));
	T_STR_EQ(buf, "# written by sluice from the DHCP lease on eth0 (server 10.0.0.1)\n"
		      "search a.example b.example\n"
		      "nameserver 10.0.0.2\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n");
	T_EQ(netif_resolv_conf("eth0", &l, buf, 80), SL_E_FULL);
	T_EQ(netif_resolv_conf("eth0", &l, buf, 0), SL_E_FULL);
	l.ndns = 0;
	l.search[0] = '\0';
	T_CHECK(netif_resolv_conf("eth0", &l, buf, sizeof(buf)) > 0);
	T_STR_EQ(buf, "# written by sluice from the DHCP lease on eth0 (server 10.0.0.1)\n"
		      "# the lease named no DNS server\n");
}

static void test_resolv_conf_fails(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.fail_rename = 1;
	T_EQ(run(30000, &nl), -EROFS);
	T_EQ(F.sockets, 0);
	/* An existing /etc is fine; an old resolv.conf is replaced whole. */
	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	mkdirs(ETC);
	{
		FILE *f = fopen(ETC "/resolv.conf", "w");

		fprintf(f, "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n");
		fclose(f);
	}
	F.mode = SRV_SLIRP;
	T_EQ(run(30000, &nl), 0);
	T_CHECK(strstr(slurp(ETC "/resolv.conf"), "192.0.2") == NULL);
}

static void test_nak_then_ack(void)
{
	struct netif_lease nl;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.nak_requests = 1;
	T_EQ(run(30000, &nl), 0);
	T_EQ(F.discovers, 2);
	T_EQ(F.requests, 2);
	T_EQ(nl.lease.addr, DF_IP(10, 0, 2, 15));
}

static void test_unicast_server(void)
{
	struct netif_lease nl;

	/* A server that ignores the broadcast bit: only the packet socket hears it. */
	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_EC2;
	F.unicast = 1;
	T_EQ(run(30000, &nl), 0);
	T_EQ(nl.lease.addr, DF_IP(172, 31, 40, 7));
	T_EQ(F.discovers, 1);
	T_EQ(F.requests, 1);
	T_EQ(F.sockets, 0);

	/* No packet socket in the kernel: broadcast answers still work... */
	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.no_packet = 1;
	T_EQ(run(30000, &nl), 0);
	T_CHECK(strstr(F.log, "bind packet") == NULL);
	T_EQ(F.sockets, 0);

	/* ... and unicast ones cannot be heard. */
	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_SLIRP;
	F.no_packet = 1;
	F.unicast = 1;
	T_EQ(run(10000, &nl), SL_E_TIMEOUT);
	T_EQ(F.sockets, 0);
}

/* ---- renewal on a real loop ---- */

static void stop_loop(struct loop *l, void *arg)
{
	loop_stop(l);
}

/* Run the loop for about ms of real time: for checking that nothing happens. */
static void spin(struct loop *l, int ms)
{
	struct loop_timer t;

	loop_timer_init(&t, stop_loop, NULL);
	loop_timer_set(l, &t, (uint64_t)ms);
	T_EQ(loop_run(l), 0);
	loop_timer_cancel(l, &t);
}

/* What spin_until waits for: the renewer in state and the fake log holding text. */
struct until {
	struct netif_renewer *r;
	enum dhcp_state state;
	const char *text;
	struct loop_timer t;
	int left;
};

static void until_check(struct loop *l, void *arg)
{
	struct until *u = arg;

	if ((netif_renew_client(u->r)->state == u->state && strstr(F.log, u->text)) || --u->left <= 0)
		loop_stop(l);
	else
		loop_timer_set(l, &u->t, 5);
}

/*
 * Run the loop until the fake exchange has got there (each step takes a
 * turn or two); gives up after about 5 s of real time so a bug fails the
 * checks that follow rather than hanging.
 */
static void spin_until(struct loop *l, struct netif_renewer *r, enum dhcp_state state, const char *text)
{
	struct until u = { r, state, text, { 0 }, 1000 };

	loop_timer_init(&u.t, until_check, &u);
	loop_timer_set(l, &u.t, 0);
	T_EQ(loop_run(l), 0);
	loop_timer_cancel(l, &u.t);
}

static void test_renewal(void)
{
	struct netif_lease nl;
	struct netif_renewer *r = NULL;
	struct loop *l;
	const struct dhcp_client *c;
	uint64_t t1;

	fresh();
	fake_sys();
	add_nic("eth0", ARPHRD_ETHER, 1);
	F.mode = SRV_EC2;		/* lease 3600 s, server 172.31.32.1 */
	T_EQ(run(30000, &nl), 0);
	l = loop_new();
	T_CHECK(l != NULL);
	if (!l)
		return;
	t1 = nl.client.bound_ms + 1800 * 1000;

	/* Before T1 nothing is sent. */
	F.log[0] = '\0';
	T_EQ(netif_renew_start(l, &nl, ETC, &r), 0);
	spin(l, 20);
	T_STR_EQ(F.log, "sockopt REUSEADDR\nsockopt BROADCAST\nsockopt BINDTODEVICE eth0\nbind 0.0.0.0:68\n");
	netif_renew_stop(r);

	/* At T1: a REQUEST to the server, answered; the lease counts from then. */
	F.now = t1;
	F.log[0] = '\0';
	T_EQ(netif_renew_start(l, &nl, ETC, &r), 0);
	spin_until(l, r, DHCP_BOUND, "resolv.conf\n");
	T_CHECK(strstr(F.log, "send REQUEST 172.31.32.1:67\n") != NULL);
	T_EQ(F.last_ciaddr, DF_IP(172, 31, 40, 7));
	c = netif_renew_client(r);
	T_EQ(c->state, DHCP_BOUND);
	T_EQ(c->bound_ms, t1);
	T_CHECK(strstr(F.log, "addr eth0 172.31.40.7\n") != NULL);	/* re-applied, same address */
	T_CHECK(strstr(F.log, "addr eth0 0.0.0.0") == NULL);

	/* Past the lease's end with nobody answering: the address goes. */
	F.mode = SRV_SILENT;
	F.now = t1 + 3600 * 1000;
	F.log[0] = '\0';
	nl.client = *c;
	netif_renew_stop(r);
	T_EQ(netif_renew_start(l, &nl, ETC, &r), 0);
	spin_until(l, r, DHCP_SELECTING, "send DISCOVER 255.255.255.255:67\n");
	T_CHECK(strstr(F.log, "addr eth0 0.0.0.0\n") != NULL);
	T_CHECK(strstr(F.log, "send DISCOVER 255.255.255.255:67\n") != NULL);
	c = netif_renew_client(r);
	T_EQ(c->state, DHCP_SELECTING);
	netif_renew_stop(r);

	/* The same, with the server back: a new lease is applied. */
	F.mode = SRV_EC2;
	F.log[0] = '\0';
	T_EQ(netif_renew_start(l, &nl, ETC, &r), 0);
	spin_until(l, r, DHCP_BOUND, "resolv.conf\n");
	{
		const char *drop = strstr(F.log, "addr eth0 0.0.0.0\n");
		const char *add = strstr(F.log, "addr eth0 172.31.40.7\n");

		T_CHECK(drop != NULL && add != NULL && drop < add);
	}
	c = netif_renew_client(r);
	T_EQ(c->state, DHCP_BOUND);
	T_EQ(F.raw.r, -1);		/* the packet socket only while looking */
	netif_renew_stop(r);

	/* Again with a server that answers by unicast: heard on the packet socket. */
	F.unicast = 1;
	F.log[0] = '\0';
	T_EQ(netif_renew_start(l, &nl, ETC, &r), 0);
	spin_until(l, r, DHCP_BOUND, "resolv.conf\n");
	T_CHECK(strstr(F.log, "bind packet ifindex 2\n") != NULL);
	T_CHECK(strstr(F.log, "addr eth0 172.31.40.7\n") != NULL);
	c = netif_renew_client(r);
	T_EQ(c->state, DHCP_BOUND);
	T_EQ(F.raw.r, -1);
	netif_renew_stop(r);
	netif_renew_stop(NULL);
	T_EQ(F.sockets, 0);
	loop_destroy(l);
}

int main(void)
{
	log_set_level(LOG_DEBUG);
	T_RUN(test_pick);
	T_RUN(test_slirp);
	T_RUN(test_ec2);
	T_RUN(test_router_outside_subnet);
	T_RUN(test_retransmit);
	T_RUN(test_timeout);
	T_RUN(test_no_nic);
	T_RUN(test_nic_appears_late);
	T_RUN(test_carrier_wait);
	T_RUN(test_address_refused);
	T_RUN(test_mtu_refused);
	T_RUN(test_resolv_conf_text);
	T_RUN(test_resolv_conf_fails);
	T_RUN(test_nak_then_ack);
	T_RUN(test_unicast_server);
	T_RUN(test_renewal);
	netif_sys_reset();
	return t_done();
}
