/*
 * s3cred.h - where S3 credentials come from, and keeping them fresh.
 *
 * AWS's usual chain, first found wins (DESIGN.md, "Configuration"):
 *   1. sluice.s3.access.key / sluice.s3.secret.key from the configuration
 *      (both or neither; no session token);
 *   2. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, when
 *      set, AWS_SESSION_TOKEN;
 *   3. the EC2 instance role over IMDSv2 (net/imds.h): a session token first
 *      (PUT /latest/api/token), then the role name from
 *      /latest/meta-data/iam/security-credentials/ and that role's JSON
 *      document (AccessKeyId, SecretAccessKey, Token, Expiration).  Never
 *      IMDSv1.
 *
 * Role credentials are refreshed ahead of their Expiration (between 5 and 4
 * minutes before, with jitter; AWS publishes new ones at least 5 minutes
 * ahead), while the old ones keep serving, so no request ever fails because
 * credentials expired.  A refresh that fails is retried with backoff and
 * logged; the old credentials stay in use until 10 seconds before they
 * expire, so a signed request still arrives in time.
 *
 * The provider is asynchronous: s3cred_get() answers at once when it holds
 * credentials that are still valid; otherwise the caller parks a waiter,
 * which runs (from the loop) once credentials arrive or the first fetch
 * fails for good.  Secrets are never logged.
 */
#ifndef SL_STORAGE_S3CRED_H
#define SL_STORAGE_S3CRED_H

#include <stdint.h>
#include "../kernel/loop.h"

struct httpc;
struct config;

struct s3_creds {
	char *access_key;
	char *secret_key;
	char *token;		/* NULL without a session token */
	int64_t expires_ms;	/* wall clock; -1 for credentials that never expire */
	const char *source;	/* "configuration", "environment" or "instance role" */
};

struct s3cred_waiter {
	void (*fn)(struct s3cred_waiter *w, int err);	/* err 0: s3cred_get() now answers */
	void *arg;
	struct s3cred_waiter *next;	/* provider's */
};

struct s3cred;

/*
 * A provider for cfg's keys, the environment, or the instance role through
 * http (IMDS at AWS_EC2_METADATA_SERVICE_ENDPOINT, default
 * http://169.254.169.254, as AWS's SDKs read it).  NULL on allocation
 * failure.  http and cfg must outlive the provider.
 */
struct s3cred *s3cred_new(struct loop *l, const struct config *cfg, struct httpc *http);
void s3cred_free(struct s3cred *p);

/* Valid credentials (owned by the provider, valid until control returns to the loop), or NULL. */
const struct s3_creds *s3cred_get(struct s3cred *p, int64_t wall_now);
/* Run w->fn once credentials are available (or failed); w stays the caller's. */
void s3cred_wait(struct s3cred *p, struct s3cred_waiter *w);
void s3cred_unwait(struct s3cred *p, struct s3cred_waiter *w);

#endif
