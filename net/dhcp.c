/*
 * dhcp.c - the DHCPv4 client engine (see dhcp.h): message building, reply
 * parsing and the state machine.  No I/O, no clock, no globals.
 *
 * Owns: nothing on the heap.  A parse gathers the options it cares about
 * into a fixed table on the stack (struct opts, DHCP_OPT_CAP bytes per
 * option), then turns them into a struct dhcp_msg.
 *
 * How a reply is read (RFC 2131 section 2, 4.1; RFC 3396):
 *   1. the 236-byte header and the cookie 99.130.83.99, field by field;
 *   2. the options area to END, then `file` if option 52 says so, then
 *      `sname` (that order is the RFC's); each area must end with END, an
 *      option's length byte and value must lie within its area;
 *   3. instances of one option are appended in that order (RFC 3396) and
 *      only then checked, so an option split in two reads like one.
 * Only after all of that is anything given meaning, so a packet that fails
 * anywhere leaves nothing half-applied.
 *
 * Invariants (in addition to dhcp.h's):
 *   1. opts.len[i] <= DHCP_OPT_CAP: checked before each append.
 *   2. A compression pointer in option 119 points strictly before the
 *      label that holds it, so decoding a name always ends.
 *   3. In SELECTING and REQUESTING, next_ms <= deadline_ms is not assumed:
 *      the deadline is checked first on every call.
 */
#include <stdio.h>
#include <string.h>
#include "dhcp.h"

#define COOKIE 0x63825363u
#define BOOTREQUEST 1
#define BOOTREPLY 2
#define HTYPE_ETHER 1
#define FLAG_BROADCAST 0x8000
#define MAX_SEARCH_NAMES 6		/* older resolvers read no more */

/* ---- addresses ---- */

char *dhcp_ip_str(uint32_t ip, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
	return buf;
}

int dhcp_prefix_len(uint32_t mask)
{
	int n = 0;

	while (n < 32 && (mask & (0x80000000u >> n)))
		n++;
	/* Every bit after the first zero must be zero too. */
	if (n < 32 && (mask << n) != 0)
		return -1;
	return n;
}

int dhcp_usable_addr(uint32_t ip)
{
	uint8_t top = ip >> 24;

	return top != 0 && top != 127 && top < 224;
}

/* The mask an address's class implies, for a lease without option 1. */
static uint32_t class_mask(uint32_t ip)
{
	if (ip < 0x80000000u)
		return 0xff000000u;
	if (ip < 0xc0000000u)
		return 0xffff0000u;
	return 0xffffff00u;
}

const char *dhcp_state_name(enum dhcp_state s)
{
	switch (s) {
	case DHCP_INIT: return "INIT";
	case DHCP_SELECTING: return "SELECTING";
	case DHCP_REQUESTING: return "REQUESTING";
	case DHCP_BOUND: return "BOUND";
	case DHCP_RENEWING: return "RENEWING";
	case DHCP_REBINDING: return "REBINDING";
	case DHCP_FAILED: return "FAILED";
	}
	return "?";
}

/* ---- building ---- */

/* What option 55 asks for. */
static const uint8_t param_list[] = {
	DHO_SUBNET_MASK, DHO_ROUTER, DHO_DNS, DHO_DOMAIN_NAME, DHO_MTU,
	DHO_LEASE_TIME, DHO_T1, DHO_T2, DHO_SEARCH
};

int dhcp_build(struct sl_wr *w, const struct dhcp_req *q)
{
	size_t start = w->len;

	wr_u8(w, BOOTREQUEST);
	wr_u8(w, HTYPE_ETHER);
	wr_u8(w, 6);			/* hlen */
	wr_u8(w, 0);			/* hops */
	wr_u32(w, q->xid);
	wr_u16(w, q->secs);
	wr_u16(w, q->broadcast ? FLAG_BROADCAST : 0);
	wr_u32(w, q->ciaddr);
	wr_u32(w, 0);			/* yiaddr */
	wr_u32(w, 0);			/* siaddr */
	wr_u32(w, 0);			/* giaddr */
	wr_bytes(w, q->mac, 6);
	wr_zero(w, 10 + 64 + 128);	/* rest of chaddr, sname, file */
	wr_u32(w, COOKIE);

	wr_u8(w, DHO_MSG_TYPE);
	wr_u8(w, 1);
	wr_u8(w, q->type);
	wr_u8(w, DHO_CLIENT_ID);
	wr_u8(w, 7);
	wr_u8(w, HTYPE_ETHER);
	wr_bytes(w, q->mac, 6);
	wr_u8(w, DHO_MAX_MSG_SIZE);
	wr_u8(w, 2);
	wr_u16(w, DHCP_MAX_MSG);
	if (q->requested) {
		wr_u8(w, DHO_REQUESTED_IP);
		wr_u8(w, 4);
		wr_u32(w, q->requested);
	}
	if (q->server) {
		wr_u8(w, DHO_SERVER_ID);
		wr_u8(w, 4);
		wr_u32(w, q->server);
	}
	wr_u8(w, DHO_PARAM_LIST);
	wr_u8(w, sizeof(param_list));
	wr_bytes(w, param_list, sizeof(param_list));
	wr_u8(w, DHO_END);
	if (w->err == 0 && w->len - start < DHCP_MIN_SEND)
		wr_zero(w, DHCP_MIN_SEND - (w->len - start));
	return w->err;
}

/* ---- parsing: gathering options ---- */

/* The options a reply is read for; everything else is skipped. */
static const uint8_t kept[] = {
	DHO_SUBNET_MASK, DHO_ROUTER, DHO_DNS, DHO_DOMAIN_NAME, DHO_MTU,
	DHO_LEASE_TIME, DHO_OVERLOAD, DHO_MSG_TYPE, DHO_SERVER_ID, DHO_MESSAGE,
	DHO_T1, DHO_T2, DHO_SEARCH
};
#define NKEPT (sizeof(kept))

struct opts {
	uint8_t seen[NKEPT];
	uint16_t len[NKEPT];
	uint8_t val[NKEPT][DHCP_OPT_CAP];
};

static int slot_of(uint8_t code)
{
	size_t i;

	for (i = 0; i < NKEPT; i++)
		if (kept[i] == code)
			return (int)i;
	return -1;
}

/*
 * Read one area's options up to END, appending the kept ones to o.
 * main_area: whether option 52 may appear (only the options field).
 */
static int walk(struct sl_rd *r, struct opts *o, int main_area)
{
	for (;;) {
		const uint8_t *v;
		uint8_t code, len;
		int rc, s;

		if ((rc = rd_u8(r, &code)) != 0)
			return rc;	/* the area ended without END */
		if (code == DHO_PAD)
			continue;
		if (code == DHO_END)
			return 0;
		if ((rc = rd_u8(r, &len)) != 0 || (rc = rd_bytes(r, len, &v)) != 0)
			return rc;
		if (code == DHO_OVERLOAD && !main_area)
			return SL_E_INVALID;
		s = slot_of(code);
		if (s < 0)
			continue;
		if ((size_t)o->len[s] + len > DHCP_OPT_CAP)
			return SL_E_TOOBIG;
		memcpy(o->val[s] + o->len[s], v, len);
		o->len[s] += len;
		o->seen[s] = 1;
	}
}

/* The joined value of code: 1 and *v, *len when present, else 0. */
static int opt(const struct opts *o, uint8_t code, const uint8_t **v, size_t *len)
{
	int s = slot_of(code);

	if (s < 0 || !o->seen[s])
		return 0;
	*v = o->val[s];
	*len = o->len[s];
	return 1;
}

/* A 4-byte option: 1 and *out when present, 0 when absent, error otherwise. */
static int opt_u32(const struct opts *o, uint8_t code, uint32_t *out)
{
	const uint8_t *v;
	size_t len;
	struct sl_rd r;

	if (!opt(o, code, &v, &len))
		return 0;
	if (len != 4)
		return SL_E_INVALID;
	rd_init(&r, v, len);
	if (rd_u32(&r, out) != 0)
		return SL_E_INVALID;
	return 1;
}

/* ---- parsing: names that end up in resolv.conf ---- */

static int is_label_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/*
 * s[0..n) is a domain name we are willing to write: labels of 1..63 label
 * characters separated by single dots, at most DHCP_MAX_DOMAIN bytes.
 */
static int name_ok(const uint8_t *s, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > DHCP_MAX_DOMAIN)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (is_label_char(s[i])) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

/* Append name (n bytes) to the space-separated list dst; 0 when it does not fit. */
static int list_add(char *dst, size_t cap, const uint8_t *name, size_t n)
{
	size_t used = strlen(dst), need = n + (used ? 1 : 0);

	if (used + need + 1 > cap)
		return 0;
	if (used)
		dst[used++] = ' ';
	memcpy(dst + used, name, n);
	dst[used + n] = '\0';
	return 1;
}

/*
 * Option 15: one name, or (as some servers send) several separated by
 * spaces; trailing NULs and one trailing dot per name are tolerated.  On
 * success the first name goes to domain and all of them to list.  Any bad
 * name drops the whole option (0).
 */
static int parse_domain(const uint8_t *v, size_t len, char *domain, char *list, size_t list_cap)
{
	size_t i = 0, names = 0;

	while (len > 0 && v[len - 1] == 0)
		len--;
	domain[0] = list[0] = '\0';
	while (i < len) {
		size_t j = i, n;

		while (j < len && v[j] != ' ')
			j++;
		n = j - i;
		if (n > 1 && v[i + n - 1] == '.')
			n--;
		if (n > 0) {
			if (!name_ok(v + i, n))
				goto bad;
			if (names == 0) {
				memcpy(domain, v + i, n);
				domain[n] = '\0';
			}
			if (names < MAX_SEARCH_NAMES)
				(void)list_add(list, list_cap, v + i, n);
			names++;
		}
		i = j + 1;
	}
	return names > 0;
bad:
	domain[0] = list[0] = '\0';
	return 0;
}

/*
 * One name of option 119 starting at *pos in d[0..len): DNS labels
 * (RFC 1035 3.1) with compression pointers (4.1.4) into the same option
 * data.  The dotted name goes to out (cap bytes); *pos moves past the name
 * as it appears in sequence (past the first pointer, if any).
 */
static int search_name(const uint8_t *d, size_t len, size_t *pos, char *out, size_t cap)
{
	struct sl_rd r;
	size_t n = 0, label_at;
	int jumped = 0, jumps = 0, rc;

	rd_init(&r, d, len);
	if ((rc = rd_skip(&r, *pos)) != 0)
		return rc;
	for (;;) {
		const uint8_t *lab;
		uint8_t l, lo;

		label_at = r.off;
		if ((rc = rd_u8(&r, &l)) != 0)
			return rc;
		if (l == 0)
			break;
		if ((l & 0xc0) == 0xc0) {
			size_t to;

			if ((rc = rd_u8(&r, &lo)) != 0)
				return rc;
			to = (size_t)(l & 0x3f) << 8 | lo;
			/* Strictly backwards: every jump shrinks the position.
			 * The count is a second guard of the same promise. */
			if (to >= label_at || ++jumps > 64)
				return SL_E_INVALID;
			if (!jumped)
				*pos = r.off;
			jumped = 1;
			rd_init(&r, d, len);
			if ((rc = rd_skip(&r, to)) != 0)
				return rc;
			continue;
		}
		if (l & 0xc0)
			return SL_E_INVALID;	/* 0x40 and 0x80 label types */
		if ((rc = rd_bytes(&r, l, &lab)) != 0)
			return rc;
		if (n + (n ? 1 : 0) + l + 1 > cap || n + (n ? 1 : 0) + l > DHCP_MAX_DOMAIN)
			return SL_E_TOOBIG;
		if (n)
			out[n++] = '.';
		memcpy(out + n, lab, l);
		n += l;
	}
	if (!jumped)
		*pos = r.off;
	out[n] = '\0';
	if (n && !name_ok((const uint8_t *)out, n))
		return SL_E_INVALID;
	return 0;
}

/* Option 119 into list; 0 (list empty) when the option is malformed. */
static int parse_search(const uint8_t *d, size_t len, char *list, size_t cap)
{
	char name[DHCP_MAX_DOMAIN + 2];
	size_t pos = 0, names = 0;

	list[0] = '\0';
	while (pos < len) {
		size_t was = pos;

		/* A name takes at least one byte: the loop always ends. */
		if (search_name(d, len, &pos, name, sizeof(name)) != 0 || pos <= was) {
			list[0] = '\0';
			return 0;
		}
		if (name[0] && names < MAX_SEARCH_NAMES && list_add(list, cap, (const uint8_t *)name, strlen(name)))
			names++;
	}
	return names > 0;
}

/* ---- parsing: the reply ---- */

int dhcp_parse(const uint8_t *p, size_t n, struct dhcp_msg *m)
{
	struct opts o;
	struct sl_rd r, file, sname;
	const uint8_t *chaddr, *sname_p, *file_p, *v;
	uint8_t op, htype, hlen, hops, overload = 0;
	uint32_t cookie, giaddr, u;
	size_t len, i;
	int rc;

	memset(m, 0, sizeof(*m));
	memset(o.seen, 0, sizeof(o.seen));
	memset(o.len, 0, sizeof(o.len));
	rd_init(&r, p, n);
	if ((rc = rd_u8(&r, &op)) || (rc = rd_u8(&r, &htype)) || (rc = rd_u8(&r, &hlen)) ||
	    (rc = rd_u8(&r, &hops)) || (rc = rd_u32(&r, &m->xid)) || (rc = rd_skip(&r, 2)) ||
	    (rc = rd_u16(&r, &m->flags)) || (rc = rd_u32(&r, &m->ciaddr)) ||
	    (rc = rd_u32(&r, &m->yiaddr)) || (rc = rd_u32(&r, &m->siaddr)) ||
	    (rc = rd_u32(&r, &giaddr)) || (rc = rd_bytes(&r, 16, &chaddr)) ||
	    (rc = rd_bytes(&r, 64, &sname_p)) || (rc = rd_bytes(&r, 128, &file_p)) ||
	    (rc = rd_u32(&r, &cookie)))
		return rc;
	if (op != BOOTREPLY || htype != HTYPE_ETHER || hlen != 6 || cookie != COOKIE)
		return SL_E_INVALID;
	memcpy(m->chaddr, chaddr, 6);

	if ((rc = walk(&r, &o, 1)) != 0)
		return rc;
	if (opt(&o, DHO_OVERLOAD, &v, &len)) {
		if (len != 1 || v[0] < 1 || v[0] > 3)
			return SL_E_INVALID;
		overload = v[0];
	}
	if (overload & 1) {
		rd_init(&file, file_p, 128);
		if ((rc = walk(&file, &o, 0)) != 0)
			return rc;
	}
	if (overload & 2) {
		rd_init(&sname, sname_p, 64);
		if ((rc = walk(&sname, &o, 0)) != 0)
			return rc;
	}

	if (!opt(&o, DHO_MSG_TYPE, &v, &len) || len != 1 || v[0] < DHCPDISCOVER || v[0] > DHCPINFORM)
		return SL_E_INVALID;
	m->type = v[0];
	m->lease.addr = m->yiaddr;

	if ((rc = opt_u32(&o, DHO_SERVER_ID, &m->lease.server)) < 0)
		return rc;
	m->has_server = rc;
	if ((rc = opt_u32(&o, DHO_SUBNET_MASK, &u)) < 0)
		return rc;
	if (rc) {
		if (dhcp_prefix_len(u) < 0)
			return SL_E_INVALID;
		m->lease.netmask = u;
	} else {
		m->lease.netmask = class_mask(m->yiaddr);
	}

	if (opt(&o, DHO_ROUTER, &v, &len)) {
		struct sl_rd rr;

		if (len == 0 || len % 4)
			return SL_E_INVALID;
		rd_init(&rr, v, len);
		while (rd_left(&rr) && !m->lease.router) {
			if (rd_u32(&rr, &u) != 0)
				return SL_E_INVALID;
			if (dhcp_usable_addr(u))
				m->lease.router = u;
		}
	}
	if (opt(&o, DHO_DNS, &v, &len)) {
		struct sl_rd rr;

		if (len == 0 || len % 4)
			return SL_E_INVALID;
		rd_init(&rr, v, len);
		while (rd_left(&rr) && m->lease.ndns < DHCP_MAX_DNS) {
			if (rd_u32(&rr, &u) != 0)
				return SL_E_INVALID;
			if (dhcp_usable_addr(u))
				m->lease.dns[m->lease.ndns++] = u;
		}
	}
	if (opt(&o, DHO_MTU, &v, &len)) {
		if (len != 2)
			return SL_E_INVALID;
		u = (uint32_t)v[0] << 8 | v[1];
		if (u >= 68)		/* RFC 2132 9.1's minimum; less is ignored */
			m->lease.mtu = (uint16_t)u;
	}

	{
		uint32_t lease = DHCP_INFINITE, t1 = 0, t2 = 0;
		int has_t1, has_t2;

		if ((rc = opt_u32(&o, DHO_LEASE_TIME, &u)) < 0)
			return rc;
		if (rc)
			lease = u;
		if ((has_t1 = opt_u32(&o, DHO_T1, &t1)) < 0)
			return has_t1;
		if ((has_t2 = opt_u32(&o, DHO_T2, &t2)) < 0)
			return has_t2;
		m->lease.lease_s = lease;
		if (lease == DHCP_INFINITE) {
			m->lease.t1_s = m->lease.t2_s = DHCP_INFINITE;
		} else {
			uint32_t d2 = (uint32_t)((uint64_t)lease * 7 / 8), d1 = lease / 2;

			m->lease.t2_s = has_t2 && t2 <= lease ? t2 : d2;
			m->lease.t1_s = has_t1 && t1 <= m->lease.t2_s ? t1 :
					(d1 < m->lease.t2_s ? d1 : m->lease.t2_s);
		}
	}

	if (opt(&o, DHO_DOMAIN_NAME, &v, &len))
		(void)parse_domain(v, len, m->lease.domain, m->lease.search, sizeof(m->lease.search));
	if (opt(&o, DHO_SEARCH, &v, &len)) {
		char list[DHCP_MAX_SEARCH + 1];

		if (parse_search(v, len, list, sizeof(list)))
			memcpy(m->lease.search, list, sizeof(list));
	}
	if (opt(&o, DHO_MESSAGE, &v, &len)) {
		size_t k = 0;

		for (i = 0; i < len && k + 1 < sizeof(m->message); i++)
			if (v[i] >= 0x20 && v[i] < 0x7f)
				m->message[k++] = (char)v[i];
		m->message[k] = '\0';
	}
	return 0;
}

/* ---- IPv4 and UDP around a reply (RFC 791 3.1, RFC 768) ---- */

int dhcp_unwrap(const uint8_t *p, size_t n, const uint8_t **payload, size_t *len,
		uint32_t *src, uint16_t *sport)
{
	struct sl_rd r, u;
	const uint8_t *hdr;
	uint8_t vihl, tos, ttl, proto;
	uint16_t total, id, frag, csum, dport, ulen, ucsum;
	uint32_t dst, sum = 0;
	size_t ihl, i;
	int rc;

	rd_init(&r, p, n);
	if ((rc = rd_u8(&r, &vihl)) != 0)
		return rc;
	ihl = (size_t)(vihl & 15) * 4;
	if (vihl >> 4 != 4 || ihl < 20)
		return SL_E_INVALID;
	/* The whole header, for its checksum, then field by field. */
	rd_init(&r, p, n);
	if ((rc = rd_bytes(&r, ihl, &hdr)) != 0)
		return rc;
	for (i = 0; i < ihl; i += 2)
		sum += (uint32_t)hdr[i] << 8 | hdr[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		return SL_E_INVALID;
	rd_init(&r, hdr, ihl);
	if ((rc = rd_u8(&r, &vihl)) || (rc = rd_u8(&r, &tos)) || (rc = rd_u16(&r, &total)) ||
	    (rc = rd_u16(&r, &id)) || (rc = rd_u16(&r, &frag)) || (rc = rd_u8(&r, &ttl)) ||
	    (rc = rd_u8(&r, &proto)) || (rc = rd_u16(&r, &csum)) || (rc = rd_u32(&r, src)) ||
	    (rc = rd_u32(&r, &dst)))
		return rc;
	if (total < ihl || total > n)
		return total > n ? SL_E_SHORT : SL_E_INVALID;
	if (frag & 0x3fff)		/* MF set or an offset: a fragment */
		return SL_E_PROTO;
	if (proto != 17)
		return SL_E_NOTFOUND;
	/* The UDP datagram: what the IP length says, link padding left out. */
	rd_init(&u, p + ihl, total - ihl);
	if ((rc = rd_u16(&u, sport)) || (rc = rd_u16(&u, &dport)) || (rc = rd_u16(&u, &ulen)) ||
	    (rc = rd_u16(&u, &ucsum)))
		return rc;
	if (ulen < 8 || ulen > total - ihl)
		return ulen < 8 ? SL_E_INVALID : SL_E_SHORT;
	if (dport != DHCP_CLIENT_PORT)
		return SL_E_NOTFOUND;
	*len = ulen - 8;
	return rd_bytes(&u, *len, payload);
}

/* ---- the state machine ---- */

static const struct dhcp_timing default_timing = { 4000, 64000, 1000, 60000, 4 };

/* xorshift64*: only xids and jitter depend on it. */
static uint64_t rnd(struct dhcp_client *c)
{
	uint64_t x = c->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint32_t new_xid(struct dhcp_client *c)
{
	uint32_t x;

	do
		x = (uint32_t)(rnd(c) >> 32);
	while (x == 0 || x == c->xid);
	return x;
}

/* The delay after the tries-th transmission (tries >= 1), jittered. */
static uint64_t backoff(struct dhcp_client *c, unsigned tries)
{
	uint64_t base = c->tm.first_ms;
	int64_t j = 0;
	unsigned i;

	for (i = 1; i < tries && base < c->tm.max_ms; i++)
		base *= 2;
	if (base > c->tm.max_ms)
		base = c->tm.max_ms;
	if (c->tm.jitter_ms)
		j = (int64_t)(rnd(c) % (2 * (uint64_t)c->tm.jitter_ms + 1)) - c->tm.jitter_ms;
	if (j < 0 && (uint64_t)-j >= base)
		return 1;
	return (uint64_t)((int64_t)base + j);
}

static uint16_t secs_since(uint64_t begin, uint64_t now)
{
	uint64_t s = now > begin ? (now - begin) / 1000 : 0;

	return s > 0xffff ? 0xffff : (uint16_t)s;
}

void dhcp_init(struct dhcp_client *c, const uint8_t mac[6], uint64_t seed,
	       const struct dhcp_timing *tm)
{
	memset(c, 0, sizeof(*c));
	c->state = DHCP_INIT;
	memcpy(c->mac, mac, 6);
	c->tm = tm ? *tm : default_timing;
	if (c->tm.first_ms == 0)
		c->tm.first_ms = 1;
	if (c->tm.max_ms < c->tm.first_ms)
		c->tm.max_ms = c->tm.first_ms;
	if (c->tm.request_tries == 0)
		c->tm.request_tries = 1;
	c->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static void to_selecting(struct dhcp_client *c, uint64_t now)
{
	c->state = DHCP_SELECTING;
	c->xid = new_xid(c);
	c->begin_ms = now;
	c->next_ms = now;
	c->tries = 0;
	memset(&c->offer, 0, sizeof(c->offer));
}

void dhcp_start(struct dhcp_client *c, uint64_t now_ms, uint64_t timeout_ms)
{
	to_selecting(c, now_ms);
	c->deadline_ms = timeout_ms ? now_ms + timeout_ms : 0;
	memset(&c->lease, 0, sizeof(c->lease));
}

/* Fill the fields every client message shares. */
static void req_base(const struct dhcp_client *c, struct dhcp_req *q, uint8_t type)
{
	memset(q, 0, sizeof(*q));
	q->type = type;
	q->xid = c->xid;
	memcpy(q->mac, c->mac, 6);
}

static int wait_until(struct dhcp_out *out, uint64_t a, uint64_t b)
{
	out->wake_ms = a < b ? a : b;
	return DHCP_WAIT;
}

/* Next resend while renewing/rebinding: half of what is left, within limits. */
static uint64_t renew_next(const struct dhcp_client *c, uint64_t now, uint64_t until)
{
	uint64_t d = (until - now) / 2;

	if (d < c->tm.renew_min_ms)
		d = c->tm.renew_min_ms;
	return now + d < until ? now + d : until;
}

int dhcp_next(struct dhcp_client *c, uint64_t now, struct sl_wr *w, struct dhcp_out *out)
{
	struct dhcp_req q;
	uint64_t t1, t2, end;
	int rc;

	out->dst = DHCP_BROADCAST;
	out->wake_ms = UINT64_MAX;
	switch (c->state) {
	case DHCP_FAILED:
		return SL_E_TIMEOUT;
	case DHCP_INIT:
		if (c->deadline_ms && now >= c->deadline_ms)
			goto failed;
		if (now < c->next_ms)
			return wait_until(out, c->next_ms, c->deadline_ms ? c->deadline_ms : UINT64_MAX);
		to_selecting(c, now);
		/* fall through */
	case DHCP_SELECTING:
	case DHCP_REQUESTING:
		if (c->deadline_ms && now >= c->deadline_ms)
			goto failed;
		if (now < c->next_ms)
			return wait_until(out, c->next_ms, c->deadline_ms ? c->deadline_ms : UINT64_MAX);
		if (c->state == DHCP_REQUESTING && c->tries >= c->tm.request_tries)
			to_selecting(c, now);	/* no answer to our REQUESTs: start over */
		if (c->state == DHCP_SELECTING) {
			req_base(c, &q, DHCPDISCOVER);
			c->secs = secs_since(c->begin_ms, now);
			q.secs = c->secs;
		} else {
			req_base(c, &q, DHCPREQUEST);
			q.secs = c->secs;	/* RFC 2131 4.4.1: as in the DISCOVER */
			q.requested = c->offer.addr;
			q.server = c->offer.server;
			if (c->tries == 0)
				c->sent_ms = now;
		}
		q.broadcast = 1;	/* no address yet: unicast replies would not reach us */
		if ((rc = dhcp_build(w, &q)) != 0)
			return rc;
		c->tries++;
		c->next_ms = now + backoff(c, c->tries);
		return DHCP_SEND;
	case DHCP_BOUND:
		if (c->lease.lease_s == DHCP_INFINITE)
			return DHCP_WAIT;
		t1 = c->bound_ms + (uint64_t)c->lease.t1_s * 1000;
		if (now < t1)
			return wait_until(out, t1, UINT64_MAX);
		c->state = DHCP_RENEWING;
		c->xid = new_xid(c);
		c->begin_ms = now;
		c->next_ms = now;
		c->tries = 0;
		/* fall through */
	case DHCP_RENEWING:
		t2 = c->bound_ms + (uint64_t)c->lease.t2_s * 1000;
		if (now >= t2) {
			c->state = DHCP_REBINDING;
			c->xid = new_xid(c);
			c->next_ms = now;
			c->tries = 0;
		} else {
			if (now < c->next_ms)
				return wait_until(out, c->next_ms, t2);
			req_base(c, &q, DHCPREQUEST);
			q.secs = secs_since(c->begin_ms, now);
			q.ciaddr = c->lease.addr;
			if (c->tries == 0)
				c->sent_ms = now;
			if ((rc = dhcp_build(w, &q)) != 0)
				return rc;
			c->tries++;
			c->next_ms = renew_next(c, now, t2);
			out->dst = c->lease.server ? c->lease.server : DHCP_BROADCAST;
			return DHCP_SEND;
		}
		/* fall through */
	case DHCP_REBINDING:
		end = c->bound_ms + (uint64_t)c->lease.lease_s * 1000;
		if (now >= end) {
			c->state = DHCP_INIT;
			c->next_ms = now;
			c->deadline_ms = 0;
			return DHCP_EXPIRED;
		}
		if (now < c->next_ms)
			return wait_until(out, c->next_ms, end);
		req_base(c, &q, DHCPREQUEST);
		q.secs = secs_since(c->begin_ms, now);
		q.ciaddr = c->lease.addr;
		if (c->tries == 0)
			c->sent_ms = now;
		if ((rc = dhcp_build(w, &q)) != 0)
			return rc;
		c->tries++;
		c->next_ms = renew_next(c, now, end);
		return DHCP_SEND;
	}
	return SL_E_INVALID;
failed:
	c->state = DHCP_FAILED;
	return SL_E_TIMEOUT;
}

/* A NAK: back to INIT; DISCOVER again after a short pause (no NAK storms). */
static int naked(struct dhcp_client *c, const struct dhcp_msg *m, uint64_t now)
{
	snprintf(c->nak_message, sizeof(c->nak_message), "%s", m->message);
	c->state = DHCP_INIT;
	c->next_ms = now + c->tm.first_ms / 4;
	c->tries = 0;
	return DHCP_NAKED;
}

int dhcp_input(struct dhcp_client *c, const uint8_t *p, size_t n, uint64_t now)
{
	struct dhcp_msg m;
	uint32_t old;
	int rc;

	if ((rc = dhcp_parse(p, n, &m)) != 0)
		return rc;
	if (m.xid != c->xid || memcmp(m.chaddr, c->mac, 6) != 0)
		return DHCP_IGNORED;
	switch (c->state) {
	case DHCP_SELECTING:
		if (m.type != DHCPOFFER || !dhcp_usable_addr(m.yiaddr) || !m.has_server)
			return DHCP_IGNORED;
		c->offer = m.lease;
		c->state = DHCP_REQUESTING;
		c->next_ms = now;
		c->tries = 0;
		return DHCP_OFFERED;
	case DHCP_REQUESTING:
		if (m.has_server && m.lease.server != c->offer.server)
			return DHCP_IGNORED;	/* another server's answer */
		if (m.type == DHCPNAK)
			return naked(c, &m, now);
		if (m.type != DHCPACK || !dhcp_usable_addr(m.yiaddr))
			return DHCP_IGNORED;
		c->lease = m.lease;
		if (!m.has_server)
			c->lease.server = c->offer.server;
		c->bound_ms = c->sent_ms;
		c->state = DHCP_BOUND;
		c->deadline_ms = 0;
		return DHCP_LEASED;
	case DHCP_RENEWING:
	case DHCP_REBINDING:
		if (c->state == DHCP_RENEWING && m.has_server && m.lease.server != c->lease.server)
			return DHCP_IGNORED;
		if (m.type == DHCPNAK)
			return naked(c, &m, now);
		if (m.type != DHCPACK || !dhcp_usable_addr(m.yiaddr))
			return DHCP_IGNORED;
		old = c->lease.addr;
		if (!m.has_server)
			m.lease.server = c->lease.server;
		c->lease = m.lease;
		c->bound_ms = c->sent_ms;
		c->state = DHCP_BOUND;
		return old == c->lease.addr ? DHCP_RENEWED : DHCP_LEASED;
	default:
		return DHCP_IGNORED;
	}
}
