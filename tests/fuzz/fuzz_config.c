/*
 * fuzz_config.c - libFuzzer target for the properties parser.
 *
 * Each input is parsed into a fresh configuration, then validated, dumped
 * and freed, so the sanitizers see every path that touches parsed values:
 * reads past the (unterminated) input, leaks of replaced strings, listener
 * parsing of whatever ended up in listeners.  The same bytes, NUL-terminated,
 * are also tried as a single --set argument.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernel/config.h"
#include "storage/s3url.h"

static void sink(const char *s, void *arg)
{
	size_t *n = arg;

	*n += strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct config cfg;
	struct listener_addr la;
	char err[256];
	size_t dumped = 0;
	char *kv;

	config_objects_url_check = s3url_check;
	if (config_init(&cfg) != 0)
		return 0;
	if (config_parse(&cfg, (const char *)d, n, "fuzz", err, sizeof(err)) != 0)
		err[sizeof(err) - 1] = '\0';
	(void)config_validate(&cfg, err, sizeof(err));
	(void)config_parse_listener(cfg.listeners, &la);
	(void)config_parse_listener(cfg.advertised_listeners, &la);
	config_dump(&cfg, sink, &dumped);

	kv = malloc(n + 1);
	if (kv) {
		memcpy(kv, d, n);
		kv[n] = '\0';
		(void)config_set(&cfg, kv, "--set", err, sizeof(err));
		(void)config_parse_listener(kv, &la);
		free(kv);
	}
	config_free(&cfg);
	return 0;
}
