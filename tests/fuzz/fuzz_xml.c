/*
 * fuzz_xml.c - libFuzzer target for the S3 XML reader and writers.
 *
 * Each input is parsed as a document with the default caps and with small
 * ones (so the fuzzer reaches the depth, element and size refusals), and
 * the tree of every accepted document is walked to check what s3xml.h
 * promises: names non-empty, text_len equal to the string's length (no NUL
 * inside), children one level below their parent, depth within the cap.
 * The same bytes go through every S3 document parser, whose results are
 * freed, so the sanitizers see every path.
 *
 * Then the input, cut at its first NUL, is used as an object key and an
 * ETag: whatever s3xml_write_delete and s3xml_write_complete accept must
 * parse back to exactly the same string, or the target traps.
 *
 * Seeds (tests/fuzz/corpus/fuzz_xml/) are the API Reference examples the
 * unit test uses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "storage/s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void check_tree(const struct s3xml_doc *doc, unsigned max_depth)
{
	size_t i;
	int32_t c;

	if (doc->nnodes == 0 || doc->nodes[0].depth != 1)
		__builtin_trap();
	for (i = 0; i < doc->nnodes; i++) {
		const struct s3xml_node *nd = &doc->nodes[i];

		if (!nd->name[0] || strlen(nd->text) != nd->text_len || nd->depth > max_depth)
			__builtin_trap();
		for (c = nd->first_child; c >= 0; c = doc->nodes[c].next_sibling) {
			if ((size_t)c <= i || (size_t)c >= doc->nnodes ||
			    doc->nodes[c].depth != nd->depth + 1 || nd->text_len != 0)
				__builtin_trap();
		}
	}
}

/* Write s as a key and an ETag; if accepted it must read back unchanged. */
static void roundtrip(const char *s)
{
	const char *keys[1] = { s };
	struct s3xml_part part = { 1, s };
	struct s3xml_doc doc;
	const struct s3xml_node *o, *k;
	struct sl_wr w;

	wr_init(&w, 0);
	if (s3xml_write_delete(&w, keys, 1, 1) == 0) {
		if (s3xml_parse(w.p, w.len, NULL, &doc) != 0)
			__builtin_trap();
		o = s3xml_child(&doc, &doc.nodes[0], "Object");
		k = s3xml_child(&doc, o, "Key");
		if (!k || strcmp(k->text, s) != 0)
			__builtin_trap();
		s3xml_doc_free(&doc);
	}
	wr_free(&w);

	wr_init(&w, 0);
	if (s3xml_write_complete(&w, &part, 1) == 0) {
		if (s3xml_parse(w.p, w.len, NULL, &doc) != 0)
			__builtin_trap();
		k = s3xml_child(&doc, s3xml_child(&doc, &doc.nodes[0], "Part"), "ETag");
		if (!k || strcmp(k->text, s) != 0)
			__builtin_trap();
		s3xml_doc_free(&doc);
	}
	wr_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const struct s3xml_limits small = { 4096, 6, 48 };
	struct s3xml_doc doc;
	struct s3xml_error e;
	struct s3xml_list l;
	struct s3xml_delete_result dr;
	char *s, *key;

	if (s3xml_parse(d, n, NULL, &doc) == 0) {
		check_tree(&doc, S3XML_MAX_DEPTH);
		s3xml_doc_free(&doc);
	}
	if (s3xml_parse(d, n, &small, &doc) == 0) {
		check_tree(&doc, small.max_depth);
		if (doc.nnodes > small.max_elements || n > small.max_bytes)
			__builtin_trap();
		s3xml_doc_free(&doc);
	}
	if (s3xml_parse_error(d, n, NULL, &e) == 0) {
		if (!e.code || !e.code[0])
			__builtin_trap();
		s3xml_error_free(&e);
	}
	if (s3xml_parse_list(d, n, NULL, &l) == 0) {
		if (l.is_truncated && !l.next_token)
			__builtin_trap();
		s3xml_list_free(&l);
	}
	if (s3xml_parse_initiate(d, n, NULL, &s) == 0)
		free(s);
	if (s3xml_parse_complete(d, n, NULL, &s) == 0)
		free(s);
	if (s3xml_parse_delete(d, n, NULL, &dr) == 0)
		s3xml_delete_result_free(&dr);

	key = malloc(n + 1);
	if (key) {
		memcpy(key, d, n);
		key[n] = '\0';
		roundtrip(key);
		free(key);
	}
	return 0;
}
