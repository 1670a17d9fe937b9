/*
 * dhcp.h - the DHCPv4 client engine (RFC 2131, options from RFC 2132,
 * 3396 and 3397), without I/O: packets out, packets in, `now` given.
 *
 * PID 1 has no dhclient, so this is how the appliance gets its address,
 * router, DNS servers and MTU.  net/netif.c owns the sockets, the clock and
 * the kernel's configuration; this file only decides what to send when and
 * what a reply means.
 *
 * The client's states (RFC 2131 figure 5, without INIT-REBOOT):
 *
 *            dhcp_start()
 *   INIT ────────────────▶ SELECTING ──OFFER──▶ REQUESTING ──ACK──▶ BOUND
 *    ▲  ▲                  (DISCOVER,           (REQUEST,             │
 *    │  │                   backoff)             backoff,             │ T1
 *    │  │                      ▲                 a few tries)         ▼
 *    │  └──── NAK, or no answer to REQUEST ─────────┘            RENEWING
 *    │                                                 (REQUEST unicast
 *    │                                                  to the server)
 *    │                                                   │ ACK: BOUND
 *    │  NAK, or the lease ran out (DHCP_EXPIRED)         │ T2
 *    └─────────────────────────────────────────────── REBINDING
 *                                                  (REQUEST broadcast)
 *
 *   SELECTING or REQUESTING past the acquisition deadline: FAILED
 *   (dhcp_next() returns SL_E_TIMEOUT; dhcp_start() begins again).
 *
 * Retransmission while acquiring (RFC 2131 4.1): the first resend after
 * first_ms (4 s), doubling up to max_ms (64 s), each delay moved by a
 * uniform random amount in [-jitter_ms, +jitter_ms] (1 s).  While renewing
 * or rebinding: half the time left until T2 (or the lease's end), at least
 * renew_min_ms (60 s), never past T2 (or the end).
 *
 * How a driver uses it:
 *
 *   dhcp_init(&c, mac, seed, NULL);
 *   dhcp_start(&c, now, timeout_ms);
 *   loop:
 *     r = dhcp_next(&c, now, &w, &out)
 *        DHCP_SEND     send w's bytes to out.dst:67, call dhcp_next again
 *        DHCP_WAIT     wait for a packet or out.wake_ms
 *        DHCP_EXPIRED  the lease ended: remove the address, call again
 *        SL_E_TIMEOUT  acquisition gave up
 *     on a packet from port 67: r = dhcp_input(&c, bytes, n, now)
 *        DHCP_LEASED   c.lease is new: apply it (the address may differ
 *                      from the one applied before)
 *        DHCP_RENEWED  same address, new times (other options may change)
 *        DHCP_NAKED    the server refused: drop any address; back in INIT
 *        DHCP_OFFERED, DHCP_IGNORED, or an error (a malformed packet,
 *                      dropped): nothing to apply; call dhcp_next
 *
 * Addresses are uint32_t in host byte order (10.0.2.15 is 0x0a00020f).
 *
 * Parsing (dhcp_parse) goes through kernel/buf.h's cursor.  Invariants:
 *   1. A reply is refused (an error value, nothing filled in that a caller
 *      may use) unless it is a BOOTREPLY for Ethernet with the magic
 *      cookie, every option's length lies within its area, every area ends
 *      with END, and every option we use has the length RFC 2132 gives it.
 *   2. Options split into several instances are joined (RFC 3396), each
 *      capped at DHCP_OPT_CAP bytes; options found in `file` or `sname`
 *      count only when option 52 says those areas hold options.
 *   3. Text that reaches resolv.conf (domain name, search list) holds only
 *      letters, digits, '-', '_' and '.' in labels of 1..63 bytes: a value
 *      that does not is dropped, never written.
 *   4. The engine never reads a clock and never does I/O; all randomness
 *      (xid, jitter) comes from the seed given to dhcp_init.
 */
#ifndef SL_NET_DHCP_H
#define SL_NET_DHCP_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"

#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define DHCP_BROADCAST 0xffffffffu
#define DHCP_INFINITE 0xffffffffu	/* a lease time that never ends */

#define DHCP_HDR_LEN 236		/* the fixed BOOTP header */
#define DHCP_MIN_LEN 240		/* header and magic cookie */
#define DHCP_MIN_SEND 300		/* what we pad our messages to (BOOTP's minimum) */
#define DHCP_MAX_MSG 1500		/* option 57: what we accept */
#define DHCP_OPT_CAP 512		/* one option's bytes, all instances joined */
#define DHCP_MAX_DNS 3			/* resolv.conf reads no more (musl MAXNS) */
#define DHCP_MAX_DOMAIN 253
#define DHCP_MAX_SEARCH 255		/* "a.example b.example": what resolv.conf's search takes */

/* Message types (option 53). */
enum {
	DHCPDISCOVER = 1,
	DHCPOFFER = 2,
	DHCPREQUEST = 3,
	DHCPDECLINE = 4,
	DHCPACK = 5,
	DHCPNAK = 6,
	DHCPRELEASE = 7,
	DHCPINFORM = 8
};

/* Option codes used here (RFC 2132, 3397). */
enum {
	DHO_PAD = 0,
	DHO_SUBNET_MASK = 1,
	DHO_ROUTER = 3,
	DHO_DNS = 6,
	DHO_DOMAIN_NAME = 15,
	DHO_MTU = 26,
	DHO_REQUESTED_IP = 50,
	DHO_LEASE_TIME = 51,
	DHO_OVERLOAD = 52,
	DHO_MSG_TYPE = 53,
	DHO_SERVER_ID = 54,
	DHO_PARAM_LIST = 55,
	DHO_MESSAGE = 56,
	DHO_MAX_MSG_SIZE = 57,
	DHO_T1 = 58,
	DHO_T2 = 59,
	DHO_CLIENT_ID = 61,
	DHO_SEARCH = 119,
	DHO_END = 255
};

/* What a lease gives: everything netif.c applies. */
struct dhcp_lease {
	uint32_t addr;			/* yiaddr */
	uint32_t netmask;		/* option 1; the address class's mask when absent */
	uint32_t router;		/* first usable address of option 3; 0 = none */
	uint32_t server;		/* option 54, the server to renew with */
	uint32_t dns[DHCP_MAX_DNS];	/* option 6, first DHCP_MAX_DNS usable ones */
	unsigned ndns;
	uint16_t mtu;			/* option 26 when >= 68, else 0 */
	uint32_t lease_s;		/* option 51 in seconds; DHCP_INFINITE when absent */
	uint32_t t1_s, t2_s;		/* options 58, 59, or 1/2 and 7/8 of lease_s */
	char domain[DHCP_MAX_DOMAIN + 1];	/* option 15, checked; "" = none */
	char search[DHCP_MAX_SEARCH + 1];	/* option 119, else domain; "" = none */
};

/* One parsed reply. */
struct dhcp_msg {
	uint8_t type;			/* DHCPOFFER, DHCPACK, DHCPNAK, ... */
	uint32_t xid;
	uint16_t flags;
	uint8_t chaddr[6];
	uint32_t ciaddr, yiaddr, siaddr;
	int has_server;			/* option 54 present */
	char message[64];		/* option 56 (why a NAK), printable only; "" = none */
	struct dhcp_lease lease;	/* addr = yiaddr; the rest from options */
};

/*
 * Parse a reply from a server (n bytes, the UDP payload).  0 and *m filled,
 * SL_E_SHORT when the bytes end early (an option or the header cut short, an
 * area without END), SL_E_INVALID for anything malformed (not a BOOTREPLY,
 * not Ethernet, wrong cookie, an option of the wrong length, a message type
 * missing or out of range, a non-contiguous netmask), SL_E_TOOBIG when one
 * option's instances exceed DHCP_OPT_CAP.  Reads only p[0..n).
 */
SL_MUST_CHECK int dhcp_parse(const uint8_t *p, size_t n, struct dhcp_msg *m);

/*
 * An IPv4 packet as an AF_PACKET (SOCK_DGRAM) socket hands it over, from
 * the IP header on, possibly followed by link-layer padding.  0 when it is
 * an unfragmented UDP datagram to port 68 whose IP header checksum holds:
 * *payload and *len then name the UDP payload inside p (borrowed), *src and
 * *sport its sender.  SL_E_NOTFOUND for a valid packet not for the DHCP
 * client (another protocol or port), SL_E_SHORT or SL_E_INVALID for a
 * malformed one, SL_E_PROTO for a fragment.  The UDP checksum is not
 * checked: with offloads a NIC may hand it over unfinished.
 */
SL_MUST_CHECK int dhcp_unwrap(const uint8_t *p, size_t n, const uint8_t **payload, size_t *len,
			      uint32_t *src, uint16_t *sport);

/* What a client message carries. */
struct dhcp_req {
	uint8_t type;			/* DHCPDISCOVER or DHCPREQUEST */
	uint32_t xid;
	uint8_t mac[6];
	uint16_t secs;
	int broadcast;			/* set the flags' broadcast bit */
	uint32_t ciaddr;		/* renewing and rebinding: our address */
	uint32_t requested;		/* option 50, 0 = leave out */
	uint32_t server;		/* option 54, 0 = leave out */
};

/*
 * Append a client message to w: the BOOTP header, the cookie, options 53,
 * 61 (client id: type 1 and the MAC), 57 (DHCP_MAX_MSG), 50 and 54 when
 * given, 55 (mask, router, DNS, domain name, MTU, lease time, T1, T2,
 * search list), END, then zeros up to DHCP_MIN_SEND bytes.  Returns 0 or
 * the writer's error.
 */
SL_MUST_CHECK int dhcp_build(struct sl_wr *w, const struct dhcp_req *q);

/* Timing; dhcp_init() with NULL takes RFC 2131's values. */
struct dhcp_timing {
	uint32_t first_ms;		/* first retransmission delay: 4000 */
	uint32_t max_ms;		/* the doubling stops here: 64000 */
	uint32_t jitter_ms;		/* +- this much, uniformly: 1000 */
	uint32_t renew_min_ms;		/* least wait between renewal requests: 60000 */
	unsigned request_tries;		/* REQUESTs sent before going back to INIT: 4 */
};

enum dhcp_state {
	DHCP_INIT,
	DHCP_SELECTING,
	DHCP_REQUESTING,
	DHCP_BOUND,
	DHCP_RENEWING,
	DHCP_REBINDING,
	DHCP_FAILED
};

/* Results of dhcp_next() and dhcp_input(); errors are negative. */
enum {
	DHCP_WAIT = 1,		/* nothing to send before out->wake_ms */
	DHCP_SEND,		/* w holds a message for out->dst */
	DHCP_EXPIRED,		/* the lease ended; the client is in INIT */
	DHCP_IGNORED,		/* a valid packet, not for us or not now */
	DHCP_OFFERED,		/* an offer taken; a REQUEST is due */
	DHCP_LEASED,		/* c->lease is a new lease */
	DHCP_RENEWED,		/* c->lease extended, same address */
	DHCP_NAKED		/* refused; the client is in INIT */
};

struct dhcp_out {
	uint32_t dst;			/* DHCP_SEND: DHCP_BROADCAST or the server */
	uint64_t wake_ms;		/* DHCP_WAIT: call dhcp_next by then; UINT64_MAX = never */
};

/* Fields are the engine's; read state, lease and bound_ms, write none. */
struct dhcp_client {
	enum dhcp_state state;
	uint8_t mac[6];
	struct dhcp_timing tm;
	uint64_t rng;
	uint32_t xid;
	uint64_t begin_ms;		/* this exchange began (for 'secs') */
	uint64_t deadline_ms;		/* acquisition gives up here; 0 = never */
	uint64_t next_ms;		/* next transmission */
	unsigned tries;			/* transmissions in this state */
	uint16_t secs;			/* 'secs' of the last DISCOVER */
	uint64_t sent_ms;		/* when the last REQUEST went out */
	struct dhcp_lease offer;	/* REQUESTING: the offer taken */
	struct dhcp_lease lease;	/* BOUND and after: the lease held */
	uint64_t bound_ms;		/* the lease's times count from here */
	char nak_message[64];		/* option 56 of the last NAK */
};

void dhcp_init(struct dhcp_client *c, const uint8_t mac[6], uint64_t seed,
	       const struct dhcp_timing *tm);
/* Begin acquiring (from any state); give up timeout_ms from now (0 = never). */
void dhcp_start(struct dhcp_client *c, uint64_t now_ms, uint64_t timeout_ms);
/*
 * What to do at now_ms: DHCP_SEND (a message appended to w, which must be
 * empty and error-free), DHCP_WAIT, DHCP_EXPIRED, SL_E_TIMEOUT, or w's error.
 */
int dhcp_next(struct dhcp_client *c, uint64_t now_ms, struct sl_wr *w, struct dhcp_out *out);
/* A packet from a server: a result above or a dhcp_parse() error (dropped). */
int dhcp_input(struct dhcp_client *c, const uint8_t *p, size_t n, uint64_t now_ms);

/* Helpers for logs and netif.c. */
const char *dhcp_state_name(enum dhcp_state s);
/* "10.0.2.15" into buf (at least 16 bytes); returns buf. */
char *dhcp_ip_str(uint32_t ip, char *buf);
/* 24 for 255.255.255.0; -1 for a mask that is not contiguous. */
int dhcp_prefix_len(uint32_t mask);
/* An address a server may hand out: not 0, loopback, multicast, class E or broadcast. */
int dhcp_usable_addr(uint32_t ip);

#endif
