/*
 * test_dhcp.c - the DHCPv4 engine (net/dhcp.c) without sockets or clocks:
 * DISCOVER and REQUEST checked byte by byte against RFC 2131's header and
 * RFC 2132's options; replies as slirp and EC2 send them; malformed replies
 * (every truncation, bad lengths, wrong cookie, wrong xid, option overload,
 * RFC 3396 joining, option 119) refused or read as the RFCs say; NAK; the
 * retransmission schedule, the acquisition deadline and renewal on a fake
 * clock.
 */
#include <stdlib.h>
#include "t.h"
#include "dhcp_fake.h"
#include "../../net/dhcp.h"

static const uint8_t MAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const struct dhcp_timing NOJITTER = { 4000, 64000, 0, 60000, 4 };

/* ---- helpers ---- */

/* Run dhcp_next at now expecting a message; copy it to pkt. */
static size_t next_send(struct dhcp_client *c, uint64_t now, uint8_t *pkt, uint32_t *dst)
{
	struct sl_wr w;
	struct dhcp_out out;
	size_t n = 0;
	int rc;

	wr_init(&w, 0);
	rc = dhcp_next(c, now, &w, &out);
	T_EQ(rc, DHCP_SEND);
	if (rc == DHCP_SEND && w.len <= DF_MAX) {
		memcpy(pkt, w.p, w.len);
		n = w.len;
		if (dst)
			*dst = out.dst;
	}
	wr_free(&w);
	return n;
}

/* dhcp_next at now expecting a wait; returns the wake time. */
static uint64_t next_wait(struct dhcp_client *c, uint64_t now)
{
	struct sl_wr w;
	struct dhcp_out out;
	int rc;

	wr_init(&w, 0);
	rc = dhcp_next(c, now, &w, &out);
	T_EQ(rc, DHCP_WAIT);
	T_EQ(w.len, 0);
	wr_free(&w);
	return out.wake_ms;
}

/*
 * The options of a client message as (code -> offset of its length byte);
 * checks that they run from 240 to END and that only zeros follow.
 */
static int opt_at(const uint8_t *p, size_t n, uint8_t code)
{
	size_t i = 240;

	while (i < n && p[i] != 255) {
		if (p[i] == 0) {
			i++;
			continue;
		}
		if (p[i] == code)
			return (int)i + 1;
		i += 2 + p[i + 1];
	}
	return -1;
}

static void check_common(const uint8_t *p, size_t n, uint8_t type, uint32_t xid)
{
	static const uint8_t prl[] = { 1, 3, 6, 15, 26, 51, 58, 59, 119 };
	size_t i, end;
	int o;

	T_EQ(n, 300);			/* padded to BOOTP's minimum */
	T_EQ(p[0], 1);			/* op BOOTREQUEST */
	T_EQ(p[1], 1);			/* htype Ethernet */
	T_EQ(p[2], 6);			/* hlen */
	T_EQ(p[3], 0);			/* hops */
	T_EQ(df_get32(p + 4), xid);
	T_EQ(df_get32(p + 16), 0);	/* yiaddr */
	T_EQ(df_get32(p + 20), 0);	/* siaddr */
	T_EQ(df_get32(p + 24), 0);	/* giaddr */
	T_MEMEQ(p + 28, MAC, 6);
	for (i = 34; i < 236; i++)	/* chaddr padding, sname, file */
		T_EQ(p[i], 0);
	T_EQ(p[236], 99);
	T_EQ(p[237], 130);
	T_EQ(p[238], 83);
	T_EQ(p[239], 99);
	o = opt_at(p, n, 53);
	T_CHECK(o > 0);
	if (o > 0) {
		T_EQ(p[o], 1);
		T_EQ(p[o + 1], type);
	}
	o = opt_at(p, n, 61);
	T_CHECK(o > 0);
	if (o > 0) {
		T_EQ(p[o], 7);
		T_EQ(p[o + 1], 1);
		T_MEMEQ(p + o + 2, MAC, 6);
	}
	o = opt_at(p, n, 57);
	T_CHECK(o > 0);
	if (o > 0) {
		T_EQ(p[o], 2);
		T_EQ(p[o + 1] << 8 | p[o + 2], 1500);
	}
	o = opt_at(p, n, 55);
	T_CHECK(o > 0);
	if (o > 0) {
		T_EQ(p[o], sizeof(prl));
		T_MEMEQ(p + o + 1, prl, sizeof(prl));
	}
	/* END, then only padding. */
	for (end = 240; end < n && p[end] != 255; end += p[end] ? 2 + p[end + 1] : 1)
		;
	T_CHECK(end < n);
	for (i = end + 1; i < n; i++)
		T_EQ(p[i], 0);
}

/* Feed a reply built from h and opts. */
static int feed(struct dhcp_client *c, const struct df_hdr *h, const uint8_t *opts, size_t n,
		uint64_t now)
{
	uint8_t pkt[DF_MAX];
	size_t len = df_build(pkt, h, opts, n, 0);

	return dhcp_input(c, pkt, len, now);
}

static int parse(const struct df_hdr *h, const uint8_t *opts, size_t n, struct dhcp_msg *m)
{
	uint8_t pkt[DF_MAX];
	size_t len = df_build(pkt, h, opts, n, 0);

	return dhcp_parse(pkt, len, m);
}

/* A client taken through DISCOVER/OFFER/REQUEST/ACK with slirp's answers at t=1000. */
static void bind_slirp(struct dhcp_client *c)
{
	static const uint8_t offer[] = DF_SLIRP_OPTS(DHCPOFFER);
	static const uint8_t ack[] = DF_SLIRP_OPTS(DHCPACK);
	uint8_t pkt[DF_MAX];
	struct df_hdr h;

	dhcp_init(c, MAC, 42, &NOJITTER);
	dhcp_start(c, 1000, 30000);
	(void)next_send(c, 1000, pkt, NULL);
	h = df_reply(c->xid, MAC, DF_IP(10, 0, 2, 15), DF_IP(10, 0, 2, 2));
	T_EQ(feed(c, &h, offer, sizeof(offer), 1000), DHCP_OFFERED);
	(void)next_send(c, 1000, pkt, NULL);
	T_EQ(feed(c, &h, ack, sizeof(ack), 1000), DHCP_LEASED);
	T_EQ(c->state, DHCP_BOUND);
}

/* ---- building ---- */

static void test_build_discover_fields(void)
{
	struct dhcp_req q = { DHCPDISCOVER, 0xdeadbeef, { 0 }, 7, 1, 0, 0, 0 };
	struct sl_wr w;

	memcpy(q.mac, MAC, 6);
	wr_init(&w, 0);
	T_EQ(dhcp_build(&w, &q), 0);
	check_common(w.p, w.len, DHCPDISCOVER, 0xdeadbeef);
	T_EQ(w.p[8] << 8 | w.p[9], 7);		/* secs */
	T_EQ(w.p[10] << 8 | w.p[11], 0x8000);	/* flags: broadcast */
	T_EQ(df_get32(w.p + 12), 0);		/* ciaddr */
	T_EQ(opt_at(w.p, w.len, 50), -1);
	T_EQ(opt_at(w.p, w.len, 54), -1);
	wr_free(&w);

	/* A capped writer reports its error instead of a short message. */
	wr_init(&w, 100);
	T_CHECK(dhcp_build(&w, &q) != 0);
	wr_free(&w);
}

static void test_discover_from_engine(void)
{
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	uint32_t dst = 0;
	size_t n;

	dhcp_init(&c, MAC, 1, NULL);
	T_EQ(c.state, DHCP_INIT);
	dhcp_start(&c, 5000, 30000);
	T_EQ(c.state, DHCP_SELECTING);
	T_CHECK(c.xid != 0);
	n = next_send(&c, 5000, pkt, &dst);
	check_common(pkt, n, DHCPDISCOVER, c.xid);
	T_EQ(dst, DHCP_BROADCAST);
	T_EQ(pkt[10], 0x80);
	T_EQ(pkt[8] << 8 | pkt[9], 0);
	/* The resend 9.5 s later says how long we have been at it. */
	n = next_send(&c, 14500, pkt, NULL);
	T_EQ(pkt[8] << 8 | pkt[9], 9);
	T_EQ(df_get32(pkt + 4), c.xid);		/* same xid for resends */

	/* Another seed, another xid. */
	{
		struct dhcp_client d;

		dhcp_init(&d, MAC, 2, NULL);
		dhcp_start(&d, 0, 0);
		T_CHECK(d.xid != c.xid);
	}
}

static void test_request_after_offer(void)
{
	static const uint8_t offer[] = DF_SLIRP_OPTS(DHCPOFFER);
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;
	uint32_t dst = 0;
	size_t n;
	int o;

	dhcp_init(&c, MAC, 9, &NOJITTER);
	dhcp_start(&c, 0, 60000);
	(void)next_send(&c, 0, pkt, NULL);
	(void)next_send(&c, 4000, pkt, NULL);	/* secs 4 */
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 15), DF_IP(10, 0, 2, 2));
	T_EQ(feed(&c, &h, offer, sizeof(offer), 5500), DHCP_OFFERED);
	T_EQ(c.state, DHCP_REQUESTING);
	n = next_send(&c, 5500, pkt, &dst);
	check_common(pkt, n, DHCPREQUEST, c.xid);
	T_EQ(dst, DHCP_BROADCAST);
	T_EQ(pkt[8] << 8 | pkt[9], 4);		/* the DISCOVER's secs (RFC 2131 4.4.1) */
	T_EQ(pkt[10], 0x80);
	T_EQ(df_get32(pkt + 12), 0);		/* ciaddr stays 0 while selecting */
	o = opt_at(pkt, n, 50);
	T_CHECK(o > 0);
	if (o > 0) {
		T_EQ(pkt[o], 4);
		T_EQ(df_get32(pkt + o + 1), DF_IP(10, 0, 2, 15));
	}
	o = opt_at(pkt, n, 54);
	T_CHECK(o > 0);
	if (o > 0) {
		T_EQ(pkt[o], 4);
		T_EQ(df_get32(pkt + o + 1), DF_IP(10, 0, 2, 2));
	}
}

/* ---- replies as real servers send them ---- */

static void test_slirp_ack(void)
{
	static const uint8_t opts[] = DF_SLIRP_OPTS(DHCPACK);
	uint8_t pkt[DF_MAX];
	struct dhcp_msg m;
	struct df_hdr h = df_reply(0x11223344, MAC, DF_IP(10, 0, 2, 15), DF_IP(10, 0, 2, 2));
	size_t n = df_build(pkt, &h, opts, sizeof(opts), 548);
	char a[16];

	T_EQ(n, 548);
	T_EQ(dhcp_parse(pkt, n, &m), 0);
	T_EQ(m.type, DHCPACK);
	T_EQ(m.xid, 0x11223344);
	T_MEMEQ(m.chaddr, MAC, 6);
	T_EQ(m.flags, 0);
	T_EQ(m.has_server, 1);
	T_STR_EQ(dhcp_ip_str(m.lease.addr, a), "10.0.2.15");
	T_EQ(m.lease.netmask, DF_IP(255, 255, 255, 0));
	T_EQ(dhcp_prefix_len(m.lease.netmask), 24);
	T_EQ(m.lease.router, DF_IP(10, 0, 2, 2));
	T_EQ(m.lease.server, DF_IP(10, 0, 2, 2));
	T_EQ(m.lease.ndns, 1);
	T_EQ(m.lease.dns[0], DF_IP(10, 0, 2, 3));
	T_EQ(m.lease.lease_s, 86400);
	T_EQ(m.lease.t1_s, 43200);
	T_EQ(m.lease.t2_s, 75600);
	T_EQ(m.lease.mtu, 0);
	T_STR_EQ(m.lease.domain, "");
	T_STR_EQ(m.lease.search, "");
	T_STR_EQ(m.message, "");
}

static void test_ec2_ack(void)
{
	static const uint8_t opts[] = DF_EC2_OPTS(DHCPACK);
	struct dhcp_msg m;
	struct df_hdr h = df_reply(7, MAC, DF_IP(172, 31, 40, 7), 0);

	T_EQ(parse(&h, opts, sizeof(opts), &m), 0);
	T_EQ(m.type, DHCPACK);
	T_EQ(m.lease.addr, DF_IP(172, 31, 40, 7));
	T_EQ(dhcp_prefix_len(m.lease.netmask), 20);
	T_EQ(m.lease.router, DF_IP(172, 31, 32, 1));
	T_EQ(m.lease.server, DF_IP(172, 31, 32, 1));
	T_EQ(m.lease.ndns, 1);
	T_EQ(m.lease.dns[0], DF_IP(172, 31, 0, 2));
	T_EQ(m.lease.mtu, 9001);
	T_EQ(m.lease.lease_s, 3600);
	T_EQ(m.lease.t1_s, 1800);
	T_EQ(m.lease.t2_s, 3150);
	T_STR_EQ(m.lease.domain, "us-west-2.compute.internal");
	T_STR_EQ(m.lease.search, "us-west-2.compute.internal");
}

static void test_exchange_slirp(void)
{
	struct dhcp_client c;

	bind_slirp(&c);
	T_EQ(c.lease.addr, DF_IP(10, 0, 2, 15));
	T_EQ(c.lease.router, DF_IP(10, 0, 2, 2));
	T_EQ(c.bound_ms, 1000);		/* times count from the REQUEST */
	T_EQ(c.deadline_ms, 0);
	/* Bound: nothing to do until T1. */
	T_EQ(next_wait(&c, 2000), 1000 + 43200 * 1000ull);
}

static void test_exchange_ec2(void)
{
	static const uint8_t offer[] = DF_EC2_OPTS(DHCPOFFER);
	static const uint8_t ack[] = DF_EC2_OPTS(DHCPACK);
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;

	dhcp_init(&c, MAC, 3, NULL);
	dhcp_start(&c, 0, 30000);
	(void)next_send(&c, 0, pkt, NULL);
	h = df_reply(c.xid, MAC, DF_IP(172, 31, 40, 7), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 10), DHCP_OFFERED);
	(void)next_send(&c, 10, pkt, NULL);
	T_EQ(feed(&c, &h, ack, sizeof(ack), 20), DHCP_LEASED);
	T_EQ(c.bound_ms, 10);		/* from the REQUEST, not the ACK */
	T_EQ(c.lease.mtu, 9001);
	T_STR_EQ(c.lease.search, "us-west-2.compute.internal");
}

/* ---- what is refused ---- */

static void test_every_truncation_refused(void)
{
	static const uint8_t opts[] = DF_EC2_OPTS(DHCPACK);
	uint8_t pkt[DF_MAX];
	struct dhcp_msg m;
	struct df_hdr h = df_reply(7, MAC, DF_IP(172, 31, 40, 7), 0);
	size_t n = df_build(pkt, &h, opts, sizeof(opts), 0), k;
	int bad = 0;

	T_EQ(dhcp_parse(pkt, n, &m), 0);
	/* Every prefix without the END byte is refused, as SL_E_SHORT. */
	for (k = 0; k < n; k++) {
		uint8_t *copy = malloc(k ? k : 1);	/* exact size: ASan sees overreads */

		memcpy(copy, pkt, k);
		if (dhcp_parse(copy, k, &m) != SL_E_SHORT)
			bad++;
		free(copy);
	}
	T_EQ(bad, 0);
}

static void test_malformed(void)
{
	static const struct {
		const char *what;
		uint8_t opts[24];
		size_t n;
		int want;
	} cases[] = {
		{ "option runs past the end", { 53, 1, 5, 3, 8, 10, 0, 2, 2 }, 9, SL_E_SHORT },
		{ "length byte missing", { 53, 1, 5, 3 }, 4, SL_E_SHORT },
		{ "no END", { 53, 1, 5, 0, 0 }, 5, SL_E_SHORT },
		{ "no message type", { 1, 4, 255, 255, 255, 0, 255 }, 7, SL_E_INVALID },
		{ "message type of 2 bytes", { 53, 2, 5, 5, 255 }, 5, SL_E_INVALID },
		{ "message type 0", { 53, 1, 0, 255 }, 4, SL_E_INVALID },
		{ "message type 9", { 53, 1, 9, 255 }, 4, SL_E_INVALID },
		{ "two message types (joined: 2 bytes)", { 53, 1, 5, 53, 1, 5, 255 }, 7, SL_E_INVALID },
		{ "mask of 3 bytes", { 53, 1, 5, 1, 3, 255, 255, 255, 255 }, 9, SL_E_INVALID },
		{ "mask not contiguous", { 53, 1, 5, 1, 4, 255, 0, 255, 0, 255 }, 10, SL_E_INVALID },
		{ "router of 0 bytes", { 53, 1, 5, 3, 0, 255 }, 6, SL_E_INVALID },
		{ "router of 5 bytes", { 53, 1, 5, 3, 5, 10, 0, 2, 2, 1, 255 }, 11, SL_E_INVALID },
		{ "DNS of 6 bytes", { 53, 1, 5, 6, 6, 10, 0, 2, 3, 1, 1, 255 }, 12, SL_E_INVALID },
		{ "server id of 2 bytes", { 53, 1, 5, 54, 2, 10, 0, 255 }, 8, SL_E_INVALID },
		{ "lease of 2 bytes", { 53, 1, 5, 51, 2, 1, 0, 255 }, 8, SL_E_INVALID },
		{ "T1 of 3 bytes", { 53, 1, 5, 58, 3, 1, 0, 0, 255 }, 9, SL_E_INVALID },
		{ "MTU of 3 bytes", { 53, 1, 5, 26, 3, 0x23, 0x29, 0, 255 }, 9, SL_E_INVALID },
		{ "overload 4", { 53, 1, 5, 52, 1, 4, 255 }, 7, SL_E_INVALID },
		{ "overload of 2 bytes", { 53, 1, 5, 52, 2, 1, 1, 255 }, 8, SL_E_INVALID },
		{ "overload 1 with an empty file field (no END)", { 53, 1, 5, 52, 1, 1, 255 }, 7, SL_E_SHORT },
	};
	struct dhcp_msg m;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);
		int rc = parse(&h, cases[i].opts, cases[i].n, &m);

		if (rc != cases[i].want) {
			fprintf(stderr, "  case \"%s\": %d (%s), want %d\n", cases[i].what, rc,
				sl_strerror(rc), cases[i].want);
			T_EQ(rc, cases[i].want);
		}
	}
}

static void test_bad_header(void)
{
	static const uint8_t opts[] = DF_SLIRP_OPTS(DHCPACK);
	struct dhcp_msg m;
	struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);

	h.cookie = 0x63825364u;
	T_EQ(parse(&h, opts, sizeof(opts), &m), SL_E_INVALID);
	h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);
	h.op = 1;			/* a request, e.g. another client's DISCOVER */
	T_EQ(parse(&h, opts, sizeof(opts), &m), SL_E_INVALID);
	h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);
	h.htype = 6;
	T_EQ(parse(&h, opts, sizeof(opts), &m), SL_E_INVALID);
	h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);
	h.hlen = 16;
	T_EQ(parse(&h, opts, sizeof(opts), &m), SL_E_INVALID);
	T_EQ(dhcp_parse(NULL, 0, &m), SL_E_SHORT);
}

static void test_wrong_xid_or_mac_ignored(void)
{
	static const uint8_t offer[] = DF_SLIRP_OPTS(DHCPOFFER);
	static const uint8_t other_mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x57 };
	static const uint8_t bad[] = { 53, 1, 2, 3, 9 };	/* truncated */
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;

	dhcp_init(&c, MAC, 5, NULL);
	dhcp_start(&c, 0, 30000);
	(void)next_send(&c, 0, pkt, NULL);
	h = df_reply(c.xid + 1, MAC, DF_IP(10, 0, 2, 15), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 1), DHCP_IGNORED);
	h = df_reply(c.xid, other_mac, DF_IP(10, 0, 2, 15), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 1), DHCP_IGNORED);
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 15), 0);
	T_EQ(feed(&c, &h, bad, sizeof(bad), 1), SL_E_SHORT);
	T_EQ(c.state, DHCP_SELECTING);
	/* An ACK while selecting is not an offer. */
	{
		static const uint8_t ack[] = DF_SLIRP_OPTS(DHCPACK);

		T_EQ(feed(&c, &h, ack, sizeof(ack), 1), DHCP_IGNORED);
	}
	T_EQ(c.state, DHCP_SELECTING);
}

static void test_offer_checks(void)
{
	/* No server id: RFC 2131 table 3 requires it in an OFFER. */
	static const uint8_t no_server[] = { 53, 1, 2, 1, 4, 255, 255, 255, 0, 255 };
	static const uint8_t offer[] = DF_SLIRP_OPTS(DHCPOFFER);
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;

	dhcp_init(&c, MAC, 6, NULL);
	dhcp_start(&c, 0, 30000);
	(void)next_send(&c, 0, pkt, NULL);
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 15), 0);
	T_EQ(feed(&c, &h, no_server, sizeof(no_server), 1), DHCP_IGNORED);
	h = df_reply(c.xid, MAC, 0, 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 1), DHCP_IGNORED);
	h = df_reply(c.xid, MAC, DF_IP(127, 0, 0, 1), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 1), DHCP_IGNORED);
	h = df_reply(c.xid, MAC, DF_IP(224, 0, 0, 1), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 1), DHCP_IGNORED);
	h = df_reply(c.xid, MAC, DHCP_BROADCAST, 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 1), DHCP_IGNORED);
	T_EQ(c.state, DHCP_SELECTING);
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 15), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 1), DHCP_OFFERED);
	/* A second offer once one is taken changes nothing. */
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 16), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 2), DHCP_IGNORED);
	T_EQ(c.offer.addr, DF_IP(10, 0, 2, 15));
}

static void test_nak(void)
{
	static const uint8_t offer[] = DF_SLIRP_OPTS(DHCPOFFER);
	static const uint8_t nak_other[] = { 53, 1, 6, 54, 4, 10, 0, 2, 9, 255 };
	static const uint8_t nak[] = { 53, 1, 6, 54, 4, 10, 0, 2, 2,
		56, 12, 'n', 'o', ' ', 'l', 'e', 'a', 's', 'e', '\n', 'x', 0x7f, 'y', 255 };
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;
	uint32_t old_xid;

	dhcp_init(&c, MAC, 8, &NOJITTER);
	dhcp_start(&c, 0, 30000);
	(void)next_send(&c, 0, pkt, NULL);
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 15), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 100), DHCP_OFFERED);
	(void)next_send(&c, 100, pkt, NULL);
	h = df_reply(c.xid, MAC, 0, 0);
	/* A NAK from a server we did not choose is not ours to obey. */
	T_EQ(feed(&c, &h, nak_other, sizeof(nak_other), 200), DHCP_IGNORED);
	T_EQ(c.state, DHCP_REQUESTING);
	T_EQ(feed(&c, &h, nak, sizeof(nak), 200), DHCP_NAKED);
	T_EQ(c.state, DHCP_INIT);
	T_STR_EQ(c.nak_message, "no leasexy");	/* unprintable bytes dropped */
	/* DISCOVER again after a pause, with a new xid, within the same deadline. */
	old_xid = c.xid;
	T_EQ(next_wait(&c, 200), 1200);
	(void)next_send(&c, 1200, pkt, NULL);
	T_EQ(pkt[242], DHCPDISCOVER);
	T_CHECK(df_get32(pkt + 4) != old_xid);
	T_EQ(c.deadline_ms, 30000);
}

/* ---- option overload, joining, names ---- */

static void test_overload_and_joining(void)
{
	/* Options say: file and sname hold options too (52 = 3). */
	static const uint8_t opts[] = { 53, 1, 5, 52, 1, 3, 54, 4, 10, 0, 2, 2,
		6, 4, 10, 0, 2, 3, 255 };
	struct dhcp_msg m;
	struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);
	/* file: the second half of the DNS option (RFC 3396 joining), a mask. */
	static const uint8_t file[] = { 6, 4, 10, 0, 2, 4, 1, 4, 255, 255, 0, 0, 255 };
	/* sname: the router; then garbage after END that must not be read. */
	static const uint8_t sname[] = { 0, 0, 3, 4, 10, 0, 2, 1, 255, 3, 99 };

	memcpy(h.file, file, sizeof(file));
	memcpy(h.sname, sname, sizeof(sname));
	T_EQ(parse(&h, opts, sizeof(opts), &m), 0);
	T_EQ(m.lease.ndns, 2);
	T_EQ(m.lease.dns[0], DF_IP(10, 0, 2, 3));
	T_EQ(m.lease.dns[1], DF_IP(10, 0, 2, 4));
	T_EQ(dhcp_prefix_len(m.lease.netmask), 16);
	T_EQ(m.lease.router, DF_IP(10, 0, 2, 1));

	/* Without option 52 the same file and sname bytes are a boot file name. */
	{
		static const uint8_t plain[] = { 53, 1, 5, 255 };

		T_EQ(parse(&h, plain, sizeof(plain), &m), 0);
		T_EQ(m.lease.ndns, 0);
		T_EQ(m.lease.router, 0);
		T_EQ(dhcp_prefix_len(m.lease.netmask), 8);	/* class A default */
	}
	/* Option 52 inside file is refused. */
	{
		static const uint8_t bad_file[] = { 52, 1, 2, 255 };
		static const uint8_t o1[] = { 53, 1, 5, 52, 1, 1, 255 };

		memset(h.file, 0, sizeof(h.file));
		memcpy(h.file, bad_file, sizeof(bad_file));
		T_EQ(parse(&h, o1, sizeof(o1), &m), SL_E_INVALID);
	}
	/* Joined instances of a 4-byte option give 8 bytes: refused. */
	{
		static const uint8_t twice[] = { 53, 1, 5, 51, 4, 0, 0, 1, 0, 51, 4, 0, 0, 1, 0, 255 };

		T_EQ(parse(&h, twice, sizeof(twice), &m), SL_E_INVALID);
	}
}

static void test_option_cap(void)
{
	/* Three instances of option 6 of 252 bytes each: 756 > DHCP_OPT_CAP. */
	uint8_t opts[3 + 3 * 254 + 1];
	struct dhcp_msg m;
	struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);
	size_t i, n = 0;

	opts[n++] = 53;
	opts[n++] = 1;
	opts[n++] = 5;
	for (i = 0; i < 3; i++) {
		opts[n++] = 6;
		opts[n++] = 252;
		memset(opts + n, 10, 252);
		n += 252;
	}
	opts[n++] = 255;
	T_EQ(parse(&h, opts, n, &m), SL_E_TOOBIG);
	/* Two of them (504 bytes) fit; only the first three servers are kept. */
	opts[3 + 2 * 254] = 255;
	T_EQ(parse(&h, opts, 3 + 2 * 254 + 1, &m), 0);
	T_EQ(m.lease.ndns, DHCP_MAX_DNS);
}

static void test_domain_names(void)
{
	static const struct {
		const char *opt;
		const char *domain, *search;
	} cases[] = {
		{ "ec2.internal", "ec2.internal", "ec2.internal" },
		{ "example.com.", "example.com", "example.com" },
		{ "example.com\0\0", "example.com", "example.com" },	/* NUL-terminated by the server */
		{ "a.example b.example", "a.example", "a.example b.example" },
		{ "evil\nnameserver 6.6.6.6", "", "" },		/* would inject a line */
		{ "x;y", "", "" },
		{ "a..b", "", "" },
		{ ".a", "", "" },
		{ "a\0b", "", "" },
	};
	static const size_t lens[] = { 12, 12, 13, 19, 23, 3, 4, 2, 3 };
	struct dhcp_msg m;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t opts[64] = { 53, 1, 5, 15 };
		size_t n = 4;
		struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);

		opts[n++] = (uint8_t)lens[i];
		memcpy(opts + n, cases[i].opt, lens[i]);
		n += lens[i];
		opts[n++] = 255;
		T_EQ(parse(&h, opts, n, &m), 0);
		if (strcmp(m.lease.domain, cases[i].domain) || strcmp(m.lease.search, cases[i].search))
			fprintf(stderr, "  case %zu\n", i);
		T_STR_EQ(m.lease.domain, cases[i].domain);
		T_STR_EQ(m.lease.search, cases[i].search);
	}
	/* A label of 64 bytes is too long. */
	{
		uint8_t opts[80] = { 53, 1, 5, 15, 64 };
		struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);

		memset(opts + 5, 'a', 64);
		opts[69] = 255;
		T_EQ(parse(&h, opts, 70, &m), 0);
		T_STR_EQ(m.lease.domain, "");
		opts[4] = 63;
		opts[68] = 255;
		T_EQ(parse(&h, opts, 69, &m), 0);
		T_EQ(strlen(m.lease.domain), 63);
	}
}

static void test_search_option(void)
{
	/* "eng.example.com", then "example.com" as a pointer to offset 4. */
	static const uint8_t opts[] = { 53, 1, 5, 15, 7, 'f', 'o', 'o', '.', 'o', 'r', 'g',
		119, 19, 3, 'e', 'n', 'g', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		0xc0, 4, 255 };
	/* The same list split over two instances of 119 (RFC 3396). */
	static const uint8_t split[] = { 53, 1, 5,
		119, 10, 3, 'e', 'n', 'g', 7, 'e', 'x', 'a', 'm', 'p',
		119, 9, 'l', 'e', 3, 'c', 'o', 'm', 0, 0xc0, 4, 255 };
	/* A pointer to itself, and one forward: refused, option 15 stays. */
	static const uint8_t loop[] = { 53, 1, 5, 15, 7, 'f', 'o', 'o', '.', 'o', 'r', 'g',
		119, 4, 1, 'a', 0xc0, 2, 255 };
	static const uint8_t fwd[] = { 53, 1, 5, 119, 6, 0xc0, 2, 1, 'a', 0, 0, 255 };
	static const uint8_t badchar[] = { 53, 1, 5, 119, 5, 3, 'a', ' ', 'b', 0, 255 };
	static const uint8_t cut[] = { 53, 1, 5, 119, 3, 5, 'a', 'b', 255 };
	/* Label types 01 and 10 (RFC 1035 4.1.4 reserves them). */
	static const uint8_t type40[] = { 53, 1, 5, 119, 4, 0x41, 'a', 'b', 0, 255 };
	static const uint8_t type80[] = { 53, 1, 5, 119, 4, 0x81, 'a', 'b', 0, 255 };
	struct dhcp_msg m;
	struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);

	T_EQ(parse(&h, opts, sizeof(opts), &m), 0);
	T_STR_EQ(m.lease.domain, "foo.org");
	T_STR_EQ(m.lease.search, "eng.example.com example.com");
	T_EQ(parse(&h, split, sizeof(split), &m), 0);
	T_STR_EQ(m.lease.search, "eng.example.com example.com");
	T_EQ(parse(&h, loop, sizeof(loop), &m), 0);
	T_STR_EQ(m.lease.search, "foo.org");
	T_EQ(parse(&h, fwd, sizeof(fwd), &m), 0);
	T_STR_EQ(m.lease.search, "");
	T_EQ(parse(&h, badchar, sizeof(badchar), &m), 0);
	T_STR_EQ(m.lease.search, "");
	T_EQ(parse(&h, cut, sizeof(cut), &m), 0);
	T_STR_EQ(m.lease.search, "");
	T_EQ(parse(&h, type40, sizeof(type40), &m), 0);
	T_STR_EQ(m.lease.search, "");
	T_EQ(parse(&h, type80, sizeof(type80), &m), 0);
	T_STR_EQ(m.lease.search, "");
}

static void test_lease_times(void)
{
	static const struct {
		uint8_t opts[24];
		size_t n;
		uint32_t lease, t1, t2;
	} cases[] = {
		{ { 53, 1, 5, 255 }, 4, DHCP_INFINITE, DHCP_INFINITE, DHCP_INFINITE },
		{ { 53, 1, 5, 51, 4, 0, 0, 0, 100, 255 }, 10, 100, 50, 87 },
		{ { 53, 1, 5, 51, 4, 0, 0, 0, 100, 58, 4, 0, 0, 0, 30, 59, 4, 0, 0, 0, 60, 255 }, 22, 100, 30, 60 },
		/* T1 after T2, T2 after the lease: defaults instead */
		{ { 53, 1, 5, 51, 4, 0, 0, 0, 100, 58, 4, 0, 0, 0, 90, 59, 4, 0, 0, 0, 80, 255 }, 22, 100, 50, 80 },
		{ { 53, 1, 5, 51, 4, 0, 0, 0, 100, 59, 4, 0, 0, 1, 0, 255 }, 16, 100, 50, 87 },
		{ { 53, 1, 5, 51, 4, 0xff, 0xff, 0xff, 0xff, 58, 4, 0, 0, 0, 9, 255 }, 16,
		  DHCP_INFINITE, DHCP_INFINITE, DHCP_INFINITE },
	};
	struct dhcp_msg m;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);

		T_EQ(parse(&h, cases[i].opts, cases[i].n, &m), 0);
		T_EQ(m.lease.lease_s, cases[i].lease);
		T_EQ(m.lease.t1_s, cases[i].t1);
		T_EQ(m.lease.t2_s, cases[i].t2);
	}
	/* An MTU below 68 is ignored, not refused. */
	{
		static const uint8_t o[] = { 53, 1, 5, 26, 2, 0, 67, 255 };
		struct df_hdr h = df_reply(1, MAC, DF_IP(10, 0, 2, 15), 0);

		T_EQ(parse(&h, o, sizeof(o), &m), 0);
		T_EQ(m.lease.mtu, 0);
	}
}

static void test_helpers(void)
{
	char b[16];

	T_STR_EQ(dhcp_ip_str(DF_IP(255, 255, 255, 255), b), "255.255.255.255");
	T_EQ(dhcp_prefix_len(0), 0);
	T_EQ(dhcp_prefix_len(0xffffffff), 32);
	T_EQ(dhcp_prefix_len(DF_IP(255, 255, 255, 254)), 31);
	T_EQ(dhcp_prefix_len(DF_IP(255, 255, 0, 255)), -1);
	T_EQ(dhcp_prefix_len(DF_IP(0, 255, 255, 255)), -1);
	T_EQ(dhcp_usable_addr(DF_IP(10, 0, 2, 15)), 1);
	T_EQ(dhcp_usable_addr(DF_IP(0, 1, 2, 3)), 0);
	T_EQ(dhcp_usable_addr(DF_IP(240, 0, 0, 1)), 0);
	T_STR_EQ(dhcp_state_name(DHCP_REBINDING), "REBINDING");
}

/* ---- IPv4 and UDP from a packet socket ---- */

static int unwrap(const uint8_t *p, size_t n, size_t *len, uint32_t *src, uint16_t *sport,
		  const uint8_t **payload)
{
	uint8_t *copy = malloc(n ? n : 1);	/* exact size: ASan sees overreads */
	const uint8_t *pl = NULL;
	int rc;

	memcpy(copy, p, n);
	rc = dhcp_unwrap(copy, n, &pl, len, src, sport);
	if (rc == 0 && payload)
		*payload = pl ? p + (pl - copy) : NULL;
	free(copy);
	return rc;
}

static void test_unwrap(void)
{
	static const uint8_t opts[] = DF_SLIRP_OPTS(DHCPACK);
	uint8_t dhcp[DF_MAX], pkt[DF_MAX + 64], opt_pkt[DF_MAX + 64];
	struct df_hdr h = df_reply(9, MAC, DF_IP(10, 0, 2, 15), 0);
	size_t n = df_build(dhcp, &h, opts, sizeof(opts), 0), len = 0, total, k;
	const uint8_t *payload = NULL;
	uint32_t src = 0;
	uint16_t sport = 0;
	int bad = 0;

	total = df_wrap(pkt, dhcp, n, DF_IP(10, 0, 2, 2), DF_IP(10, 0, 2, 15), 67, 68);
	T_EQ(total, n + 28);
	T_EQ(unwrap(pkt, total, &len, &src, &sport, &payload), 0);
	T_EQ(len, n);
	T_EQ(src, DF_IP(10, 0, 2, 2));
	T_EQ(sport, 67);
	T_CHECK(payload == pkt + 28);
	/* Ethernet padding after the datagram is not part of it. */
	memset(pkt + total, 0xee, 10);
	T_EQ(unwrap(pkt, total + 10, &len, &src, &sport, NULL), 0);
	T_EQ(len, n);
	/* Every cut-short packet is refused. */
	for (k = 0; k < total; k++)
		if (unwrap(pkt, k, &len, &src, &sport, NULL) >= 0)
			bad++;
	T_EQ(bad, 0);

	/* An IP option (a NOP and an end of options) moves the UDP header. */
	memcpy(opt_pkt, pkt, 20);
	opt_pkt[0] = 0x46;
	opt_pkt[20] = 1;
	opt_pkt[21] = opt_pkt[22] = opt_pkt[23] = 0;
	memcpy(opt_pkt + 24, pkt + 20, total - 20);
	opt_pkt[3] += 4;		/* total length, no carry for this size */
	df_ip_csum(opt_pkt);
	T_EQ(unwrap(opt_pkt, total + 4, &len, &src, &sport, &payload), 0);
	T_EQ(len, n);
	T_CHECK(payload == opt_pkt + 32);

	pkt[15] ^= 1;			/* the source address: checksum no longer holds */
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_INVALID);
	pkt[15] ^= 1;
	pkt[0] = 0x65;			/* IPv6's version */
	df_ip_csum(pkt);
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_INVALID);
	pkt[0] = 0x44;			/* header shorter than 20 */
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_INVALID);
	pkt[0] = 0x45;
	pkt[6] = 0x20;			/* more fragments */
	df_ip_csum(pkt);
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_PROTO);
	pkt[6] = 0x00;
	pkt[7] = 0x10;			/* a later fragment */
	df_ip_csum(pkt);
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_PROTO);
	pkt[7] = 0;
	pkt[9] = 6;			/* TCP */
	df_ip_csum(pkt);
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_NOTFOUND);
	pkt[9] = 17;
	df_ip_csum(pkt);
	pkt[23] = 67;			/* to the server port: our own DISCOVER */
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_NOTFOUND);
	pkt[23] = 68;
	pkt[2] += 1;			/* IP length beyond what arrived */
	df_ip_csum(pkt);
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_SHORT);
	pkt[2] -= 1;
	df_ip_csum(pkt);
	pkt[24] = 0;
	pkt[25] = 7;			/* UDP length below its header */
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_INVALID);
	pkt[24] = (uint8_t)((n + 9) >> 8);
	pkt[25] = (uint8_t)(n + 9);	/* UDP length past the IP datagram */
	T_EQ(unwrap(pkt, total, &len, &src, &sport, NULL), SL_E_SHORT);
}

/* ---- time ---- */

static void test_retransmit_schedule(void)
{
	static const uint64_t want[] = { 4000, 8000, 16000, 32000, 64000, 64000, 64000 };
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	uint64_t now = 0;
	size_t i;

	dhcp_init(&c, MAC, 11, &NOJITTER);
	dhcp_start(&c, 0, 0);		/* no deadline */
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t wake;

		(void)next_send(&c, now, pkt, NULL);
		wake = next_wait(&c, now);
		T_EQ(wake - now, want[i]);
		T_EQ(next_wait(&c, wake - 1), wake);	/* not a millisecond early */
		now = wake;
	}
}

static void test_retransmit_jitter(void)
{
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	uint64_t now = 0;
	int i, moved = 0, outside = 0;

	dhcp_init(&c, MAC, 12, NULL);	/* RFC timing: +-1 s */
	dhcp_start(&c, 0, 0);
	for (i = 0; i < 40; i++) {
		uint64_t base = i < 4 ? 4000ull << i : 64000, wake;

		(void)next_send(&c, now, pkt, NULL);
		wake = next_wait(&c, now);
		if (wake - now < base - 1000 || wake - now > base + 1000)
			outside++;
		if (wake - now != base)
			moved++;
		now = wake;
	}
	T_EQ(outside, 0);
	T_CHECK(moved > 30);
}

static void test_deadline(void)
{
	struct dhcp_client c;
	struct sl_wr w;
	struct dhcp_out out;
	uint8_t pkt[DF_MAX];
	uint64_t now = 100, wake;

	dhcp_init(&c, MAC, 13, &NOJITTER);
	dhcp_start(&c, 100, 10000);	/* gives up at 10100 */
	(void)next_send(&c, now, pkt, NULL);	/* resend at 4100 */
	(void)next_send(&c, 4100, pkt, NULL);	/* then 12100: past the deadline */
	wake = next_wait(&c, 4100);
	T_EQ(wake, 10100);		/* the wait never outlasts the deadline */
	wr_init(&w, 0);
	T_EQ(dhcp_next(&c, 10100, &w, &out), SL_E_TIMEOUT);
	T_EQ(c.state, DHCP_FAILED);
	T_EQ(dhcp_next(&c, 20000, &w, &out), SL_E_TIMEOUT);
	T_EQ(w.len, 0);
	wr_free(&w);
	/* Starting again works. */
	dhcp_start(&c, 30000, 1000);
	(void)next_send(&c, 30000, pkt, NULL);
	T_EQ(c.state, DHCP_SELECTING);
}

static void test_request_unanswered(void)
{
	static const uint8_t offer[] = DF_SLIRP_OPTS(DHCPOFFER);
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;
	uint64_t now = 0;
	uint32_t xid;
	int i;

	dhcp_init(&c, MAC, 14, &NOJITTER);
	dhcp_start(&c, 0, 0);
	(void)next_send(&c, 0, pkt, NULL);
	xid = c.xid;
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 15), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 0), DHCP_OFFERED);
	for (i = 0; i < 4; i++) {	/* request_tries REQUESTs, backing off */
		(void)next_send(&c, now, pkt, NULL);
		T_EQ(pkt[242], DHCPREQUEST);
		now = next_wait(&c, now);
	}
	/* Nobody answered: back to DISCOVER with a fresh xid. */
	(void)next_send(&c, now, pkt, NULL);
	T_EQ(pkt[242], DHCPDISCOVER);
	T_EQ(c.state, DHCP_SELECTING);
	T_CHECK(c.xid != xid);
}

static void test_renewal(void)
{
	static const uint8_t ack2[] = { 53, 1, 5, 54, 4, 10, 0, 2, 2, 51, 4, 0, 0, 0x0e, 0x10,
		1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2, 6, 4, 10, 0, 2, 3, 255 };
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;
	uint32_t dst = 0;
	uint64_t t1, t2, end, now, wake;
	size_t n;
	int i;

	bind_slirp(&c);			/* bound at 1000, lease 86400 s */
	t1 = 1000 + 43200000ull;
	t2 = 1000 + 75600000ull;
	end = 1000 + 86400000ull;
	T_EQ(next_wait(&c, t1 - 1), t1);

	/* T1: REQUEST unicast to the server, ciaddr set, no 50/54, no broadcast bit. */
	n = next_send(&c, t1, pkt, &dst);
	T_EQ(c.state, DHCP_RENEWING);
	check_common(pkt, n, DHCPREQUEST, c.xid);
	T_EQ(dst, DF_IP(10, 0, 2, 2));
	T_EQ(df_get32(pkt + 12), DF_IP(10, 0, 2, 15));
	T_EQ(pkt[10], 0);
	T_EQ(opt_at(pkt, n, 50), -1);
	T_EQ(opt_at(pkt, n, 54), -1);
	/* Resend after half the time left to T2. */
	wake = next_wait(&c, t1);
	T_EQ(wake, t1 + (t2 - t1) / 2);
	now = wake;
	(void)next_send(&c, now, pkt, NULL);
	/* Near T2 the 60 s minimum holds, but never past T2. */
	now = t2 - 30000;
	(void)next_send(&c, now, pkt, NULL);
	T_EQ(next_wait(&c, now), t2);

	/* T2: broadcast. */
	n = next_send(&c, t2, pkt, &dst);
	T_EQ(c.state, DHCP_REBINDING);
	T_EQ(dst, DHCP_BROADCAST);
	T_EQ(df_get32(pkt + 12), DF_IP(10, 0, 2, 15));
	T_EQ(next_wait(&c, t2), t2 + (end - t2) / 2);

	/* Any server's ACK renews; the lease now counts from this REQUEST. */
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 15), 0);
	T_EQ(feed(&c, &h, ack2, sizeof(ack2), t2 + 5), DHCP_RENEWED);
	T_EQ(c.state, DHCP_BOUND);
	T_EQ(c.bound_ms, t2);
	T_EQ(c.lease.lease_s, 3600);
	T_EQ(next_wait(&c, t2 + 5), t2 + 1800000);

	/* Nobody answers this time: the lease runs out. */
	now = t2 + 1800000;
	(void)next_send(&c, now, pkt, NULL);
	for (i = 0; i < 100 && c.state != DHCP_INIT; i++) {
		struct sl_wr w;
		struct dhcp_out out;
		int rc;

		wr_init(&w, 0);
		rc = dhcp_next(&c, now, &w, &out);
		wr_free(&w);
		if (rc == DHCP_WAIT)
			now = out.wake_ms;
		else if (rc == DHCP_EXPIRED)
			break;
		else if (rc != DHCP_SEND) {
			T_EQ(rc, DHCP_SEND);
			break;
		}
	}
	T_CHECK(i < 20);		/* a few resends, not a storm */
	T_EQ(now, t2 + 3600000);
	T_EQ(c.state, DHCP_INIT);
	T_EQ(c.lease.addr, DF_IP(10, 0, 2, 15));	/* so the driver knows what to remove */
	/* Then it starts over, with no deadline. */
	n = next_send(&c, now, pkt, &dst);
	T_EQ(pkt[242], DHCPDISCOVER);
	T_EQ(c.deadline_ms, 0);
}

static void test_renewal_nak_and_new_address(void)
{
	static const uint8_t nak[] = { 53, 1, 6, 54, 4, 10, 0, 2, 2, 255 };
	static const uint8_t ack[] = DF_SLIRP_OPTS(DHCPACK);
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;
	uint64_t t1;

	bind_slirp(&c);
	t1 = 1000 + 43200000ull;
	(void)next_send(&c, t1, pkt, NULL);
	/* An ACK with another address: a new lease. */
	h = df_reply(c.xid, MAC, DF_IP(10, 0, 2, 16), 0);
	T_EQ(feed(&c, &h, ack, sizeof(ack), t1 + 1), DHCP_LEASED);
	T_EQ(c.lease.addr, DF_IP(10, 0, 2, 16));
	(void)next_send(&c, t1 + 1 + 43200000ull, pkt, NULL);
	h = df_reply(c.xid, MAC, 0, 0);
	T_EQ(feed(&c, &h, nak, sizeof(nak), t1 + 2 + 43200000ull), DHCP_NAKED);
	T_EQ(c.state, DHCP_INIT);
}

static void test_infinite_lease(void)
{
	static const uint8_t offer[] = { 53, 1, 2, 54, 4, 10, 0, 2, 2, 255 };
	static const uint8_t ack[] = { 53, 1, 5, 54, 4, 10, 0, 2, 2, 255 };
	struct dhcp_client c;
	uint8_t pkt[DF_MAX];
	struct df_hdr h;

	dhcp_init(&c, MAC, 15, NULL);
	dhcp_start(&c, 0, 1000);
	(void)next_send(&c, 0, pkt, NULL);
	h = df_reply(c.xid, MAC, DF_IP(192, 168, 1, 5), 0);
	T_EQ(feed(&c, &h, offer, sizeof(offer), 1), DHCP_OFFERED);
	(void)next_send(&c, 1, pkt, NULL);
	T_EQ(feed(&c, &h, ack, sizeof(ack), 2), DHCP_LEASED);
	T_EQ(c.lease.lease_s, DHCP_INFINITE);
	T_EQ(dhcp_prefix_len(c.lease.netmask), 24);	/* class C default */
	T_EQ(next_wait(&c, 1000000), UINT64_MAX);	/* the deadline no longer applies */
}

int main(void)
{
	T_RUN(test_build_discover_fields);
	T_RUN(test_discover_from_engine);
	T_RUN(test_request_after_offer);
	T_RUN(test_slirp_ack);
	T_RUN(test_ec2_ack);
	T_RUN(test_exchange_slirp);
	T_RUN(test_exchange_ec2);
	T_RUN(test_every_truncation_refused);
	T_RUN(test_malformed);
	T_RUN(test_bad_header);
	T_RUN(test_wrong_xid_or_mac_ignored);
	T_RUN(test_offer_checks);
	T_RUN(test_nak);
	T_RUN(test_overload_and_joining);
	T_RUN(test_option_cap);
	T_RUN(test_domain_names);
	T_RUN(test_search_option);
	T_RUN(test_lease_times);
	T_RUN(test_helpers);
	T_RUN(test_unwrap);
	T_RUN(test_retransmit_schedule);
	T_RUN(test_retransmit_jitter);
	T_RUN(test_deadline);
	T_RUN(test_request_unanswered);
	T_RUN(test_renewal);
	T_RUN(test_renewal_nak_and_new_address);
	T_RUN(test_infinite_lease);
	return t_done();
}
