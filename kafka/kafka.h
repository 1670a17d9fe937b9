/*
 * kafka.h - the Kafka protocol front end, as seen by kernel/main.c.
 *
 * kafka_new() wires the registry and handlers to a store; kafka_on_request()
 * is the net layer's on_request callback: it decodes a frame, dispatches it
 * through the one API table (kafka/api.c) and answers through conn_req.
 */
#ifndef SL_KAFKA_H
#define SL_KAFKA_H

#include "../kernel/config.h"
#include "../kernel/loop.h"
#include "../net/conn.h"
#include "../storage/stream.h"
#include "../storage/tier.h"

struct kafka;

/* NULL on failure (logged).  cfg and st must outlive the result. */
struct kafka *kafka_new(struct loop *l, const struct config *cfg, struct store *st);
void kafka_destroy(struct kafka *k);
/* Tell Metadata which port the listener really bound (for port 0). */
void kafka_set_port(struct kafka *k, uint16_t port);
void kafka_on_request(struct conn_req *req, void *arg);
/*
 * Shared storage: from now on durable topic and group changes are told to
 * t, and reads below the memory tail go through it.  Before recovery.
 */
void kafka_set_tier(struct kafka *k, struct tier *t);
/* Topics, offsets and group offsets from the tier's manifest; before the WAL is replayed. */
int kafka_restore_tier(struct kafka *k);
/*
 * The WAL was replayed (or there is none): rebuild what the replayed batches
 * say beyond the manifest (producer state).  Before serving.  0 or an error
 * (logged).
 */
int kafka_recovered(struct kafka *k);

#endif
