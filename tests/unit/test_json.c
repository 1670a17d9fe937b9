/*
 * test_json.c - the strict JSON reader: the EC2 credential document,
 * escapes (\uXXXX and surrogate pairs), every kind of value, nested values
 * skipped, and the refusals: malformed grammar, bad UTF-8, lone surrogates,
 * NUL, duplicate names, trailing bytes, and each cap.
 */
#include <stdlib.h>
#include "t.h"
#include "../../kernel/json.h"

static int parse(struct json_doc *d, const char *s)
{
	return json_parse(d, s, strlen(s), NULL);
}

/* The result of parsing s, freeing whatever it built. */
static int parse_err(const char *s)
{
	struct json_doc d;
	int err = parse(&d, s);

	if (err == 0)
		json_free(&d);
	return err;
}

static void test_credential_document(void)
{
	/* The shape AWS documents for iam/security-credentials/<role>. */
	const char *s =
		"{\n"
		"  \"Code\" : \"Success\",\n"
		"  \"LastUpdated\" : \"2012-04-26T16:39:16Z\",\n"
		"  \"Type\" : \"AWS-HMAC\",\n"
		"  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n"
		"  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n"
		"  \"Token\" : \"token\",\n"
		"  \"Expiration\" : \"2026-11-22T12:00:00Z\"\n"
		"}\n";
	struct json_doc d;

	T_EQ(parse(&d, s), 0);
	T_EQ(d.n, 7);
	T_STR_EQ(d.members[0].name, "Code");
	T_STR_EQ(json_get_string(&d, "Code"), "Success");
	T_STR_EQ(json_get_string(&d, "SecretAccessKey"), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	T_STR_EQ(json_get_string(&d, "Expiration"), "2026-11-22T12:00:00Z");
	T_EQ(json_get_string(&d, "Missing") == NULL, 1);
	T_EQ(json_get(&d, "code") == NULL, 1);	/* names are exact */
	json_free(&d);
	T_EQ(d.n, 0);
	T_EQ(d.strings == NULL, 1);
}

static void test_escapes(void)
{
	struct json_doc d;
	const struct json_member *m;

	T_EQ(parse(&d, "{\"a\":\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f\","
		       "\"u\":\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\","
		       "\"raw\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
		       "\"\\u006Eame\":\"\"}"), 0);
	T_STR_EQ(json_get_string(&d, "a"), "q\"b\\s/n\nt\tr\rb\bf\f");
	T_STR_EQ(json_get_string(&d, "u"), "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	T_STR_EQ(json_get_string(&d, "raw"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	m = json_get(&d, "name");
	T_CHECK(m != NULL);
	if (m) {
		T_EQ(m->kind, JSON_STRING);
		T_EQ(m->value_len, 0);
		T_STR_EQ(m->value, "");
	}
	json_free(&d);
}

static void test_kinds(void)
{
	struct json_doc d;
	const struct json_member *m;

	T_EQ(parse(&d, " {\"n\":-12.5e+3,\"z\":0,\"t\":true,\"f\":false,\"x\":null,"
		       "\"o\":{\"deep\":[1,{\"a\":[]},\"s\\u00e9\"]},\"a\":[ ]} "), 0);
	T_EQ(d.n, 7);
	m = json_get(&d, "n");
	T_CHECK(m && m->kind == JSON_NUMBER);
	if (m)
		T_STR_EQ(m->value, "-12.5e+3");
	m = json_get(&d, "z");
	T_CHECK(m && m->kind == JSON_NUMBER && strcmp(m->value, "0") == 0);
	T_EQ(json_get(&d, "t")->kind, JSON_TRUE);
	T_EQ(json_get(&d, "f")->kind, JSON_FALSE);
	T_EQ(json_get(&d, "x")->kind, JSON_NULL);
	m = json_get(&d, "o");
	T_CHECK(m && m->kind == JSON_OBJECT && m->value == NULL);
	T_EQ(json_get(&d, "a")->kind, JSON_ARRAY);
	T_EQ(json_get(&d, "deep") == NULL, 1);	/* nested names are not members */
	T_EQ(json_get_string(&d, "n") == NULL, 1);	/* not a string */
	json_free(&d);

	T_EQ(parse(&d, "{}"), 0);
	T_EQ(d.n, 0);
	json_free(&d);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"", " ", "[]", "\"s\"", "1", "null", "{", "{\"a\"", "{\"a\":", "{\"a\":\"x",
		"{\"a\":\"x\"", "{\"a\":\"x\",}", "{,}", "{\"a\" \"x\"}", "{\"a\":\"x\"}}",
		"{\"a\":\"x\"} x", "{'a':'x'}", "{a:1}", "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}",
		"{\"a\":.5}", "{\"a\":+1}", "{\"a\":1e}", "{\"a\":NaN}", "{\"a\":Infinity}",
		"{\"a\":tru}", "{\"a\":nul}", "{\"a\":True}", "{\"a\":[1,]}", "{\"a\":[1 2]}",
		"{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}",
		"{\"a\":\"\\ud83d\"}", "{\"a\":\"\\ud83dx\"}", "{\"a\":\"\\ud83d\\u0041\"}",
		"{\"a\":\"\\ude00\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"tab\there\"}",
		"{\"a\":\"nl\nhere\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}",
		"{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xff\"}",
		"\xef\xbb\xbf{}", "{\"a\":1,\"a\":2}", "{\"a\":\"x\" /* c */}", "{\"\\u0000\":1}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = parse_err(bad[i]);

		if (err != SL_E_PROTO)
			fprintf(stderr, "  input %zu: \"%s\" gave %d\n", i, bad[i], err);
		T_EQ(err, SL_E_PROTO);
	}
	/* A NUL inside the text, where strlen would not see it. */
	{
		struct json_doc d;

		T_EQ(json_parse(&d, "{\"a\":\"x\0y\"}", 11, NULL), SL_E_PROTO);
		T_EQ(d.err_off, 8);
		T_EQ(d.members == NULL, 1);
	}
}

static void test_caps(void)
{
	struct json_limits lim = { 64, 3, 3 };
	struct json_doc d;
	char big[200];

	T_EQ(json_parse(&d, "{\"a\":1,\"b\":2,\"c\":3}", 19, &lim), 0);
	json_free(&d);
	T_EQ(json_parse(&d, "{\"a\":1,\"b\":2,\"c\":3,\"d\":4}", 25, &lim), SL_E_TOOBIG);
	T_EQ(json_parse(&d, "{\"a\":[[1]]}", 11, &lim), 0);
	json_free(&d);
	T_EQ(json_parse(&d, "{\"a\":[[[1]]]}", 13, &lim), SL_E_TOOBIG);
	T_EQ(json_parse(&d, "{\"a\":{\"b\":{\"c\":{}}}}", 20, &lim), SL_E_TOOBIG);
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '}';
	T_EQ(json_parse(&d, big, sizeof(big), &lim), SL_E_TOOBIG);
	T_EQ(json_parse(&d, big, sizeof(big), NULL), 0);
	json_free(&d);

	/* The hard depth cap holds whatever the limits say. */
	{
		struct json_limits deep = { 1 << 20, 8, 1000 };
		char s[1024];
		size_t n = 0, i;

		n += (size_t)snprintf(s, sizeof(s), "{\"a\":");
		for (i = 0; i < 100; i++)
			s[n++] = '[';
		for (i = 0; i < 100; i++)
			s[n++] = ']';
		s[n++] = '}';
		T_EQ(json_parse(&d, s, n, &deep), SL_E_TOOBIG);
	}
}

int main(void)
{
	T_RUN(test_credential_document);
	T_RUN(test_escapes);
	T_RUN(test_kinds);
	T_RUN(test_malformed);
	T_RUN(test_caps);
	return t_done();
}
