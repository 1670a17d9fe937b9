/*
 * userdata.c - EC2 user-data at boot over IMDSv2 (see userdata.h).
 *
 * Owns, for the length of one call: an HTTP client and an IMDS client on
 * the loop it runs, one request, and a deadline timer.
 *
 *   start: httpc_new, imds_new, imds_get, arm the deadline
 *     loop_run ──callback──▶ done (err, status, body copied)
 *              └─deadline──▶ done (SL_E_TIMEOUT), request cancelled
 *   end: imds_free, httpc_free, timer cancelled; map err (below)
 *
 * Invariants:
 *   1. The loop runs only until this fetch is done, and is left as it was
 *      found: every descriptor, timer and task added here is removed
 *      before returning (imds_free and httpc_free drop theirs).
 *   2. The body is copied inside the callback, where it is valid, capped
 *      by imds at max: nothing larger is ever held.
 *   3. The body is never logged (user-data may hold secrets).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "httpc.h"
#include "imds.h"
#include "userdata.h"
#include "../kernel/log.h"

struct ud_fetch {
	struct loop *l;
	int done;
	int err;
	int status;
	char *data;
	size_t len;
};

static void on_user_data(void *arg, int err, int status, const uint8_t *body, size_t len)
{
	struct ud_fetch *f = arg;

	free(f->data);	/* never set twice, but an answer after the deadline must not leak */
	f->data = NULL;
	f->err = err;
	f->status = status;
	if (err == 0) {
		f->data = malloc(len + 1);
		if (!f->data) {
			f->err = SL_E_NOMEM;
		} else {
			if (len)
				memcpy(f->data, body, len);
			f->data[len] = 0;
			f->len = len;
		}
	}
	f->done = 1;
	loop_stop(f->l);
}

static void on_deadline(struct loop *l, void *arg)
{
	struct ud_fetch *f = arg;

	if (f->done)
		return;
	f->err = SL_E_TIMEOUT;
	f->done = 1;
	loop_stop(l);
}

static int say(char *why, size_t whylen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int say(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int userdata_get(struct loop *l, const char *endpoint, size_t max, uint64_t timeout_ms,
		 char **data, size_t *len, char *why, size_t whylen)
{
	/* The service is on the local link: a second to connect is plenty. */
	const struct httpc_config hc = {
		.max_conns_per_endpoint = 1,
		.connect_timeout_ms = 1000,
		.request_timeout_ms = 2000,
		.max_body = max,
	};
	const struct imds_config ic = {
		.endpoint = endpoint,
		.token_ttl_s = 300,	/* one request needs it for moments */
		.max_body = max,
	};
	struct ud_fetch f = { .l = l };
	struct loop_timer deadline;
	struct httpc *h = NULL;
	struct imds *m = NULL;
	char ep[128];
	int rc;

	*data = NULL;
	*len = 0;
	loop_timer_init(&deadline, on_deadline, &f);
	h = httpc_new(l, &hc);
	if (!h)
		return say(why, whylen, SL_E_NOMEM, "cannot create an HTTP client");
	rc = imds_new(l, h, &ic, &m);
	if (rc) {
		httpc_free(h);
		if (rc == SL_E_CONFIG)
			return say(why, whylen, rc, "AWS_EC2_METADATA_SERVICE_ENDPOINT is not "
				   "http://HOST[:PORT]");
		return say(why, whylen, rc, "cannot create the IMDS client: %s", sl_strerror(rc));
	}
	snprintf(ep, sizeof(ep), "%s", imds_endpoint(m));
	rc = imds_get(m, USERDATA_PATH, max, on_user_data, &f, NULL);
	if (rc) {
		imds_free(m);
		httpc_free(h);
		return say(why, whylen, rc, "cannot ask %s: %s", ep, sl_strerror(rc));
	}
	loop_timer_set(l, &deadline, timeout_ms);
	while (!f.done)
		if (loop_run(l) != 0)
			break;
	if (!f.done) {
		f.err = SL_E_CLOSED;	/* the loop failed under us */
		f.done = 1;
	}
	/* A request still out (the deadline passed) is dropped with its client: no callback. */
	loop_timer_cancel(l, &deadline);
	imds_free(m);
	httpc_free(h);

	switch (f.err) {
	case 0:
		*data = f.data;
		*len = f.len;
		log_info("userdata", "%zu bytes of user-data from %s", f.len, ep);
		return 0;
	case SL_E_NOTFOUND:
		return say(why, whylen, SL_E_NOTFOUND, "%s: 404, no user-data set", ep);
	case SL_E_TOOBIG:
		return say(why, whylen, SL_E_TOOBIG, "user-data is larger than %zu bytes", max);
	case SL_E_NOMEM:
		return say(why, whylen, SL_E_NOMEM, "out of memory");
	case SL_E_REMOTE:
		return say(why, whylen, SL_E_NOTFOUND, "%s answered HTTP %d%s", ep, f.status,
			   f.status == 403 ? " (IMDS disabled, or its hop limit too low?)" : "");
	case SL_E_TIMEOUT:
		return say(why, whylen, SL_E_NOTFOUND, "no answer from %s within %llu ms (not on EC2?)",
			   ep, (unsigned long long)timeout_ms);
	default:
		return say(why, whylen, SL_E_NOTFOUND, "%s: %s (not on EC2?)", ep, sl_strerror(f.err));
	}
}

int userdata_fetch(char **data, size_t *len, size_t max, char *why, size_t whylen)
{
	struct loop *l = loop_new();
	int rc;

	*data = NULL;
	*len = 0;
	if (!l)
		return say(why, whylen, SL_E_NOMEM, "cannot create an event loop");
	rc = userdata_get(l, NULL, max, USERDATA_TIMEOUT_MS, data, len, why, whylen);
	loop_destroy(l);
	return rc;
}
