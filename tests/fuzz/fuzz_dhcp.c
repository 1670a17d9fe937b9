/*
 * fuzz_dhcp.c - libFuzzer target for the DHCP reply parser and client
 * engine (net/dhcp.c), and the resolv.conf text made from what they accept
 * (net/netif.c).
 *
 * Input:
 *   byte 0   bit 0: give each packet the client's xid and MAC (so replies
 *            reach the state machine, which a fuzzer could not guess);
 *            bit 1: packets are IPv4 as a packet socket receives them, and
 *            dhcp_unwrap() finds the reply inside
 *   then up to 4 packets, each a 2-byte big-endian length and that many
 *            bytes (a short last one takes what is left)
 *
 * Each packet (unwrapped, where bit 1 says so: the payload must lie inside
 * the packet) is parsed alone (dhcp_parse), then fed to a client that was
 * started and asked what to send (dhcp_next) before each one, with time
 * moving on by the packet's first byte in seconds.
 *
 * Checked beyond memory safety:
 *   - a parsed reply's lease keeps its promises: at most DHCP_MAX_DNS
 *     servers, a contiguous netmask, an MTU of 0 or >= 68, T1 <= T2 <=
 *     lease, names of label characters, dots and single spaces only, a
 *     printable NAK message;
 *   - parsing the same bytes twice gives the same answer;
 *   - a client that reports a new lease is BOUND with a usable address;
 *   - resolv.conf made from any accepted lease has only comment, search and
 *     nameserver lines: no bytes from a server can add a line of their own.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "net/dhcp.h"
#include "net/netif.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static int name_chars_ok(const char *s, size_t cap)
{
	size_t i, len = strnlen(s, cap);

	if (len == cap)
		return 0;	/* not terminated */
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || (c == ' ' && i > 0 && i + 1 < len && s[i - 1] != ' ')))
			return 0;
	}
	return 1;
}

static void check_lease(const struct dhcp_lease *l)
{
	char text[1024];
	int len, i, line_start = 1;

	if (l->ndns > DHCP_MAX_DNS || dhcp_prefix_len(l->netmask) < 0 || (l->mtu && l->mtu < 68))
		abort();
	if (l->t1_s > l->t2_s || l->t2_s > l->lease_s)
		abort();
	if (!name_chars_ok(l->domain, sizeof(l->domain)) || !name_chars_ok(l->search, sizeof(l->search)))
		abort();
	if (strchr(l->domain, ' '))
		abort();
	len = netif_resolv_conf("eth0", l, text, sizeof(text));
	if (len < 0)
		abort();	/* a checked lease always fits */
	for (i = 0; i < len; i++) {
		if (line_start && strncmp(text + i, "# ", 2) != 0 && strncmp(text + i, "search ", 7) != 0 &&
		    strncmp(text + i, "nameserver ", 11) != 0)
			abort();
		line_start = text[i] == '\n';
	}
	if (len == 0 || text[len - 1] != '\n')
		abort();
}

static void check_msg(const uint8_t *p, size_t n)
{
	struct dhcp_msg a, b;
	int ra = dhcp_parse(p, n, &a), rb = dhcp_parse(p, n, &b);
	size_t i;

	if (ra != rb)
		abort();
	if (ra != 0)
		return;
	if (memcmp(&a.lease, &b.lease, sizeof(a.lease)) != 0 || a.type != b.type)
		abort();
	if (a.type < DHCPDISCOVER || a.type > DHCPINFORM)
		abort();
	for (i = 0; a.message[i]; i++)
		if (i >= sizeof(a.message) - 1 || a.message[i] < 0x20 || a.message[i] >= 0x7f)
			abort();
	check_lease(&a.lease);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct dhcp_client c;
	uint64_t now = 1000;
	size_t off = 1;
	int patch, wrapped, k;

	if (n < 1)
		return 0;
	patch = d[0] & 1;
	wrapped = d[0] & 2;
	dhcp_init(&c, mac, 7, NULL);
	dhcp_start(&c, now, 60000);
	for (k = 0; k < 4 && off < n; k++) {
		struct dhcp_out out;
		struct sl_wr w;
		size_t len;
		uint8_t *p, *buf;
		int rc;

		if (n - off < 2)
			break;
		len = (size_t)d[off] << 8 | d[off + 1];
		off += 2;
		if (len > n - off)
			len = n - off;
		/* An exact-size copy, so a read past the end is caught. */
		p = buf = malloc(len ? len : 1);
		if (!p)
			return 0;
		memcpy(p, d + off, len);
		off += len;
		if (wrapped) {
			const uint8_t *pl;
			size_t plen;
			uint32_t src;
			uint16_t sport;

			if (dhcp_unwrap(buf, len, &pl, &plen, &src, &sport) != 0) {
				free(buf);
				continue;
			}
			if (pl < buf || plen > len || (size_t)(pl - buf) > len - plen)
				abort();
			p = buf + (pl - buf);
			len = plen;
		}
		if (patch && len >= 34) {
			p[4] = c.xid >> 24;
			p[5] = c.xid >> 16;
			p[6] = c.xid >> 8;
			p[7] = c.xid;
			memcpy(p + 28, mac, 6);
		}
		check_msg(p, len);

		wr_init(&w, 0);
		rc = dhcp_next(&c, now, &w, &out);
		if (rc == DHCP_SEND && (w.len < DHCP_MIN_SEND || !w.p))
			abort();
		wr_free(&w);
		now += len ? (uint64_t)p[0] * 1000 : 0;
		rc = dhcp_input(&c, p, len, now);
		if (rc == DHCP_LEASED || rc == DHCP_RENEWED) {
			if (c.state != DHCP_BOUND || !dhcp_usable_addr(c.lease.addr))
				abort();
			check_lease(&c.lease);
		}
		if (rc == DHCP_OFFERED && (c.state != DHCP_REQUESTING || !dhcp_usable_addr(c.offer.addr)))
			abort();
		free(buf);
	}
	return 0;
}
