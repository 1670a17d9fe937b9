/*
 * config.h - the broker's configuration: one Kafka-style properties file
 * (key=value lines, '#' or '!' comments, blank lines), overridden by
 * `--set key=value` arguments.
 *
 * Every key the broker knows is a row of one table (config.c) naming its type,
 * default, bounds and where its value lives in struct config.  Unknown keys
 * and bad values are errors that name the source and line; the broker refuses
 * to start rather than guess.  Values are trimmed of surrounding whitespace.
 *
 * Ownership: strings in struct config are owned by it; config_free() releases
 * them.  errbuf, where taken, receives a NUL-terminated message such as
 * "broker.properties:12: unknown key 'num.partiton'".
 */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

struct config {
	int32_t node_id;			/* node.id */
	char *listeners;			/* listeners */
	char *advertised_listeners;		/* advertised.listeners ("" = listeners) */
	int32_t num_partitions;			/* num.partitions */
	int auto_create_topics;			/* auto.create.topics.enable */
	int64_t log_retention_ms;		/* log.retention.ms */
	int64_t log_retention_bytes;		/* log.retention.bytes */
	int64_t log_retention_check_ms;		/* log.retention.check.interval.ms */
	int32_t message_max_bytes;		/* message.max.bytes */
	int32_t socket_request_max_bytes;	/* socket.request.max.bytes */
	int32_t max_connections;		/* max.connections */
	int32_t request_timeout_ms;		/* request.timeout.ms */
	int32_t default_replication_factor;	/* default.replication.factor */
	int32_t group_initial_delay_ms;		/* group.initial.rebalance.delay.ms */
	int32_t group_min_session_ms;		/* group.min.session.timeout.ms */
	int32_t group_max_session_ms;		/* group.max.session.timeout.ms */
	int32_t group_max_size;			/* group.max.size */
	int32_t offsets_retention_minutes;	/* offsets.retention.minutes */
	int64_t offsets_retention_check_ms;	/* offsets.retention.check.interval.ms */
	int32_t offset_metadata_max_bytes;	/* offset.metadata.max.bytes */
	int64_t producer_id_expiration_ms;	/* producer.id.expiration.ms */
	int64_t producer_id_expiration_check_ms; /* producer.id.expiration.check.interval.ms */
	char *log_level;			/* sluice.log.level */
	char *cluster_id;			/* sluice.cluster.id */
	int64_t conn_max_unsent_bytes;		/* sluice.connection.max.unsent.bytes */
	int32_t conn_max_inflight;		/* sluice.connection.max.inflight.requests */
	char *wal_device;			/* sluice.wal.device */
	char *wal_volume;			/* sluice.wal.volume */
	int64_t wal_capacity_bytes;		/* sluice.wal.capacity.bytes */
	char *wal_io;				/* sluice.wal.io: auto, uring or pwrite */
	int wal_format_if_blank;		/* sluice.wal.format.if.blank (PID 1 only) */
	char *objects_url;			/* sluice.objects.url */
	char *objects_compression;		/* sluice.objects.compression: zstd or none */
	int64_t upload_bytes;			/* sluice.upload.bytes */
	int64_t upload_interval_ms;		/* sluice.upload.interval.ms */
	int64_t cache_bytes;			/* sluice.cache.bytes */
	int64_t tail_bytes;			/* sluice.tail.bytes */
	int64_t gc_grace_ms;			/* sluice.objects.gc.grace.ms */
	int64_t gc_interval_ms;			/* sluice.objects.gc.interval.ms */
	int64_t compaction_interval_ms;		/* sluice.compaction.interval.ms: 0 off */
	int64_t compaction_rate;		/* sluice.compaction.bytes.per.sec */
	char *s3_access_key;			/* sluice.s3.access.key */
	char *s3_secret_key;			/* sluice.s3.secret.key */
	char *s3_ca_file;			/* sluice.s3.ca.file */
	int s3_tls_insecure;			/* sluice.s3.tls.insecure */
};

/* Fill cfg with every key's default. */
SL_MUST_CHECK int config_init(struct config *cfg);
void config_free(struct config *cfg);

/*
 * Apply one "key=value" (as from --set).  source names it in errors.
 * Returns 0, or SL_E_CONFIG with errbuf filled.
 */
SL_MUST_CHECK int config_set(struct config *cfg, const char *kv, const char *source,
			     char *errbuf, size_t errlen);
/* Parse properties text (len bytes, need not be NUL-terminated). */
SL_MUST_CHECK int config_parse(struct config *cfg, const char *text, size_t len,
			       const char *source, char *errbuf, size_t errlen);
/* Read and parse a file. */
SL_MUST_CHECK int config_load_file(struct config *cfg, const char *path,
				   char *errbuf, size_t errlen);
/*
 * Cross-key checks after everything is applied (listeners parse,
 * sluice.objects.url parses, etc.).  Called once at every start, so it also
 * logs a warning when sluice.s3.tls.insecure is true.
 */
/*
 * How config_validate() checks sluice.objects.url: set by the program to the
 * object store's parser (storage/s3url.h's s3url_check), since kernel/ does
 * not include the layers above it.  NULL: the URL is not checked here.
 */
extern int (*config_objects_url_check)(const char *url, char *why, size_t len);
SL_MUST_CHECK int config_validate(const struct config *cfg, char *errbuf, size_t errlen);

/*
 * A listener "NAME://host:port" split into parts.  host "" or "0.0.0.0" means
 * every address.  Only the first listener of a comma-separated list is used.
 */
struct listener_addr {
	char name[32];
	char host[256];
	uint16_t port;
};
SL_MUST_CHECK int config_parse_listener(const char *s, struct listener_addr *out);

/* Write every key and its current value, one per line (for `sluice serve` at debug level). */
void config_dump(const struct config *cfg, void (*line)(const char *s, void *arg), void *arg);

#endif
