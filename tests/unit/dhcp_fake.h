/*
 * dhcp_fake.h - server replies for the DHCP tests (test_dhcp.c,
 * test_netif.c), built byte by byte so a test can make any of them wrong.
 *
 *   uint8_t pkt[DF_MAX];
 *   struct df_hdr h = df_hdr(DHCPOFFER... xid, mac, yiaddr);
 *   static const uint8_t opts[] = { 53, 1, 2, 54, 4, 10, 0, 2, 2, 255 };
 *   size_t n = df_build(pkt, &h, opts, sizeof(opts), 0);
 *
 * The header is RFC 2131's: op, htype, hlen, hops, xid, secs, flags,
 * ciaddr, yiaddr, siaddr, giaddr, chaddr[16], sname[64], file[128], then
 * the cookie and the options exactly as given; pad_to > 0 fills with zeros
 * up to that length (slirp sends 548 bytes).
 */
#ifndef SL_TEST_DHCP_FAKE_H
#define SL_TEST_DHCP_FAKE_H

#include <stdint.h>
#include <string.h>

#define DF_MAX 2048

struct df_hdr {
	uint8_t op, htype, hlen;
	uint32_t xid;
	uint16_t flags;
	uint32_t ciaddr, yiaddr, siaddr;
	uint8_t mac[6];
	uint32_t cookie;
	uint8_t sname[64];
	uint8_t file[128];
};

static inline struct df_hdr df_reply(uint32_t xid, const uint8_t mac[6], uint32_t yiaddr, uint32_t siaddr)
{
	struct df_hdr h;

	memset(&h, 0, sizeof(h));
	h.op = 2;
	h.htype = 1;
	h.hlen = 6;
	h.xid = xid;
	h.yiaddr = yiaddr;
	h.siaddr = siaddr;
	memcpy(h.mac, mac, 6);
	h.cookie = 0x63825363u;
	return h;
}

static inline void df_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline uint32_t df_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The reply in out (DF_MAX bytes); returns its length. */
static inline size_t df_build(uint8_t *out, const struct df_hdr *h, const uint8_t *opts, size_t n,
			      size_t pad_to)
{
	size_t len;

	memset(out, 0, DF_MAX);
	out[0] = h->op;
	out[1] = h->htype;
	out[2] = h->hlen;
	df_put32(out + 4, h->xid);
	out[10] = h->flags >> 8;
	out[11] = h->flags & 0xff;
	df_put32(out + 12, h->ciaddr);
	df_put32(out + 16, h->yiaddr);
	df_put32(out + 20, h->siaddr);
	memcpy(out + 28, h->mac, 6);
	memcpy(out + 44, h->sname, 64);
	memcpy(out + 108, h->file, 128);
	df_put32(out + 236, h->cookie);
	memcpy(out + 240, opts, n);
	len = 240 + n;
	return pad_to > len ? pad_to : len;
}

/* The IPv4 header checksum of ip (RFC 791), written in place. */
static inline void df_ip_csum(uint8_t *ip)
{
	size_t ihl = (size_t)(ip[0] & 15) * 4, i;
	uint32_t sum = 0;

	ip[10] = ip[11] = 0;
	for (i = 0; i < ihl; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
}

/* payload in IPv4 (no options, DF) and UDP, as a packet socket sees it; out holds n + 28 bytes. */
static inline size_t df_wrap(uint8_t *out, const uint8_t *payload, size_t n, uint32_t src, uint32_t dst,
			     uint16_t sport, uint16_t dport)
{
	size_t total = 28 + n;

	memset(out, 0, 28);
	out[0] = 0x45;
	out[2] = (uint8_t)(total >> 8);
	out[3] = (uint8_t)total;
	out[6] = 0x40;			/* DF */
	out[8] = 64;
	out[9] = 17;
	df_put32(out + 12, src);
	df_put32(out + 16, dst);
	df_ip_csum(out);
	out[20] = (uint8_t)(sport >> 8);
	out[21] = (uint8_t)sport;
	out[22] = (uint8_t)(dport >> 8);
	out[23] = (uint8_t)dport;
	out[24] = (uint8_t)((n + 8) >> 8);
	out[25] = (uint8_t)(n + 8);
	memcpy(out + 28, payload, n);
	return total;
}

#define DF_IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* slirp's answer (libslirp bootp.c): type, server id, mask, router, DNS, lease 24 h, END. */
#define DF_SLIRP_OPTS(type) { \
	53, 1, (type), \
	54, 4, 10, 0, 2, 2, \
	1, 4, 255, 255, 255, 0, \
	3, 4, 10, 0, 2, 2, \
	6, 4, 10, 0, 2, 3, \
	51, 4, 0x00, 0x01, 0x51, 0x80, \
	255 }

/* An EC2-like answer: /20 in a default VPC, MTU 9001, a domain, lease 1 h, a host name. */
#define DF_EC2_OPTS(type) { \
	53, 1, (type), \
	54, 4, 172, 31, 32, 1, \
	51, 4, 0x00, 0x00, 0x0e, 0x10, \
	1, 4, 255, 255, 240, 0, \
	28, 4, 172, 31, 47, 255, \
	3, 4, 172, 31, 32, 1, \
	6, 4, 172, 31, 0, 2, \
	15, 26, 'u', 's', '-', 'w', 'e', 's', 't', '-', '2', '.', 'c', 'o', 'm', 'p', 'u', 't', 'e', \
		'.', 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', \
	12, 14, 'i', 'p', '-', '1', '7', '2', '-', '3', '1', '-', '4', '0', '-', '7', \
	26, 2, 0x23, 0x29, \
	255 }

#endif
