/*
 * msgs.c - the descriptor tables for the lists in msgs.h, and kc_apis[].
 *
 * Each list in msgs.h is expanded here a second time, with KC_F, into an
 * array of struct kc_field; the member offsets come from offsetof on the
 * struct the same list generated, so the table and the C struct cannot
 * disagree.  The preprocessor has no way to hand the struct's name down to
 * each X() call, so the name travels in KC_CUR, defined around each
 * KC_DESC() below.
 */
#include <stddef.h>
#include <string.h>
#include "msgs.h"

/* n_off and sub for each TYPE: arrays have a count member, STRUCT and ARRAY an element type. */
#define KC_X_BOOL(S, n, s)		0, NULL
#define KC_X_INT8(S, n, s)		0, NULL
#define KC_X_INT16(S, n, s)		0, NULL
#define KC_X_UINT16(S, n, s)		0, NULL
#define KC_X_INT32(S, n, s)		0, NULL
#define KC_X_INT64(S, n, s)		0, NULL
#define KC_X_FLOAT64(S, n, s)		0, NULL
#define KC_X_UUID(S, n, s)		0, NULL
#define KC_X_STRING(S, n, s)		0, NULL
#define KC_X_BYTES(S, n, s)		0, NULL
#define KC_X_RECORDS(S, n, s)		0, NULL
#define KC_X_STRUCT(S, n, s)		0, &kc_##s
#define KC_X_ARRAY(S, n, s)		offsetof(struct S, n##_n), &kc_##s
#define KC_X_ARRAY_INT32(S, n, s)	offsetof(struct S, n##_n), NULL
#define KC_X_ARRAY_INT64(S, n, s)	offsetof(struct S, n##_n), NULL
#define KC_X_ARRAY_STRING(S, n, s)	offsetof(struct S, n##_n), NULL

#define KC_F_(S, T, n, v0, v1, nf, tag, d, s) \
	{ #n, KC_##T, v0, v1, nf, tag, d, offsetof(struct S, n), KC_X_##T(S, n, s) },
#define KC_F(T, n, v0, v1, nf, tag, d, s) KC_F_(KC_CUR, T, n, v0, v1, nf, tag, d, s)

#define KC_DESC(name) \
	static const struct kc_field kc_f_##name[] = { KC_L_##name(KC_F) }; \
	const struct kc_struct kc_##name = { #name, kc_f_##name, \
		sizeof(kc_f_##name) / sizeof(kc_f_##name[0]), sizeof(struct name) };

#define KC_CUR produce_req_partition_produce_data
KC_DESC(produce_req_partition_produce_data)
#undef KC_CUR
#define KC_CUR produce_req_topic_produce_data
KC_DESC(produce_req_topic_produce_data)
#undef KC_CUR
#define KC_CUR produce_req
KC_DESC(produce_req)
#undef KC_CUR
#define KC_CUR produce_resp_batch_index_and_error_message
KC_DESC(produce_resp_batch_index_and_error_message)
#undef KC_CUR
#define KC_CUR produce_resp_partition_produce_response
KC_DESC(produce_resp_partition_produce_response)
#undef KC_CUR
#define KC_CUR produce_resp_topic_produce_response
KC_DESC(produce_resp_topic_produce_response)
#undef KC_CUR
#define KC_CUR produce_resp
KC_DESC(produce_resp)
#undef KC_CUR
#define KC_CUR fetch_req_fetch_partition
KC_DESC(fetch_req_fetch_partition)
#undef KC_CUR
#define KC_CUR fetch_req_fetch_topic
KC_DESC(fetch_req_fetch_topic)
#undef KC_CUR
#define KC_CUR fetch_req_forgotten_topic
KC_DESC(fetch_req_forgotten_topic)
#undef KC_CUR
#define KC_CUR fetch_req
KC_DESC(fetch_req)
#undef KC_CUR
#define KC_CUR fetch_resp_epoch_end_offset
KC_DESC(fetch_resp_epoch_end_offset)
#undef KC_CUR
#define KC_CUR fetch_resp_leader_id_and_epoch
KC_DESC(fetch_resp_leader_id_and_epoch)
#undef KC_CUR
#define KC_CUR fetch_resp_snapshot_id
KC_DESC(fetch_resp_snapshot_id)
#undef KC_CUR
#define KC_CUR fetch_resp_aborted_transaction
KC_DESC(fetch_resp_aborted_transaction)
#undef KC_CUR
#define KC_CUR fetch_resp_partition_data
KC_DESC(fetch_resp_partition_data)
#undef KC_CUR
#define KC_CUR fetch_resp_fetchable_topic_response
KC_DESC(fetch_resp_fetchable_topic_response)
#undef KC_CUR
#define KC_CUR fetch_resp
KC_DESC(fetch_resp)
#undef KC_CUR
#define KC_CUR list_offsets_req_list_offsets_partition
KC_DESC(list_offsets_req_list_offsets_partition)
#undef KC_CUR
#define KC_CUR list_offsets_req_list_offsets_topic
KC_DESC(list_offsets_req_list_offsets_topic)
#undef KC_CUR
#define KC_CUR list_offsets_req
KC_DESC(list_offsets_req)
#undef KC_CUR
#define KC_CUR list_offsets_resp_list_offsets_partition_response
KC_DESC(list_offsets_resp_list_offsets_partition_response)
#undef KC_CUR
#define KC_CUR list_offsets_resp_list_offsets_topic_response
KC_DESC(list_offsets_resp_list_offsets_topic_response)
#undef KC_CUR
#define KC_CUR list_offsets_resp
KC_DESC(list_offsets_resp)
#undef KC_CUR
#define KC_CUR metadata_req_metadata_request_topic
KC_DESC(metadata_req_metadata_request_topic)
#undef KC_CUR
#define KC_CUR metadata_req
KC_DESC(metadata_req)
#undef KC_CUR
#define KC_CUR metadata_resp_metadata_response_broker
KC_DESC(metadata_resp_metadata_response_broker)
#undef KC_CUR
#define KC_CUR metadata_resp_metadata_response_partition
KC_DESC(metadata_resp_metadata_response_partition)
#undef KC_CUR
#define KC_CUR metadata_resp_metadata_response_topic
KC_DESC(metadata_resp_metadata_response_topic)
#undef KC_CUR
#define KC_CUR metadata_resp
KC_DESC(metadata_resp)
#undef KC_CUR
#define KC_CUR offset_commit_req_offset_commit_request_partition
KC_DESC(offset_commit_req_offset_commit_request_partition)
#undef KC_CUR
#define KC_CUR offset_commit_req_offset_commit_request_topic
KC_DESC(offset_commit_req_offset_commit_request_topic)
#undef KC_CUR
#define KC_CUR offset_commit_req
KC_DESC(offset_commit_req)
#undef KC_CUR
#define KC_CUR offset_commit_resp_offset_commit_response_partition
KC_DESC(offset_commit_resp_offset_commit_response_partition)
#undef KC_CUR
#define KC_CUR offset_commit_resp_offset_commit_response_topic
KC_DESC(offset_commit_resp_offset_commit_response_topic)
#undef KC_CUR
#define KC_CUR offset_commit_resp
KC_DESC(offset_commit_resp)
#undef KC_CUR
#define KC_CUR offset_fetch_req_offset_fetch_request_topic
KC_DESC(offset_fetch_req_offset_fetch_request_topic)
#undef KC_CUR
#define KC_CUR offset_fetch_req_offset_fetch_request_topics
KC_DESC(offset_fetch_req_offset_fetch_request_topics)
#undef KC_CUR
#define KC_CUR offset_fetch_req_offset_fetch_request_group
KC_DESC(offset_fetch_req_offset_fetch_request_group)
#undef KC_CUR
#define KC_CUR offset_fetch_req
KC_DESC(offset_fetch_req)
#undef KC_CUR
#define KC_CUR offset_fetch_resp_offset_fetch_response_partition
KC_DESC(offset_fetch_resp_offset_fetch_response_partition)
#undef KC_CUR
#define KC_CUR offset_fetch_resp_offset_fetch_response_topic
KC_DESC(offset_fetch_resp_offset_fetch_response_topic)
#undef KC_CUR
#define KC_CUR offset_fetch_resp_offset_fetch_response_partitions
KC_DESC(offset_fetch_resp_offset_fetch_response_partitions)
#undef KC_CUR
#define KC_CUR offset_fetch_resp_offset_fetch_response_topics
KC_DESC(offset_fetch_resp_offset_fetch_response_topics)
#undef KC_CUR
#define KC_CUR offset_fetch_resp_offset_fetch_response_group
KC_DESC(offset_fetch_resp_offset_fetch_response_group)
#undef KC_CUR
#define KC_CUR offset_fetch_resp
KC_DESC(offset_fetch_resp)
#undef KC_CUR
#define KC_CUR find_coordinator_req
KC_DESC(find_coordinator_req)
#undef KC_CUR
#define KC_CUR find_coordinator_resp_coordinator
KC_DESC(find_coordinator_resp_coordinator)
#undef KC_CUR
#define KC_CUR find_coordinator_resp
KC_DESC(find_coordinator_resp)
#undef KC_CUR
#define KC_CUR join_group_req_join_group_request_protocol
KC_DESC(join_group_req_join_group_request_protocol)
#undef KC_CUR
#define KC_CUR join_group_req
KC_DESC(join_group_req)
#undef KC_CUR
#define KC_CUR join_group_resp_join_group_response_member
KC_DESC(join_group_resp_join_group_response_member)
#undef KC_CUR
#define KC_CUR join_group_resp
KC_DESC(join_group_resp)
#undef KC_CUR
#define KC_CUR heartbeat_req
KC_DESC(heartbeat_req)
#undef KC_CUR
#define KC_CUR heartbeat_resp
KC_DESC(heartbeat_resp)
#undef KC_CUR
#define KC_CUR leave_group_req_member_identity
KC_DESC(leave_group_req_member_identity)
#undef KC_CUR
#define KC_CUR leave_group_req
KC_DESC(leave_group_req)
#undef KC_CUR
#define KC_CUR leave_group_resp_member_response
KC_DESC(leave_group_resp_member_response)
#undef KC_CUR
#define KC_CUR leave_group_resp
KC_DESC(leave_group_resp)
#undef KC_CUR
#define KC_CUR sync_group_req_sync_group_request_assignment
KC_DESC(sync_group_req_sync_group_request_assignment)
#undef KC_CUR
#define KC_CUR sync_group_req
KC_DESC(sync_group_req)
#undef KC_CUR
#define KC_CUR sync_group_resp
KC_DESC(sync_group_resp)
#undef KC_CUR
#define KC_CUR describe_groups_req
KC_DESC(describe_groups_req)
#undef KC_CUR
#define KC_CUR describe_groups_resp_described_group_member
KC_DESC(describe_groups_resp_described_group_member)
#undef KC_CUR
#define KC_CUR describe_groups_resp_described_group
KC_DESC(describe_groups_resp_described_group)
#undef KC_CUR
#define KC_CUR describe_groups_resp
KC_DESC(describe_groups_resp)
#undef KC_CUR
#define KC_CUR list_groups_req
KC_DESC(list_groups_req)
#undef KC_CUR
#define KC_CUR list_groups_resp_listed_group
KC_DESC(list_groups_resp_listed_group)
#undef KC_CUR
#define KC_CUR list_groups_resp
KC_DESC(list_groups_resp)
#undef KC_CUR
#define KC_CUR api_versions_req
KC_DESC(api_versions_req)
#undef KC_CUR
#define KC_CUR api_versions_resp_api_version
KC_DESC(api_versions_resp_api_version)
#undef KC_CUR
#define KC_CUR api_versions_resp_supported_feature_key
KC_DESC(api_versions_resp_supported_feature_key)
#undef KC_CUR
#define KC_CUR api_versions_resp_finalized_feature_key
KC_DESC(api_versions_resp_finalized_feature_key)
#undef KC_CUR
#define KC_CUR api_versions_resp
KC_DESC(api_versions_resp)
#undef KC_CUR
#define KC_CUR create_topics_req_creatable_replica_assignment
KC_DESC(create_topics_req_creatable_replica_assignment)
#undef KC_CUR
#define KC_CUR create_topics_req_createable_topic_config
KC_DESC(create_topics_req_createable_topic_config)
#undef KC_CUR
#define KC_CUR create_topics_req_creatable_topic
KC_DESC(create_topics_req_creatable_topic)
#undef KC_CUR
#define KC_CUR create_topics_req
KC_DESC(create_topics_req)
#undef KC_CUR
#define KC_CUR create_topics_resp_creatable_topic_configs
KC_DESC(create_topics_resp_creatable_topic_configs)
#undef KC_CUR
#define KC_CUR create_topics_resp_creatable_topic_result
KC_DESC(create_topics_resp_creatable_topic_result)
#undef KC_CUR
#define KC_CUR create_topics_resp
KC_DESC(create_topics_resp)
#undef KC_CUR
#define KC_CUR delete_topics_req_delete_topic_state
KC_DESC(delete_topics_req_delete_topic_state)
#undef KC_CUR
#define KC_CUR delete_topics_req
KC_DESC(delete_topics_req)
#undef KC_CUR
#define KC_CUR delete_topics_resp_deletable_topic_result
KC_DESC(delete_topics_resp_deletable_topic_result)
#undef KC_CUR
#define KC_CUR delete_topics_resp
KC_DESC(delete_topics_resp)
#undef KC_CUR
#define KC_CUR delete_records_req_delete_records_partition
KC_DESC(delete_records_req_delete_records_partition)
#undef KC_CUR
#define KC_CUR delete_records_req_delete_records_topic
KC_DESC(delete_records_req_delete_records_topic)
#undef KC_CUR
#define KC_CUR delete_records_req
KC_DESC(delete_records_req)
#undef KC_CUR
#define KC_CUR delete_records_resp_delete_records_partition_result
KC_DESC(delete_records_resp_delete_records_partition_result)
#undef KC_CUR
#define KC_CUR delete_records_resp_delete_records_topic_result
KC_DESC(delete_records_resp_delete_records_topic_result)
#undef KC_CUR
#define KC_CUR delete_records_resp
KC_DESC(delete_records_resp)
#undef KC_CUR
#define KC_CUR delete_groups_req
KC_DESC(delete_groups_req)
#undef KC_CUR
#define KC_CUR delete_groups_resp_deletable_group_result
KC_DESC(delete_groups_resp_deletable_group_result)
#undef KC_CUR
#define KC_CUR delete_groups_resp
KC_DESC(delete_groups_resp)
#undef KC_CUR
#define KC_CUR init_producer_id_req
KC_DESC(init_producer_id_req)
#undef KC_CUR
#define KC_CUR init_producer_id_resp
KC_DESC(init_producer_id_resp)
#undef KC_CUR
#define KC_CUR describe_producers_req_topic_request
KC_DESC(describe_producers_req_topic_request)
#undef KC_CUR
#define KC_CUR describe_producers_req
KC_DESC(describe_producers_req)
#undef KC_CUR
#define KC_CUR describe_producers_resp_producer_state
KC_DESC(describe_producers_resp_producer_state)
#undef KC_CUR
#define KC_CUR describe_producers_resp_partition_response
KC_DESC(describe_producers_resp_partition_response)
#undef KC_CUR
#define KC_CUR describe_producers_resp_topic_response
KC_DESC(describe_producers_resp_topic_response)
#undef KC_CUR
#define KC_CUR describe_producers_resp
KC_DESC(describe_producers_resp)
#undef KC_CUR
#define KC_CUR add_partitions_to_txn_req_topic
KC_DESC(add_partitions_to_txn_req_topic)
#undef KC_CUR
#define KC_CUR add_partitions_to_txn_req
KC_DESC(add_partitions_to_txn_req)
#undef KC_CUR
#define KC_CUR add_partitions_to_txn_resp_partition_result
KC_DESC(add_partitions_to_txn_resp_partition_result)
#undef KC_CUR
#define KC_CUR add_partitions_to_txn_resp_topic_result
KC_DESC(add_partitions_to_txn_resp_topic_result)
#undef KC_CUR
#define KC_CUR add_partitions_to_txn_resp
KC_DESC(add_partitions_to_txn_resp)
#undef KC_CUR
#define KC_CUR add_offsets_to_txn_req
KC_DESC(add_offsets_to_txn_req)
#undef KC_CUR
#define KC_CUR add_offsets_to_txn_resp
KC_DESC(add_offsets_to_txn_resp)
#undef KC_CUR
#define KC_CUR end_txn_req
KC_DESC(end_txn_req)
#undef KC_CUR
#define KC_CUR end_txn_resp
KC_DESC(end_txn_resp)
#undef KC_CUR
#define KC_CUR txn_offset_commit_req_partition
KC_DESC(txn_offset_commit_req_partition)
#undef KC_CUR
#define KC_CUR txn_offset_commit_req_topic
KC_DESC(txn_offset_commit_req_topic)
#undef KC_CUR
#define KC_CUR txn_offset_commit_req
KC_DESC(txn_offset_commit_req)
#undef KC_CUR
#define KC_CUR txn_offset_commit_resp_partition
KC_DESC(txn_offset_commit_resp_partition)
#undef KC_CUR
#define KC_CUR txn_offset_commit_resp_topic
KC_DESC(txn_offset_commit_resp_topic)
#undef KC_CUR
#define KC_CUR txn_offset_commit_resp
KC_DESC(txn_offset_commit_resp)
#undef KC_CUR
#define KC_CUR describe_transactions_req
KC_DESC(describe_transactions_req)
#undef KC_CUR
#define KC_CUR describe_transactions_resp_topic_data
KC_DESC(describe_transactions_resp_topic_data)
#undef KC_CUR
#define KC_CUR describe_transactions_resp_transaction_state
KC_DESC(describe_transactions_resp_transaction_state)
#undef KC_CUR
#define KC_CUR describe_transactions_resp
KC_DESC(describe_transactions_resp)
#undef KC_CUR
#define KC_CUR list_transactions_req
KC_DESC(list_transactions_req)
#undef KC_CUR
#define KC_CUR list_transactions_resp_transaction_state
KC_DESC(list_transactions_resp_transaction_state)
#undef KC_CUR
#define KC_CUR list_transactions_resp
KC_DESC(list_transactions_resp)
#undef KC_CUR
#define KC_CUR offset_delete_req_offset_delete_request_partition
KC_DESC(offset_delete_req_offset_delete_request_partition)
#undef KC_CUR
#define KC_CUR offset_delete_req_offset_delete_request_topic
KC_DESC(offset_delete_req_offset_delete_request_topic)
#undef KC_CUR
#define KC_CUR offset_delete_req
KC_DESC(offset_delete_req)
#undef KC_CUR
#define KC_CUR offset_delete_resp_offset_delete_response_partition
KC_DESC(offset_delete_resp_offset_delete_response_partition)
#undef KC_CUR
#define KC_CUR offset_delete_resp_offset_delete_response_topic
KC_DESC(offset_delete_resp_offset_delete_response_topic)
#undef KC_CUR
#define KC_CUR offset_delete_resp
KC_DESC(offset_delete_resp)
#undef KC_CUR

const struct kc_api kc_apis[] = {
	{ 0,  "Produce",      0, 9,  9,  &kc_produce_req,      &kc_produce_resp },
	{ 1,  "Fetch",        0, 12, 12, &kc_fetch_req,        &kc_fetch_resp },
	{ 2,  "ListOffsets",  0, 7,  6,  &kc_list_offsets_req, &kc_list_offsets_resp },
	{ 3,  "Metadata",     0, 12, 9,  &kc_metadata_req,     &kc_metadata_resp },
	{ 8,  "OffsetCommit", 0, 8,  8,  &kc_offset_commit_req, &kc_offset_commit_resp },
	{ 9,  "OffsetFetch",  0, 8,  6,  &kc_offset_fetch_req, &kc_offset_fetch_resp },
	{ 10, "FindCoordinator", 0, 4, 3, &kc_find_coordinator_req, &kc_find_coordinator_resp },
	{ 11, "JoinGroup",    0, 9,  6,  &kc_join_group_req,   &kc_join_group_resp },
	{ 12, "Heartbeat",    0, 4,  4,  &kc_heartbeat_req,    &kc_heartbeat_resp },
	{ 13, "LeaveGroup",   0, 5,  4,  &kc_leave_group_req,  &kc_leave_group_resp },
	{ 14, "SyncGroup",    0, 5,  4,  &kc_sync_group_req,   &kc_sync_group_resp },
	{ 15, "DescribeGroups", 0, 5, 5, &kc_describe_groups_req, &kc_describe_groups_resp },
	{ 16, "ListGroups",   0, 4,  3,  &kc_list_groups_req,  &kc_list_groups_resp },
	{ 18, "ApiVersions",  0, 3,  3,  &kc_api_versions_req, &kc_api_versions_resp },
	{ 19, "CreateTopics", 0, 7,  5,  &kc_create_topics_req, &kc_create_topics_resp },
	{ 20, "DeleteTopics", 0, 6,  4,  &kc_delete_topics_req, &kc_delete_topics_resp },
	{ 21, "DeleteRecords", 0, 2, 2,  &kc_delete_records_req, &kc_delete_records_resp },
	{ 22, "InitProducerId", 0, 4, 2, &kc_init_producer_id_req, &kc_init_producer_id_resp },
	{ 24, "AddPartitionsToTxn", 0, 3, 3, &kc_add_partitions_to_txn_req, &kc_add_partitions_to_txn_resp },
	{ 25, "AddOffsetsToTxn", 0, 3, 3, &kc_add_offsets_to_txn_req, &kc_add_offsets_to_txn_resp },
	{ 26, "EndTxn",       0, 3,  3,  &kc_end_txn_req,      &kc_end_txn_resp },
	{ 28, "TxnOffsetCommit", 0, 3, 3, &kc_txn_offset_commit_req, &kc_txn_offset_commit_resp },
	{ 42, "DeleteGroups", 0, 2,  2,  &kc_delete_groups_req, &kc_delete_groups_resp },
	{ 47, "OffsetDelete", 0, 0,  KV_MAX, &kc_offset_delete_req, &kc_offset_delete_resp },
	{ 61, "DescribeProducers", 0, 0, 0, &kc_describe_producers_req, &kc_describe_producers_resp },
	{ 65, "DescribeTransactions", 0, 0, 0, &kc_describe_transactions_req, &kc_describe_transactions_resp },
	{ 66, "ListTransactions", 0, 1, 0, &kc_list_transactions_req, &kc_list_transactions_resp },
};
const size_t kc_napis = sizeof(kc_apis) / sizeof(kc_apis[0]);

const struct kc_api *kc_api_find(int16_t key)
{
	for (size_t i = 0; i < kc_napis; i++)
		if (kc_apis[i].key == key)
			return &kc_apis[i];
	return NULL;
}

const char *kc_api_name(int16_t key)
{
	const struct kc_api *a = kc_api_find(key);

	return a ? a->name : "Unknown";
}
