/*
 * userdata.h - EC2 user-data at boot, over IMDSv2 (net/imds.h): the third
 * configuration source of PID 1 (kernel/init.h), after the kernel command
 * line and QEMU fw_cfg.
 *
 * At boot there is no event loop yet, so the fetch brings its own loop (or
 * runs on the one it is given) and returns only when it has an answer or
 * its deadline has passed: a token first (PUT /latest/api/token), then
 * GET /latest/user-data with it; never IMDSv1.  User-data is returned raw,
 * as the service sends it (already base64-decoded by EC2).
 *
 * Results, in the terms of init_sys.userdata:
 *   0              *data (malloc'd, NUL-terminated, the caller frees), *len
 *   SL_E_NOTFOUND  no user-data to be had: 404 (none set), no metadata
 *                  service answering within the deadline (not on EC2, no
 *                  network), or an answer that is not the user-data (an
 *                  HTTP error status, the token refused); why says which
 *   SL_E_TOOBIG    more than max bytes
 *   SL_E_CONFIG    AWS_EC2_METADATA_SERVICE_ENDPOINT names no usable endpoint
 *   SL_E_NOMEM
 * A missing source is not an error: PID 1 lists it among the sources tried.
 */
#ifndef SL_NET_USERDATA_H
#define SL_NET_USERDATA_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/err.h"
#include "../kernel/loop.h"

#define USERDATA_PATH "/latest/user-data"
/* The whole fetch, token included, retries included. */
#define USERDATA_TIMEOUT_MS 10000

/*
 * Fetch on l (which must not be running: this runs it until done) from
 * endpoint (NULL: AWS_EC2_METADATA_SERVICE_ENDPOINT, else the default),
 * within timeout_ms.  Everything it adds to l is gone when it returns.
 */
SL_MUST_CHECK int userdata_get(struct loop *l, const char *endpoint, size_t max,
			       uint64_t timeout_ms, char **data, size_t *len, char *why,
			       size_t whylen);

/* userdata_get on a loop of its own, the default endpoint, USERDATA_TIMEOUT_MS: init_sys.userdata. */
int userdata_fetch(char **data, size_t *len, size_t max, char *why, size_t whylen);

#endif
