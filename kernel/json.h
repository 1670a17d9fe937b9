/*
 * json.h - a strict, bounded reader for small JSON documents whose top level
 * is one object of named values: the EC2 metadata service's credential
 * document ({"Code": "Success", "AccessKeyId": "...", ...}) and the like.
 *
 * Bytes in, a list of members out; no I/O.  What is accepted is RFC 8259,
 * read strictly:
 *   - the document is one object, with optional whitespace (space, tab, LF,
 *     CR) around tokens and nothing after it; no BOM, no comments, no
 *     trailing commas, no single quotes, no NaN or Infinity;
 *   - strings are UTF-8, checked byte by byte (overlong forms, encoded
 *     surrogates and values past U+10FFFF refused); control characters
 *     below U+0020 must be escaped; escapes are \" \\ \/ \b \f \n \r \t and
 *     \uXXXX, with a surrogate pair decoded to one character and a lone
 *     surrogate refused; a string holding U+0000 (escaped or not) is
 *     refused, so every decoded string is a C string;
 *   - numbers follow the grammar exactly (no leading zeros, no '+', no bare
 *     '.'); their text is kept, not converted;
 *   - true, false, null;
 *   - a member's value may be an object or an array: it is read and checked
 *     like the rest (nesting counts against max_depth) and its contents are
 *     dropped: the member is listed with its kind only;
 *   - a name appearing twice in the top-level object is refused (which one
 *     would count is exactly what an attacker would like to choose).
 *
 * Caps (struct json_limits), checked before the memory they bound grows:
 * the document's bytes, the top-level members, and nesting depth (the top
 * object is depth 1; at most JSON_DEPTH_HARD).
 *
 * Errors: SL_E_PROTO for anything malformed, including a document cut short
 * (doc->err_off then says at which byte reading stopped); SL_E_TOOBIG past a
 * cap; SL_E_NOMEM.
 *
 * Ownership: json_parse() fills a caller-provided struct json_doc whose
 * strings and array it owns; json_free() wipes the decoded strings (they may
 * be secrets) and releases them.  Pointers into a doc are valid until then.
 */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

enum json_kind { JSON_STRING, JSON_NUMBER, JSON_TRUE, JSON_FALSE, JSON_NULL, JSON_OBJECT, JSON_ARRAY };

struct json_member {
	const char *name;	/* decoded, NUL-terminated UTF-8 */
	enum json_kind kind;
	const char *value;	/* JSON_STRING: the decoded string; JSON_NUMBER: its text; else NULL */
	size_t value_len;	/* bytes of value */
};

struct json_limits {
	size_t max_bytes;	/* the whole document */
	size_t max_members;	/* of the top-level object */
	unsigned max_depth;	/* nesting, top object = 1; at most JSON_DEPTH_HARD */
};

#define JSON_DEPTH_HARD		32
/* Defaults: a credential document is well under 4 KiB with 7 members. */
#define JSON_MAX_BYTES		(64u << 10)
#define JSON_MAX_MEMBERS	64
#define JSON_MAX_DEPTH		8
extern const struct json_limits json_default_limits;

struct json_doc {
	struct json_member *members;	/* in document order */
	size_t n;
	size_t err_off;			/* after a failed parse: the byte where it stopped */
	char *strings;			/* private: every decoded string */
	size_t strings_len;
};

/* Parse len bytes of text; lim NULL: json_default_limits.  On error doc holds nothing to free. */
SL_MUST_CHECK int json_parse(struct json_doc *doc, const void *text, size_t len,
			     const struct json_limits *lim);
void json_free(struct json_doc *doc);

/* The member named name (exact, byte for byte), or NULL. */
const struct json_member *json_get(const struct json_doc *doc, const char *name);
/* Its value when it is a string, else NULL (absent, or another kind). */
const char *json_get_string(const struct json_doc *doc, const char *name);

#endif
