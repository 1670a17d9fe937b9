/*
 * netif.h - the appliance's network bring-up: loopback, the first NIC by
 * DHCP, its address, route, MTU, and /etc/resolv.conf.  PID 1 calls
 * netif_configure() once, before the broker starts; with the broker's loop
 * running it may hand the lease to netif_renew_start() to keep it.
 *
 * The image holds no ip, no dhclient, no busybox: everything here is
 * ioctl(2) on an AF_INET socket and a UDP socket for DHCP.  The DHCP
 * conversation itself is net/dhcp.c's engine; this file does the I/O.
 *
 * What netif_configure() does, in order:
 *   1. lo up (the kernel gives it 127.0.0.1/8 and ::1 by itself);
 *   2. the NIC: the first entry of /sys/class/net that is Ethernet
 *      (type 1) and not lo, preferring hardware (a `device` link), then
 *      the names eth*, ens*, enp*, eno*, enx*, then the name's order; a
 *      NIC whose driver is still probing is waited for;
 *   3. the NIC up, then up to link_wait_ms for carrier (IFF_RUNNING), so
 *      the first DISCOVER is not lost to a link still coming up;
 *   4. DHCP over a UDP socket bound to 0.0.0.0:68 with SO_BROADCAST and
 *      SO_BINDTODEVICE, sending to 255.255.255.255:67 with the broadcast
 *      bit set (Linux sends this, and receives broadcast replies, before
 *      the NIC has an address); beside it an AF_PACKET socket receives, for
 *      servers that answer by unicast to the offered address anyway, which
 *      the kernel drops before UDP sees it (without CONFIG_PACKET only
 *      broadcast replies work, and a line says so);
 *   5. the lease applied: SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFMTU (when
 *      the lease has option 26 and the device's MTU differs; a device that
 *      refuses only gets a warning), a host route to the router when it
 *      lies outside the subnet (clouds that hand out /32s), the default
 *      route via the router (SIOCADDRT), then resolv.conf written to a
 *      temporary file and renamed over /etc/resolv.conf (/etc made first);
 *   6. one log line: "eth0 10.0.2.15/24 gw 10.0.2.2 dns 10.0.2.3 search -
 *      mtu 1500 lease 86400s (server 10.0.2.2)".
 * On failure: a negative error and one log line at ERROR naming the step,
 * the interface and the cause.  Sockets are closed on every path.
 *
 * Both paths were tried on a real kernel (veth pair, one end in another
 * network namespace, a server that broadcasts and one that unicasts).
 *
 * Renewal (netif_renew_start): the same engine on the broker's loop.  At
 * T1 a REQUEST goes to the server, at T2 to everyone; an ACK extends the
 * lease (resolv.conf and the MTU follow changed options).  A NAK, an ACK
 * for another address or the lease running out removes the address
 * (SIOCSIFADDR 0.0.0.0, which takes its routes with it) and DHCP starts
 * over until a new lease is applied.  Leases without an end need none of
 * this, and on EC2 an instance's address never changes, so renewal is for
 * DHCP servers that do reclaim addresses.
 *
 * Clocks: all times are CLOCK_MONOTONIC milliseconds from netif_sys.now_ms,
 * the clock the loop uses too.
 */
#ifndef SL_NET_NETIF_H
#define SL_NET_NETIF_H

#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "dhcp.h"
#include "../kernel/err.h"
#include "../kernel/loop.h"

/*
 * The syscalls netif makes, replaceable so tests can fake the kernel (the
 * idea of SQLite's os_unix.c, as storage/wal.h does).  Each has its libc
 * meaning and returns -1 with errno set on failure.
 */
struct netif_sys {
	int (*socket)(int domain, int type, int protocol);
	int (*ioctl)(int fd, unsigned long req, void *arg);
	int (*setsockopt)(int fd, int level, int name, const void *val, socklen_t len);
	int (*bind)(int fd, const struct sockaddr *addr, socklen_t len);
	ssize_t (*sendto)(int fd, const void *buf, size_t n, int flags,
			  const struct sockaddr *to, socklen_t tolen);
	ssize_t (*recvfrom)(int fd, void *buf, size_t n, int flags,
			    struct sockaddr *from, socklen_t *fromlen);
	int (*poll)(struct pollfd *fds, nfds_t n, int timeout_ms);	/* also the sleep */
	int (*close)(int fd);
	int (*mkdir)(const char *path, mode_t mode);
	int (*open)(const char *path, int flags, mode_t mode);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*rename)(const char *from, const char *to);
	ssize_t (*getrandom)(void *buf, size_t n, unsigned flags);
	uint64_t (*now_ms)(void);				/* CLOCK_MONOTONIC */
};
extern struct netif_sys netif_sys;
/* Restore the real syscalls. */
void netif_sys_reset(void);

struct netif_opts {
	const char *sysfs_net;		/* "/sys/class/net" */
	const char *etc;		/* "/etc": resolv.conf goes here */
	const char *ifname;		/* this NIC instead of choosing one; NULL = choose */
	int timeout_ms;			/* the whole bring-up; 0 = try for ever */
	int link_wait_ms;		/* carrier wait before the first DISCOVER (3000) */
	const struct dhcp_timing *timing;	/* NULL = RFC 2131's */
};
#define NETIF_DEFAULT_LINK_WAIT_MS 3000

/* What was configured; kept by PID 1 for netif_renew_start(). */
struct netif_lease {
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	uint16_t mtu;			/* the device's MTU after the lease */
	struct dhcp_lease lease;	/* = client.lease */
	struct dhcp_client client;	/* the engine, BOUND */
};

/*
 * PID 1's entry point: everything above with the default paths, waiting at
 * most timeout_ms (0 = for ever).  0 and *out filled, or SL_E_TIMEOUT (no
 * NIC, or no lease in time), SL_E_NOTFOUND (lo missing), a negated errno
 * from the step that failed; each logged.  Safe to call again after a
 * failure (e.g. to keep trying in the background).
 */
int netif_configure(int timeout_ms, struct netif_lease *out);
/* The same with every knob; o->sysfs_net and o->etc may be NULL (defaults). */
int netif_configure_opts(const struct netif_opts *o, struct netif_lease *out);

/*
 * The NIC netif_configure would choose: its name into name (IFNAMSIZ
 * bytes).  0, or SL_E_NOTFOUND when there is none (yet).
 */
int netif_pick(const char *sysfs_net, char *name);

/*
 * Apply a lease to ifname: address, netmask, MTU, routes, resolv.conf under
 * etc.  *mtu receives the device's MTU afterwards.  0 or the first fatal
 * error (logged); a refused MTU is only a warning.
 */
int netif_apply(const char *ifname, const struct dhcp_lease *l, const char *etc, uint16_t *mtu);

/* resolv.conf's text for a lease into buf (cap bytes); its length, or SL_E_FULL. */
int netif_resolv_conf(const char *ifname, const struct dhcp_lease *l, char *buf, size_t cap);

struct netif_renewer;

/*
 * Keep nl's lease on loop l: a UDP socket watched by the loop and one
 * timer.  etc: where resolv.conf lives (NULL = "/etc").  0 and *out, or an
 * error (the socket could not be set up), logged.
 */
int netif_renew_start(struct loop *l, const struct netif_lease *nl, const char *etc,
		      struct netif_renewer **out);
/* The lease as it is now (state, address, times); valid until stop. */
const struct dhcp_client *netif_renew_client(const struct netif_renewer *r);
/* Stop renewing; the address stays.  NULL is a no-op. */
void netif_renew_stop(struct netif_renewer *r);

#endif
