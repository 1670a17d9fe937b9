/*
 * fuzz_json.c - libFuzzer target for the strict JSON reader (kernel/json.h).
 *
 * Each input is parsed with the default caps and with small ones (so the
 * fuzzer reaches the member, depth and size refusals).  Every accepted
 * document is checked against what json.h promises: names and string
 * values are C strings of their stated length, numbers keep their text,
 * other kinds have no value, no name appears twice.  Then the members are
 * written back out as JSON (strings escaped, every non-ASCII byte kept raw)
 * and parsed again: the second reading must give exactly the same members,
 * or the target traps.
 *
 * Seeds (tests/fuzz/corpus/fuzz_json/) are the AWS credential document and
 * the unit test's escape and kind examples.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void check(const struct json_doc *doc, size_t max_members)
{
	size_t i, k;

	if (doc->n > max_members)
		__builtin_trap();
	for (i = 0; i < doc->n; i++) {
		const struct json_member *m = &doc->members[i];

		if (m->kind == JSON_STRING || m->kind == JSON_NUMBER) {
			if (!m->value || strlen(m->value) != m->value_len)
				__builtin_trap();
			if (m->kind == JSON_NUMBER && m->value_len == 0)
				__builtin_trap();
		} else if (m->value || m->value_len) {
			__builtin_trap();
		}
		for (k = 0; k < i; k++)
			if (strcmp(doc->members[k].name, m->name) == 0)
				__builtin_trap();
		if (json_get(doc, m->name) != m)
			__builtin_trap();
	}
}

static char *out;
static size_t out_len, out_cap;

static void emit(const char *s, size_t n)
{
	if (out_len + n + 1 > out_cap) {
		out_cap = (out_len + n + 1) * 2;
		out = realloc(out, out_cap);
		if (!out)
			__builtin_trap();
	}
	memcpy(out + out_len, s, n);
	out_len += n;
}

static void emit_string(const char *s)
{
	char esc[8];

	emit("\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c;
			emit(esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			emit(esc, 6);
		} else {
			emit(s, 1);
		}
	}
	emit("\"", 1);
}

static void roundtrip(const struct json_doc *doc)
{
	static const char *const word[] = { "", "", "true", "false", "null", "{}", "[]" };
	struct json_doc again;
	size_t i;

	out_len = 0;
	emit("{", 1);
	for (i = 0; i < doc->n; i++) {
		const struct json_member *m = &doc->members[i];

		if (i)
			emit(",", 1);
		emit_string(m->name);
		emit(":", 1);
		if (m->kind == JSON_STRING)
			emit_string(m->value);
		else if (m->kind == JSON_NUMBER)
			emit(m->value, m->value_len);
		else
			emit(word[m->kind], strlen(word[m->kind]));
	}
	emit("}", 1);
	if (json_parse(&again, out, out_len, NULL) != 0 || again.n != doc->n)
		__builtin_trap();
	for (i = 0; i < doc->n; i++) {
		const struct json_member *a = &doc->members[i], *b = &again.members[i];

		if (strcmp(a->name, b->name) != 0 || a->kind != b->kind ||
		    a->value_len != b->value_len ||
		    (a->value && memcmp(a->value, b->value, a->value_len) != 0))
			__builtin_trap();
	}
	json_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const struct json_limits small = { 256, 4, 3 };
	struct json_doc doc;

	if (json_parse(&doc, d, n, NULL) == 0) {
		check(&doc, JSON_MAX_MEMBERS);
		roundtrip(&doc);
		json_free(&doc);
	} else if (doc.members || doc.strings || doc.n || doc.err_off > n) {
		__builtin_trap();
	}
	if (json_parse(&doc, d, n, &small) == 0) {
		check(&doc, small.max_members);
		json_free(&doc);
	}
	return 0;
}
