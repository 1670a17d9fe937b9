/*
 * msgs.h - the request and response bodies Sluice speaks, as field lists.
 *
 * Each struct has one list, KC_L_<struct>(X), in the column format described
 * in codec.h:  X(TYPE, name, vmin, vmax, null_from, tag, dflt, sub).  The
 * KC_STRUCT() line after each list turns it into the C struct and declares
 * its descriptor, kc_<struct>; msgs.c turns the same list into that
 * descriptor, so every message is written down exactly once.
 *
 * The lists transcribe Apache Kafka 3.7's JSON message definitions
 * (clients/src/main/resources/common/message/<Name>{Request,Response}.json),
 * restricted to the versions in kc_apis[]: fields that only exist above our
 * highest version (Fetch v13+ topic ids, Produce v10+ leader hints, OffsetFetch
 * v9 member epochs) are left out.  Naming: top-level structs are <api>_req
 * and <api>_resp; nested ones add the JSON struct type in snake_case
 * (TopicProduceData -> produce_req_topic_produce_data); fields are the JSON
 * names in snake_case.
 *
 * Defaults follow the JSON "default" where one is given.  Strings absent from
 * a version are null whatever the JSON default says (Fetch's rack_id is null,
 * not "", below v11); handlers treat a null and an empty string alike there.
 *
 * Nested structs are listed before the struct that contains them, since a
 * STRUCT member is embedded by value.
 */
#ifndef SL_KAFKA_MSGS_H
#define SL_KAFKA_MSGS_H

#include <stdint.h>
#include <stddef.h>
#include "codec.h"

/* C member(s) for each TYPE; see codec.h for the representation. */
#define KC_M(T, n, v0, v1, nf, tag, d, s) KC_M_##T(n, s)
#define KC_M_BOOL(n, s)		int8_t n;
#define KC_M_INT8(n, s)		int8_t n;
#define KC_M_INT16(n, s)	int16_t n;
#define KC_M_UINT16(n, s)	uint16_t n;
#define KC_M_INT32(n, s)	int32_t n;
#define KC_M_INT64(n, s)	int64_t n;
#define KC_M_FLOAT64(n, s)	double n;
#define KC_M_UUID(n, s)		struct kc_uuid n;
#define KC_M_STRING(n, s)	struct kc_str n;
#define KC_M_BYTES(n, s)	struct kc_bytes n;
#define KC_M_RECORDS(n, s)	struct kc_records n;
#define KC_M_STRUCT(n, s)	struct s n;
#define KC_M_ARRAY(n, s)	struct s *n; int32_t n##_n;
#define KC_M_ARRAY_INT32(n, s)	int32_t *n; int32_t n##_n;
#define KC_M_ARRAY_INT64(n, s)	int64_t *n; int32_t n##_n;
#define KC_M_ARRAY_STRING(n, s)	struct kc_str *n; int32_t n##_n;

#define KC_STRUCT(name) \
	struct name { KC_L_##name(KC_M) }; \
	extern const struct kc_struct kc_##name;

/* ---- Produce (key 0), versions 0-9, flexible from 9 ---- */

#define KC_L_produce_req_partition_produce_data(X) \
	X(INT32,   index,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(RECORDS, records, 0, KV_MAX, 0,         KV_NOTAG, 0, _)
KC_STRUCT(produce_req_partition_produce_data)

#define KC_L_produce_req_topic_produce_data(X) \
	X(STRING, name,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partition_data, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, produce_req_partition_produce_data)
KC_STRUCT(produce_req_topic_produce_data)

#define KC_L_produce_req(X) \
	X(STRING, transactional_id, 3, KV_MAX, 3,         KV_NOTAG, 0, _) \
	X(INT16,  acks,             0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  timeout_ms,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  topic_data,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, produce_req_topic_produce_data)
KC_STRUCT(produce_req)

#define KC_L_produce_resp_batch_index_and_error_message(X) \
	X(INT32,  batch_index,               8, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, batch_index_error_message, 8, KV_MAX, 8,         KV_NOTAG, 0, _)
KC_STRUCT(produce_resp_batch_index_and_error_message)

#define KC_L_produce_resp_partition_produce_response(X) \
	X(INT32,  index,              0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT16,  error_code,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,  base_offset,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,  log_append_time_ms, 2, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64,  log_start_offset,   5, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(ARRAY,  record_errors,      8, KV_MAX, KV_NONULL, KV_NOTAG, 0,  produce_resp_batch_index_and_error_message) \
	X(STRING, error_message,      8, KV_MAX, 8,         KV_NOTAG, 0,  _)
KC_STRUCT(produce_resp_partition_produce_response)

#define KC_L_produce_resp_topic_produce_response(X) \
	X(STRING, name,                0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partition_responses, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, produce_resp_partition_produce_response)
KC_STRUCT(produce_resp_topic_produce_response)

#define KC_L_produce_resp(X) \
	X(ARRAY, responses,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0, produce_resp_topic_produce_response) \
	X(INT32, throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(produce_resp)

/* ---- Fetch (key 1), versions 0-12, flexible from 12 ---- */

#define KC_L_fetch_req_fetch_partition(X) \
	X(INT32, partition,            0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32, current_leader_epoch, 9,  KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64, fetch_offset,         0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32, last_fetched_epoch,   12, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64, log_start_offset,     5,  KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT32, partition_max_bytes,  0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,  _)
KC_STRUCT(fetch_req_fetch_partition)

#define KC_L_fetch_req_fetch_topic(X) \
	X(STRING, topic,      0, 12,     KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, fetch_req_fetch_partition)
KC_STRUCT(fetch_req_fetch_topic)

#define KC_L_fetch_req_forgotten_topic(X) \
	X(STRING,      topic,      7, 12,     KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_INT32, partitions, 7, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(fetch_req_forgotten_topic)

#define KC_L_fetch_req(X) \
	X(STRING, cluster_id,            12, KV_MAX, 12,        0,        0,          _) \
	X(INT32,  replica_id,            0,  14,     KV_NONULL, KV_NOTAG, -1,         _) \
	X(INT32,  max_wait_ms,           0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,          _) \
	X(INT32,  min_bytes,             0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,          _) \
	X(INT32,  max_bytes,             3,  KV_MAX, KV_NONULL, KV_NOTAG, 0x7fffffff, _) \
	X(INT8,   isolation_level,       4,  KV_MAX, KV_NONULL, KV_NOTAG, 0,          _) \
	X(INT32,  session_id,            7,  KV_MAX, KV_NONULL, KV_NOTAG, 0,          _) \
	X(INT32,  session_epoch,         7,  KV_MAX, KV_NONULL, KV_NOTAG, -1,         _) \
	X(ARRAY,  topics,                0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,          fetch_req_fetch_topic) \
	X(ARRAY,  forgotten_topics_data, 7,  KV_MAX, KV_NONULL, KV_NOTAG, 0,          fetch_req_forgotten_topic) \
	X(STRING, rack_id,               11, KV_MAX, KV_NONULL, KV_NOTAG, 0,          _)
KC_STRUCT(fetch_req)

#define KC_L_fetch_resp_epoch_end_offset(X) \
	X(INT32, epoch,      12, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64, end_offset, 12, KV_MAX, KV_NONULL, KV_NOTAG, -1, _)
KC_STRUCT(fetch_resp_epoch_end_offset)

#define KC_L_fetch_resp_leader_id_and_epoch(X) \
	X(INT32, leader_id,    12, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT32, leader_epoch, 12, KV_MAX, KV_NONULL, KV_NOTAG, -1, _)
KC_STRUCT(fetch_resp_leader_id_and_epoch)

#define KC_L_fetch_resp_snapshot_id(X) \
	X(INT64, end_offset, 0, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT32, epoch,      0, KV_MAX, KV_NONULL, KV_NOTAG, -1, _)
KC_STRUCT(fetch_resp_snapshot_id)

#define KC_L_fetch_resp_aborted_transaction(X) \
	X(INT64, producer_id,  4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64, first_offset, 4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(fetch_resp_aborted_transaction)

#define KC_L_fetch_resp_partition_data(X) \
	X(INT32,   partition_index,        0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT16,   error_code,             0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,   high_watermark,         0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,   last_stable_offset,     4,  KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64,   log_start_offset,       5,  KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(STRUCT,  diverging_epoch,        12, KV_MAX, KV_NONULL, 0,        0,  fetch_resp_epoch_end_offset) \
	X(STRUCT,  current_leader,         12, KV_MAX, KV_NONULL, 1,        0,  fetch_resp_leader_id_and_epoch) \
	X(STRUCT,  snapshot_id,            12, KV_MAX, KV_NONULL, 2,        0,  fetch_resp_snapshot_id) \
	X(ARRAY,   aborted_transactions,   4,  KV_MAX, 4,         KV_NOTAG, 0,  fetch_resp_aborted_transaction) \
	X(INT32,   preferred_read_replica, 11, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(RECORDS, records,                0,  KV_MAX, 0,         KV_NOTAG, 0,  _)
KC_STRUCT(fetch_resp_partition_data)

#define KC_L_fetch_resp_fetchable_topic_response(X) \
	X(STRING, topic,      0, 12,     KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, fetch_resp_partition_data)
KC_STRUCT(fetch_resp_fetchable_topic_response)

#define KC_L_fetch_resp(X) \
	X(INT32, throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,       7, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32, session_id,       7, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, responses,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0, fetch_resp_fetchable_topic_response)
KC_STRUCT(fetch_resp)

/* ---- ListOffsets (key 2), versions 0-7, flexible from 6 ---- */

#define KC_L_list_offsets_req_list_offsets_partition(X) \
	X(INT32, partition_index,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32, current_leader_epoch, 4, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64, timestamp,            0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32, max_num_offsets,      0, 0,      KV_NONULL, KV_NOTAG, 1,  _)
KC_STRUCT(list_offsets_req_list_offsets_partition)

#define KC_L_list_offsets_req_list_offsets_topic(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, list_offsets_req_list_offsets_partition)
KC_STRUCT(list_offsets_req_list_offsets_topic)

#define KC_L_list_offsets_req(X) \
	X(INT32, replica_id,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT8,  isolation_level, 2, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0, list_offsets_req_list_offsets_topic)
KC_STRUCT(list_offsets_req)

#define KC_L_list_offsets_resp_list_offsets_partition_response(X) \
	X(INT32,       partition_index,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT16,       error_code,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(ARRAY_INT64, old_style_offsets, 0, 0,      KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,       timestamp,         1, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64,       offset,            1, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT32,       leader_epoch,      4, KV_MAX, KV_NONULL, KV_NOTAG, -1, _)
KC_STRUCT(list_offsets_resp_list_offsets_partition_response)

#define KC_L_list_offsets_resp_list_offsets_topic_response(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, list_offsets_resp_list_offsets_partition_response)
KC_STRUCT(list_offsets_resp_list_offsets_topic_response)

#define KC_L_list_offsets_resp(X) \
	X(INT32, throttle_time_ms, 2, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, list_offsets_resp_list_offsets_topic_response)
KC_STRUCT(list_offsets_resp)

/* ---- Metadata (key 3), versions 0-12, flexible from 9 ---- */

#define KC_L_metadata_req_metadata_request_topic(X) \
	X(UUID,   topic_id, 10, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, name,     0,  KV_MAX, 10,        KV_NOTAG, 0, _)
KC_STRUCT(metadata_req_metadata_request_topic)

/* v0: an empty topics array means all topics; v1+: null means all. */
#define KC_L_metadata_req(X) \
	X(ARRAY, topics,                                0, KV_MAX, 1,         KV_NOTAG, 0, metadata_req_metadata_request_topic) \
	X(BOOL,  allow_auto_topic_creation,             4, KV_MAX, KV_NONULL, KV_NOTAG, 1, _) \
	X(BOOL,  include_cluster_authorized_operations, 8, 10,     KV_NONULL, KV_NOTAG, 0, _) \
	X(BOOL,  include_topic_authorized_operations,   8, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(metadata_req)

#define KC_L_metadata_resp_metadata_response_broker(X) \
	X(INT32,  node_id, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, host,    0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  port,    0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, rack,    1, KV_MAX, 1,         KV_NOTAG, 0, _)
KC_STRUCT(metadata_resp_metadata_response_broker)

#define KC_L_metadata_resp_metadata_response_partition(X) \
	X(INT16,       error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,       partition_index,  0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,       leader_id,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,       leader_epoch,     7, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(ARRAY_INT32, replica_nodes,    0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(ARRAY_INT32, isr_nodes,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(ARRAY_INT32, offline_replicas, 5, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _)
KC_STRUCT(metadata_resp_metadata_response_partition)

#define KC_L_metadata_resp_metadata_response_topic(X) \
	X(INT16,  error_code,                  0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(STRING, name,                        0,  KV_MAX, 12,        KV_NOTAG, 0,         _) \
	X(UUID,   topic_id,                    10, KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(BOOL,   is_internal,                 1,  KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(ARRAY,  partitions,                  0,  KV_MAX, KV_NONULL, KV_NOTAG, 0,         metadata_resp_metadata_response_partition) \
	X(INT32,  topic_authorized_operations, 8,  KV_MAX, KV_NONULL, KV_NOTAG, INT32_MIN, _)
KC_STRUCT(metadata_resp_metadata_response_topic)

#define KC_L_metadata_resp(X) \
	X(INT32,  throttle_time_ms,              3, KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(ARRAY,  brokers,                       0, KV_MAX, KV_NONULL, KV_NOTAG, 0,         metadata_resp_metadata_response_broker) \
	X(STRING, cluster_id,                    2, KV_MAX, 2,         KV_NOTAG, 0,         _) \
	X(INT32,  controller_id,                 1, KV_MAX, KV_NONULL, KV_NOTAG, -1,        _) \
	X(ARRAY,  topics,                        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,         metadata_resp_metadata_response_topic) \
	X(INT32,  cluster_authorized_operations, 8, 10,     KV_NONULL, KV_NOTAG, INT32_MIN, _)
KC_STRUCT(metadata_resp)

/* ---- OffsetCommit (key 8), versions 0-8, flexible from 8 ---- */

#define KC_L_offset_commit_req_offset_commit_request_partition(X) \
	X(INT32,  partition_index,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,  committed_offset,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  committed_leader_epoch, 6, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64,  commit_timestamp,       1, 1,      KV_NONULL, KV_NOTAG, -1, _) \
	X(STRING, committed_metadata,     0, KV_MAX, 0,         KV_NOTAG, 0,  _)
KC_STRUCT(offset_commit_req_offset_commit_request_partition)

#define KC_L_offset_commit_req_offset_commit_request_topic(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_commit_req_offset_commit_request_partition)
KC_STRUCT(offset_commit_req_offset_commit_request_topic)

/* 3.7 renamed GenerationId to GenerationIdOrMemberEpoch (KIP-848); same wire. */
#define KC_L_offset_commit_req(X) \
	X(STRING, group_id,                      0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  generation_id_or_member_epoch, 1, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(STRING, member_id,                     1, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(STRING, group_instance_id,             7, KV_MAX, 7,         KV_NOTAG, 0,  _) \
	X(INT64,  retention_time_ms,             2, 4,      KV_NONULL, KV_NOTAG, -1, _) \
	X(ARRAY,  topics,                        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  offset_commit_req_offset_commit_request_topic)
KC_STRUCT(offset_commit_req)

#define KC_L_offset_commit_resp_offset_commit_response_partition(X) \
	X(INT32, partition_index, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(offset_commit_resp_offset_commit_response_partition)

#define KC_L_offset_commit_resp_offset_commit_response_topic(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_commit_resp_offset_commit_response_partition)
KC_STRUCT(offset_commit_resp_offset_commit_response_topic)

#define KC_L_offset_commit_resp(X) \
	X(INT32, throttle_time_ms, 3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_commit_resp_offset_commit_response_topic)
KC_STRUCT(offset_commit_resp)

/*
 * ---- OffsetFetch (key 9), versions 0-8, flexible from 6 ----
 * v0-7 ask for one group (group_id, topics); v8 for many (groups), each with
 * its own topics.  The JSON names the two topic structs OffsetFetchRequestTopic
 * (v0-7) and OffsetFetchRequestTopics (v8), and likewise in the response.
 * A null topics array (v2+, and per group in v8) means all committed offsets.
 */

#define KC_L_offset_fetch_req_offset_fetch_request_topic(X) \
	X(STRING,      name,              0, 7, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_INT32, partition_indexes, 0, 7, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(offset_fetch_req_offset_fetch_request_topic)

#define KC_L_offset_fetch_req_offset_fetch_request_topics(X) \
	X(STRING,      name,              8, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_INT32, partition_indexes, 8, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(offset_fetch_req_offset_fetch_request_topics)

#define KC_L_offset_fetch_req_offset_fetch_request_group(X) \
	X(STRING, group_id, 8, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  topics,   8, KV_MAX, 8,         KV_NOTAG, 0, offset_fetch_req_offset_fetch_request_topics)
KC_STRUCT(offset_fetch_req_offset_fetch_request_group)

#define KC_L_offset_fetch_req(X) \
	X(STRING, group_id,       0, 7,      KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  topics,         0, 7,      2,         KV_NOTAG, 0, offset_fetch_req_offset_fetch_request_topic) \
	X(ARRAY,  groups,         8, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_fetch_req_offset_fetch_request_group) \
	X(BOOL,   require_stable, 7, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(offset_fetch_req)

#define KC_L_offset_fetch_resp_offset_fetch_response_partition(X) \
	X(INT32,  partition_index,        0, 7, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,  committed_offset,       0, 7, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  committed_leader_epoch, 5, 7, KV_NONULL, KV_NOTAG, -1, _) \
	X(STRING, metadata,               0, 7, 0,         KV_NOTAG, 0,  _) \
	X(INT16,  error_code,             0, 7, KV_NONULL, KV_NOTAG, 0,  _)
KC_STRUCT(offset_fetch_resp_offset_fetch_response_partition)

#define KC_L_offset_fetch_resp_offset_fetch_response_topic(X) \
	X(STRING, name,       0, 7, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, 7, KV_NONULL, KV_NOTAG, 0, offset_fetch_resp_offset_fetch_response_partition)
KC_STRUCT(offset_fetch_resp_offset_fetch_response_topic)

#define KC_L_offset_fetch_resp_offset_fetch_response_partitions(X) \
	X(INT32,  partition_index,        8, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,  committed_offset,       8, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  committed_leader_epoch, 8, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(STRING, metadata,               8, KV_MAX, 8,         KV_NOTAG, 0,  _) \
	X(INT16,  error_code,             8, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _)
KC_STRUCT(offset_fetch_resp_offset_fetch_response_partitions)

#define KC_L_offset_fetch_resp_offset_fetch_response_topics(X) \
	X(STRING, name,       8, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 8, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_fetch_resp_offset_fetch_response_partitions)
KC_STRUCT(offset_fetch_resp_offset_fetch_response_topics)

#define KC_L_offset_fetch_resp_offset_fetch_response_group(X) \
	X(STRING, group_id,   8, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  topics,     8, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_fetch_resp_offset_fetch_response_topics) \
	X(INT16,  error_code, 8, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(offset_fetch_resp_offset_fetch_response_group)

#define KC_L_offset_fetch_resp(X) \
	X(INT32, throttle_time_ms, 3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,           0, 7,      KV_NONULL, KV_NOTAG, 0, offset_fetch_resp_offset_fetch_response_topic) \
	X(INT16, error_code,       2, 7,      KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, groups,           8, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_fetch_resp_offset_fetch_response_group)
KC_STRUCT(offset_fetch_resp)

/* ---- FindCoordinator (key 10), versions 0-4, flexible from 3 ---- */

#define KC_L_find_coordinator_req(X) \
	X(STRING,       key,              0, 3,      KV_NONULL, KV_NOTAG, 0, _) \
	X(INT8,         key_type,         1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_STRING, coordinator_keys, 4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(find_coordinator_req)

#define KC_L_find_coordinator_resp_coordinator(X) \
	X(STRING, key,           4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  node_id,       4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, host,          4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  port,          4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  error_code,    4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, error_message, 4, KV_MAX, 4,         KV_NOTAG, 0, _)
KC_STRUCT(find_coordinator_resp_coordinator)

#define KC_L_find_coordinator_resp(X) \
	X(INT32,  throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  error_code,       0, 3,      KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, error_message,    1, 3,      1,         KV_NOTAG, 0, _) \
	X(INT32,  node_id,          0, 3,      KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, host,             0, 3,      KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  port,             0, 3,      KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  coordinators,     4, KV_MAX, KV_NONULL, KV_NOTAG, 0, find_coordinator_resp_coordinator)
KC_STRUCT(find_coordinator_resp)

/*
 * ---- JoinGroup (key 11), versions 0-9, flexible from 6 ----
 * rebalance_timeout_ms is -1 in v0, where the session timeout stands in for
 * it.  The response's protocol_name becomes nullable only in v7: a null name
 * goes out as "" below that.
 */

#define KC_L_join_group_req_join_group_request_protocol(X) \
	X(STRING, name,     0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(BYTES,  metadata, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(join_group_req_join_group_request_protocol)

#define KC_L_join_group_req(X) \
	X(STRING, group_id,             0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  session_timeout_ms,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  rebalance_timeout_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(STRING, member_id,            0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(STRING, group_instance_id,    5, KV_MAX, 5,         KV_NOTAG, 0,  _) \
	X(STRING, protocol_type,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(ARRAY,  protocols,            0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  join_group_req_join_group_request_protocol) \
	X(STRING, reason,               8, KV_MAX, 8,         KV_NOTAG, 0,  _)
KC_STRUCT(join_group_req)

#define KC_L_join_group_resp_join_group_response_member(X) \
	X(STRING, member_id,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, group_instance_id, 5, KV_MAX, 5,         KV_NOTAG, 0, _) \
	X(BYTES,  metadata,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(join_group_resp_join_group_response_member)

#define KC_L_join_group_resp(X) \
	X(INT32,  throttle_time_ms, 2, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT16,  error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  generation_id,    0, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(STRING, protocol_type,    7, KV_MAX, 7,         KV_NOTAG, 0,  _) \
	X(STRING, protocol_name,    0, KV_MAX, 7,         KV_NOTAG, 0,  _) \
	X(STRING, leader,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(BOOL,   skip_assignment,  9, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(STRING, member_id,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(ARRAY,  members,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  join_group_resp_join_group_response_member)
KC_STRUCT(join_group_resp)

/* ---- Heartbeat (key 12), versions 0-4, flexible from 4 ---- */

#define KC_L_heartbeat_req(X) \
	X(STRING, group_id,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  generation_id,     0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, member_id,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, group_instance_id, 3, KV_MAX, 3,         KV_NOTAG, 0, _)
KC_STRUCT(heartbeat_req)

#define KC_L_heartbeat_resp(X) \
	X(INT32, throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(heartbeat_resp)

/*
 * ---- LeaveGroup (key 13), versions 0-5, flexible from 4 ----
 * v0-2 name one member (member_id); v3+ a batch (members).  The v0-2
 * response has no members array: per-member errors fold into error_code.
 */

#define KC_L_leave_group_req_member_identity(X) \
	X(STRING, member_id,         3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, group_instance_id, 3, KV_MAX, 3,         KV_NOTAG, 0, _) \
	X(STRING, reason,            5, KV_MAX, 5,         KV_NOTAG, 0, _)
KC_STRUCT(leave_group_req_member_identity)

#define KC_L_leave_group_req(X) \
	X(STRING, group_id,  0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, member_id, 0, 2,      KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  members,   3, KV_MAX, KV_NONULL, KV_NOTAG, 0, leave_group_req_member_identity)
KC_STRUCT(leave_group_req)

#define KC_L_leave_group_resp_member_response(X) \
	X(STRING, member_id,         3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, group_instance_id, 3, KV_MAX, 3,         KV_NOTAG, 0, _) \
	X(INT16,  error_code,        3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(leave_group_resp_member_response)

#define KC_L_leave_group_resp(X) \
	X(INT32, throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, members,          3, KV_MAX, KV_NONULL, KV_NOTAG, 0, leave_group_resp_member_response)
KC_STRUCT(leave_group_resp)

/* ---- SyncGroup (key 14), versions 0-5, flexible from 4 ---- */

#define KC_L_sync_group_req_sync_group_request_assignment(X) \
	X(STRING, member_id,  0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(BYTES,  assignment, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(sync_group_req_sync_group_request_assignment)

#define KC_L_sync_group_req(X) \
	X(STRING, group_id,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  generation_id,     0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, member_id,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, group_instance_id, 3, KV_MAX, 3,         KV_NOTAG, 0, _) \
	X(STRING, protocol_type,     5, KV_MAX, 5,         KV_NOTAG, 0, _) \
	X(STRING, protocol_name,     5, KV_MAX, 5,         KV_NOTAG, 0, _) \
	X(ARRAY,  assignments,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, sync_group_req_sync_group_request_assignment)
KC_STRUCT(sync_group_req)

#define KC_L_sync_group_resp(X) \
	X(INT32,  throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, protocol_type,    5, KV_MAX, 5,         KV_NOTAG, 0, _) \
	X(STRING, protocol_name,    5, KV_MAX, 5,         KV_NOTAG, 0, _) \
	X(BYTES,  assignment,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(sync_group_resp)

/* ---- DescribeGroups (key 15), versions 0-5, flexible from 5 ---- */

#define KC_L_describe_groups_req(X) \
	X(ARRAY_STRING, groups,                        0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(BOOL,         include_authorized_operations, 3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(describe_groups_req)

#define KC_L_describe_groups_resp_described_group_member(X) \
	X(STRING, member_id,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, group_instance_id, 4, KV_MAX, 4,         KV_NOTAG, 0, _) \
	X(STRING, client_id,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, client_host,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(BYTES,  member_metadata,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(BYTES,  member_assignment, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(describe_groups_resp_described_group_member)

#define KC_L_describe_groups_resp_described_group(X) \
	X(INT16,  error_code,            0, KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(STRING, group_id,              0, KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(STRING, group_state,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(STRING, protocol_type,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(STRING, protocol_data,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0,         _) \
	X(ARRAY,  members,               0, KV_MAX, KV_NONULL, KV_NOTAG, 0,         describe_groups_resp_described_group_member) \
	X(INT32,  authorized_operations, 3, KV_MAX, KV_NONULL, KV_NOTAG, INT32_MIN, _)
KC_STRUCT(describe_groups_resp_described_group)

#define KC_L_describe_groups_resp(X) \
	X(INT32, throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, groups,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, describe_groups_resp_described_group)
KC_STRUCT(describe_groups_resp)

/* ---- ListGroups (key 16), versions 0-4, flexible from 3; v0-2 requests are empty ---- */

#define KC_L_list_groups_req(X) \
	X(ARRAY_STRING, states_filter, 4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(list_groups_req)

#define KC_L_list_groups_resp_listed_group(X) \
	X(STRING, group_id,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, protocol_type, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, group_state,   4, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(list_groups_resp_listed_group)

#define KC_L_list_groups_resp(X) \
	X(INT32, throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, groups,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, list_groups_resp_listed_group)
KC_STRUCT(list_groups_resp)

/* ---- ApiVersions (key 18), versions 0-3, flexible from 3 ---- */

#define KC_L_api_versions_req(X) \
	X(STRING, client_software_name,    3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, client_software_version, 3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(api_versions_req)

#define KC_L_api_versions_resp_api_version(X) \
	X(INT16, api_key,     0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, min_version, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, max_version, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(api_versions_resp_api_version)

#define KC_L_api_versions_resp_supported_feature_key(X) \
	X(STRING, name,        3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  min_version, 3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  max_version, 3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(api_versions_resp_supported_feature_key)

#define KC_L_api_versions_resp_finalized_feature_key(X) \
	X(STRING, name,              3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  max_version_level, 3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  min_version_level, 3, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(api_versions_resp_finalized_feature_key)

#define KC_L_api_versions_resp(X) \
	X(INT16, error_code,               0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(ARRAY, api_keys,                 0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  api_versions_resp_api_version) \
	X(INT32, throttle_time_ms,         1, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(ARRAY, supported_features,       3, KV_MAX, KV_NONULL, 0,        0,  api_versions_resp_supported_feature_key) \
	X(INT64, finalized_features_epoch, 3, KV_MAX, KV_NONULL, 1,        -1, _) \
	X(ARRAY, finalized_features,       3, KV_MAX, KV_NONULL, 2,        0,  api_versions_resp_finalized_feature_key) \
	X(BOOL,  zk_migration_ready,       3, KV_MAX, KV_NONULL, 3,        0,  _)
KC_STRUCT(api_versions_resp)

/* ---- CreateTopics (key 19), versions 0-7, flexible from 5 ---- */

#define KC_L_create_topics_req_creatable_replica_assignment(X) \
	X(INT32,       partition_index, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_INT32, broker_ids,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(create_topics_req_creatable_replica_assignment)

/* "Createable" is the JSON's own spelling. */
#define KC_L_create_topics_req_createable_topic_config(X) \
	X(STRING, name,  0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, value, 0, KV_MAX, 0,         KV_NOTAG, 0, _)
KC_STRUCT(create_topics_req_createable_topic_config)

#define KC_L_create_topics_req_creatable_topic(X) \
	X(STRING, name,               0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  num_partitions,     0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  replication_factor, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  assignments,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0, create_topics_req_creatable_replica_assignment) \
	X(ARRAY,  configs,            0, KV_MAX, KV_NONULL, KV_NOTAG, 0, create_topics_req_createable_topic_config)
KC_STRUCT(create_topics_req_creatable_topic)

#define KC_L_create_topics_req(X) \
	X(ARRAY, topics,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,     create_topics_req_creatable_topic) \
	X(INT32, timeout_ms,    0, KV_MAX, KV_NONULL, KV_NOTAG, 60000, _) \
	X(BOOL,  validate_only, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0,     _)
KC_STRUCT(create_topics_req)

#define KC_L_create_topics_resp_creatable_topic_configs(X) \
	X(STRING, name,          5, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(STRING, value,         5, KV_MAX, 5,         KV_NOTAG, 0,  _) \
	X(BOOL,   read_only,     5, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT8,   config_source, 5, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(BOOL,   is_sensitive,  5, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _)
KC_STRUCT(create_topics_resp_creatable_topic_configs)

#define KC_L_create_topics_resp_creatable_topic_result(X) \
	X(STRING, name,                    0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(UUID,   topic_id,                7, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT16,  error_code,              0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(STRING, error_message,           1, KV_MAX, 0,         KV_NOTAG, 0,  _) \
	X(INT16,  topic_config_error_code, 5, KV_MAX, KV_NONULL, 0,        0,  _) \
	X(INT32,  num_partitions,          5, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT16,  replication_factor,      5, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(ARRAY,  configs,                 5, KV_MAX, 5,         KV_NOTAG, 0,  create_topics_resp_creatable_topic_configs)
KC_STRUCT(create_topics_resp_creatable_topic_result)

#define KC_L_create_topics_resp(X) \
	X(INT32, throttle_time_ms, 2, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, create_topics_resp_creatable_topic_result)
KC_STRUCT(create_topics_resp)

/* ---- DeleteTopics (key 20), versions 0-6, flexible from 4 ---- */

#define KC_L_delete_topics_req_delete_topic_state(X) \
	X(STRING, name,     6, KV_MAX, 6,         KV_NOTAG, 0, _) \
	X(UUID,   topic_id, 6, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(delete_topics_req_delete_topic_state)

/* v0-5 name topics in topic_names; v6 moved to topics (name or id). */
#define KC_L_delete_topics_req(X) \
	X(ARRAY,        topics,      6, KV_MAX, KV_NONULL, KV_NOTAG, 0, delete_topics_req_delete_topic_state) \
	X(ARRAY_STRING, topic_names, 0, 5,      KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,        timeout_ms,  0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(delete_topics_req)

#define KC_L_delete_topics_resp_deletable_topic_result(X) \
	X(STRING, name,          0, KV_MAX, 6,         KV_NOTAG, 0, _) \
	X(UUID,   topic_id,      6, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  error_code,    0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, error_message, 5, KV_MAX, 5,         KV_NOTAG, 0, _)
KC_STRUCT(delete_topics_resp_deletable_topic_result)

#define KC_L_delete_topics_resp(X) \
	X(INT32, throttle_time_ms, 1, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, responses,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0, delete_topics_resp_deletable_topic_result)
KC_STRUCT(delete_topics_resp)

/* ---- DeleteRecords (key 21), versions 0-2, flexible from 2 ---- */

#define KC_L_delete_records_req_delete_records_partition(X) \
	X(INT32, partition_index, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64, offset,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(delete_records_req_delete_records_partition)

#define KC_L_delete_records_req_delete_records_topic(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, delete_records_req_delete_records_partition)
KC_STRUCT(delete_records_req_delete_records_topic)

#define KC_L_delete_records_req(X) \
	X(ARRAY, topics,     0, KV_MAX, KV_NONULL, KV_NOTAG, 0, delete_records_req_delete_records_topic) \
	X(INT32, timeout_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(delete_records_req)

#define KC_L_delete_records_resp_delete_records_partition_result(X) \
	X(INT32, partition_index, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64, low_watermark,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(delete_records_resp_delete_records_partition_result)

#define KC_L_delete_records_resp_delete_records_topic_result(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, delete_records_resp_delete_records_partition_result)
KC_STRUCT(delete_records_resp_delete_records_topic_result)

#define KC_L_delete_records_resp(X) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, delete_records_resp_delete_records_topic_result)
KC_STRUCT(delete_records_resp)

/* ---- AddPartitionsToTxn (key 24), versions 0-3, flexible from 3 ---- */

/*
 * Versions 0-3 only: 4+ batch transactions between brokers.  The fields
 * transcribe V3AndBelowTransactionalId, V3AndBelowProducerId,
 * V3AndBelowProducerEpoch, V3AndBelowTopics and ResultsByTopicV3AndBelow.
 */
#define KC_L_add_partitions_to_txn_req_topic(X) \
	X(STRING,      name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_INT32, partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(add_partitions_to_txn_req_topic)

#define KC_L_add_partitions_to_txn_req(X) \
	X(STRING, transactional_id, 0, 3, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64,  producer_id,      0, 3, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  producer_epoch,   0, 3, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  topics,           0, 3, KV_NONULL, KV_NOTAG, 0, add_partitions_to_txn_req_topic)
KC_STRUCT(add_partitions_to_txn_req)

#define KC_L_add_partitions_to_txn_resp_partition_result(X) \
	X(INT32, partition_index,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, partition_error_code, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(add_partitions_to_txn_resp_partition_result)

#define KC_L_add_partitions_to_txn_resp_topic_result(X) \
	X(STRING, name,                 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  results_by_partition, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, add_partitions_to_txn_resp_partition_result)
KC_STRUCT(add_partitions_to_txn_resp_topic_result)

#define KC_L_add_partitions_to_txn_resp(X) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, results,          0, 3,      KV_NONULL, KV_NOTAG, 0, add_partitions_to_txn_resp_topic_result)
KC_STRUCT(add_partitions_to_txn_resp)

/* ---- AddOffsetsToTxn (key 25), versions 0-3, flexible from 3 ---- */

#define KC_L_add_offsets_to_txn_req(X) \
	X(STRING, transactional_id, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64,  producer_id,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  producer_epoch,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, group_id,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(add_offsets_to_txn_req)

#define KC_L_add_offsets_to_txn_resp(X) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(add_offsets_to_txn_resp)

/* ---- EndTxn (key 26), versions 0-3, flexible from 3 ---- */

#define KC_L_end_txn_req(X) \
	X(STRING, transactional_id, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64,  producer_id,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  producer_epoch,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(BOOL,   committed,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(end_txn_req)

#define KC_L_end_txn_resp(X) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(end_txn_resp)

/* ---- TxnOffsetCommit (key 28), versions 0-3, flexible from 3 ---- */

#define KC_L_txn_offset_commit_req_partition(X) \
	X(INT32,  partition_index,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,  committed_offset,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  committed_leader_epoch, 2, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(STRING, committed_metadata,     0, KV_MAX, 0,         KV_NOTAG, 0,  _)
KC_STRUCT(txn_offset_commit_req_partition)

#define KC_L_txn_offset_commit_req_topic(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, txn_offset_commit_req_partition)
KC_STRUCT(txn_offset_commit_req_topic)

#define KC_L_txn_offset_commit_req(X) \
	X(STRING, transactional_id,  0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(STRING, group_id,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,  producer_id,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT16,  producer_epoch,    0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32,  generation_id,     3, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(STRING, member_id,         3, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(STRING, group_instance_id, 3, KV_MAX, 3,         KV_NOTAG, 0,  _) \
	X(ARRAY,  topics,            0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  txn_offset_commit_req_topic)
KC_STRUCT(txn_offset_commit_req)

#define KC_L_txn_offset_commit_resp_partition(X) \
	X(INT32, partition_index, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(txn_offset_commit_resp_partition)

#define KC_L_txn_offset_commit_resp_topic(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, txn_offset_commit_resp_partition)
KC_STRUCT(txn_offset_commit_resp_topic)

#define KC_L_txn_offset_commit_resp(X) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, txn_offset_commit_resp_topic)
KC_STRUCT(txn_offset_commit_resp)

/* ---- DeleteGroups (key 42), versions 0-2, flexible from 2 ---- */

/* "GroupsNames" is the JSON's own spelling. */
#define KC_L_delete_groups_req(X) \
	X(ARRAY_STRING, groups_names, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(delete_groups_req)

#define KC_L_delete_groups_resp_deletable_group_result(X) \
	X(STRING, group_id,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  error_code, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(delete_groups_resp_deletable_group_result)

#define KC_L_delete_groups_resp(X) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, results,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0, delete_groups_resp_deletable_group_result)
KC_STRUCT(delete_groups_resp)

/* ---- InitProducerId (key 22), versions 0-4, flexible from 2 ---- */

#define KC_L_init_producer_id_req(X) \
	X(STRING, transactional_id,       0, KV_MAX, 0,         KV_NOTAG, 0,  _) \
	X(INT32,  transaction_timeout_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,  producer_id,            3, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT16,  producer_epoch,         3, KV_MAX, KV_NONULL, KV_NOTAG, -1, _)
KC_STRUCT(init_producer_id_req)

#define KC_L_init_producer_id_resp(X) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT16, error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64, producer_id,      0, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT16, producer_epoch,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _)
KC_STRUCT(init_producer_id_resp)

/* ---- DescribeProducers (key 61), version 0, flexible from 0 ---- */

#define KC_L_describe_producers_req_topic_request(X) \
	X(STRING,      name,              0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_INT32, partition_indexes, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(describe_producers_req_topic_request)

#define KC_L_describe_producers_req(X) \
	X(ARRAY, topics, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, describe_producers_req_topic_request)
KC_STRUCT(describe_producers_req)

#define KC_L_describe_producers_resp_producer_state(X) \
	X(INT64, producer_id,              0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32, producer_epoch,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT32, last_sequence,            0, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT64, last_timestamp,           0, KV_MAX, KV_NONULL, KV_NOTAG, -1, _) \
	X(INT32, coordinator_epoch,        0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64, current_txn_start_offset, 0, KV_MAX, KV_NONULL, KV_NOTAG, -1, _)
KC_STRUCT(describe_producers_resp_producer_state)

#define KC_L_describe_producers_resp_partition_response(X) \
	X(INT32,  partition_index,  0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, error_message,    0, KV_MAX, 0,         KV_NOTAG, 0, _) \
	X(ARRAY,  active_producers, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, describe_producers_resp_producer_state)
KC_STRUCT(describe_producers_resp_partition_response)

#define KC_L_describe_producers_resp_topic_response(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, describe_producers_resp_partition_response)
KC_STRUCT(describe_producers_resp_topic_response)

#define KC_L_describe_producers_resp(X) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, describe_producers_resp_topic_response)
KC_STRUCT(describe_producers_resp)

/* ---- DescribeTransactions (key 65), version 0, flexible from 0 ---- */

#define KC_L_describe_transactions_req(X) \
	X(ARRAY_STRING, transactional_ids, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(describe_transactions_req)

#define KC_L_describe_transactions_resp_topic_data(X) \
	X(STRING,      topic,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_INT32, partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(describe_transactions_resp_topic_data)

#define KC_L_describe_transactions_resp_transaction_state(X) \
	X(INT16,  error_code,                0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, transactional_id,          0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, transaction_state,         0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32,  transaction_timeout_ms,    0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64,  transaction_start_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64,  producer_id,               0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,  producer_epoch,            0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  topics,                    0, KV_MAX, KV_NONULL, KV_NOTAG, 0, describe_transactions_resp_topic_data)
KC_STRUCT(describe_transactions_resp_transaction_state)

#define KC_L_describe_transactions_resp(X) \
	X(INT32, throttle_time_ms,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, transaction_states, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, describe_transactions_resp_transaction_state)
KC_STRUCT(describe_transactions_resp)

/* ---- ListTransactions (key 66), versions 0-1, flexible from 0 ---- */

#define KC_L_list_transactions_req(X) \
	X(ARRAY_STRING, state_filters,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(ARRAY_INT64,  producer_id_filters, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0,  _) \
	X(INT64,        duration_filter,     1, KV_MAX, KV_NONULL, KV_NOTAG, -1, _)
KC_STRUCT(list_transactions_req)

#define KC_L_list_transactions_resp_transaction_state(X) \
	X(STRING, transactional_id,  0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT64,  producer_id,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(STRING, transaction_state, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(list_transactions_resp_transaction_state)

#define KC_L_list_transactions_resp(X) \
	X(INT32,        throttle_time_ms,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16,        error_code,            0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY_STRING, unknown_state_filters, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,        transaction_states,    0, KV_MAX, KV_NONULL, KV_NOTAG, 0, list_transactions_resp_transaction_state)
KC_STRUCT(list_transactions_resp)

/* ---- OffsetDelete (key 47), version 0, never flexible ---- */

#define KC_L_offset_delete_req_offset_delete_request_partition(X) \
	X(INT32, partition_index, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(offset_delete_req_offset_delete_request_partition)

#define KC_L_offset_delete_req_offset_delete_request_topic(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_delete_req_offset_delete_request_partition)
KC_STRUCT(offset_delete_req_offset_delete_request_topic)

#define KC_L_offset_delete_req(X) \
	X(STRING, group_id, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  topics,   0, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_delete_req_offset_delete_request_topic)
KC_STRUCT(offset_delete_req)

#define KC_L_offset_delete_resp_offset_delete_response_partition(X) \
	X(INT32, partition_index, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT16, error_code,      0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _)
KC_STRUCT(offset_delete_resp_offset_delete_response_partition)

#define KC_L_offset_delete_resp_offset_delete_response_topic(X) \
	X(STRING, name,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY,  partitions, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_delete_resp_offset_delete_response_partition)
KC_STRUCT(offset_delete_resp_offset_delete_response_topic)

/* error_code comes before throttle_time_ms here, unlike every other response. */
#define KC_L_offset_delete_resp(X) \
	X(INT16, error_code,       0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(INT32, throttle_time_ms, 0, KV_MAX, KV_NONULL, KV_NOTAG, 0, _) \
	X(ARRAY, topics,           0, KV_MAX, KV_NONULL, KV_NOTAG, 0, offset_delete_resp_offset_delete_response_topic)
KC_STRUCT(offset_delete_resp)

/*
 * One row per API the codec can carry.  vmin..vmax is what kc_decode and
 * kc_encode handle for this API (not necessarily what the broker advertises);
 * flex_min is the first flexible version, KV_MAX for an API that has none.
 */
struct kc_api {
	int16_t key;
	const char *name;
	int16_t vmin, vmax;
	int16_t flex_min;
	const struct kc_struct *req, *resp;
};

extern const struct kc_api kc_apis[];
extern const size_t kc_napis;

/* The row for key, or NULL if the codec does not know it. */
const struct kc_api *kc_api_find(int16_t key);
/* The API's name ("Produce"), or "Unknown". */
const char *kc_api_name(int16_t key);

#endif
