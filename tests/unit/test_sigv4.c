/*
 * test_sigv4.c - the signer against AWS's published examples, a request
 * signed by botocore, the signing key cache, and every refusal.
 *
 * Sources of the expected values (inputs and outputs copied from them):
 *   [S3DOC] "Signature Calculations for the Authorization Header:
 *           Transferring Payload in a Single Chunk (AWS Signature Version 4)",
 *           Amazon S3 API Reference,
 *           https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 *           section "Examples: Signature Calculations" (GET Object, PUT Object,
 *           GET Bucket Lifecycle, Get Bucket (List Objects)).  The document
 *           writes Authorization with "," between parts; Sluice writes ", "
 *           as botocore and the test suite do (S3 accepts both), so those
 *           expected values differ from the page in that space only.
 *   [SUITE] AWS's generic "Signature Version 4 test suite"
 *           (aws-sig-v4-test-suite.zip from
 *           https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html):
 *           service "service", region us-east-1, 20150830T123600Z, the
 *           .req, .creq, .sts and .authz files of each named case.  That
 *           suite does not send x-amz-content-sha256, hence
 *           SIGV4_NO_CONTENT_HEADER.  Its path-normalising cases do not apply
 *           to S3, which signs paths as sent.
 *   [BOTO]  botocore 1.29.27 (Debian python3-botocore), see test_botocore.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "storage/sigv4.h"

#define T_STREQ(a, b) do { const char *t_sa_ = (a), *t_sb_ = (b); \
	if (!t_sa_ || !t_sb_ || strcmp(t_sa_, t_sb_) != 0) { t_failed_checks++; \
	fprintf(stderr, "  %s:%d: %s == %s:\n    got  '%s'\n    want '%s'\n", __FILE__, \
		__LINE__, #a, #b, t_sa_ ? t_sa_ : "(null)", t_sb_ ? t_sb_ : "(null)"); } } while (0)

/* [S3DOC] credentials */
#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T20130524 1369353600LL		/* 20130524T000000Z */
/* [SUITE] credentials */
#define SUITE_AK "AKIDEXAMPLE"
#define SUITE_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define T20150830 1440938160LL		/* 20150830T123600Z */

/* A NUL-terminated copy of a writer's bytes (freed by the caller). */
static char *wr_str(struct sl_wr *w)
{
	char *s = malloc(w->len + 1);

	if (s) {
		if (w->len)
			memcpy(s, w->p, w->len);
		s[w->len] = '\0';
	}
	wr_free(w);
	return s;
}

static char *creq_of(const struct sigv4_signer *s, const struct sigv4_request *r)
{
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(sigv4_canonical_request(s, r, &w), 0);
	return wr_str(&w);
}

static char *sts_of(const struct sigv4_signer *s, const struct sigv4_request *r)
{
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(sigv4_string_to_sign(s, r, &w), 0);
	return wr_str(&w);
}

/* Sign r and compare the canonical request (if want_creq), string to sign
 * (if want_sts) and Authorization value. */
static void check_sign(struct sigv4_signer *s, const struct sigv4_request *r,
		       const char *want_creq, const char *want_sts, const char *want_auth)
{
	struct sigv4_signed out;
	char *got;

	if (want_creq) {
		got = creq_of(s, r);
		T_STREQ(got, want_creq);
		free(got);
	}
	if (want_sts) {
		got = sts_of(s, r);
		T_STREQ(got, want_sts);
		free(got);
	}
	T_EQ(sigv4_sign(s, r, &out), 0);
	T_STREQ(out.authorization, want_auth);
}

static void s3_signer(struct sigv4_signer *s)
{
	T_EQ(sigv4_signer_init(s, S3_AK, S3_SK, NULL), 0);
}

/* The request shape shared by the [S3DOC] examples. */
static struct sigv4_request s3_req(const char *method, const char *path)
{
	struct sigv4_request r;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = path;
	r.payload_hash = SIGV4_EMPTY_SHA256;
	r.region = "us-east-1";
	r.service = "s3";
	r.now = T20130524;
	return r;
}

/* [S3DOC] Example: GET Object. */
static void test_s3doc_get_object(void)
{
	static const struct sigv4_kv h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Range", "bytes=0-9" },
	};
	struct sigv4_signer s;
	struct sigv4_request r = s3_req("GET", "/test.txt");
	struct sigv4_signed out;

	s3_signer(&s);
	r.headers = h;
	r.nheaders = 2;
	check_sign(&s, &r,
		   "GET\n/test.txt\n\n"
		   "host:examplebucket.s3.amazonaws.com\n"
		   "range:bytes=0-9\n"
		   "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
		   "x-amz-date:20130524T000000Z\n\n"
		   "host;range;x-amz-content-sha256;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
		   "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
		   "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		   "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		   "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	T_EQ(sigv4_sign(&s, &r, &out), 0);
	T_STREQ(out.amz_date, "20130524T000000Z");
	T_CHECK(out.security_token == NULL);
	sigv4_signer_free(&s);
}

/* [S3DOC] Example: PUT Object, "test$file.text" with a body. */
static void test_s3doc_put_object(void)
{
	static const struct sigv4_kv h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	};
	const char *body = "Welcome to Amazon S3.";
	char hash[SIGV4_HEX_LEN + 1];
	struct sigv4_signer s;
	struct sigv4_request r;
	struct sl_wr path;
	char *p;

	wr_init(&path, 0);
	T_EQ(sigv4_uri_encode(&path, "/test$file.text", 15, 1), 0);
	p = wr_str(&path);
	T_STREQ(p, "/test%24file.text");
	sigv4_payload_hash(body, strlen(body), hash);
	T_STREQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");

	s3_signer(&s);
	r = s3_req("PUT", p);
	r.headers = h;
	r.nheaders = 3;
	r.payload_hash = hash;
	check_sign(&s, &r,
		   "PUT\n/test%24file.text\n\n"
		   "date:Fri, 24 May 2013 00:00:00 GMT\n"
		   "host:examplebucket.s3.amazonaws.com\n"
		   "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
		   "x-amz-date:20130524T000000Z\n"
		   "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
		   "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
		   "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		   "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
		   "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
		   "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		   "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
		   "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	free(p);
	sigv4_signer_free(&s);
}

/* [S3DOC] Example: GET Bucket Lifecycle ("?lifecycle": a name without value). */
static void test_s3doc_get_lifecycle(void)
{
	static const struct sigv4_kv h[] = { { "Host", "examplebucket.s3.amazonaws.com" } };
	static const struct sigv4_kv q[] = { { "lifecycle", NULL } };
	struct sigv4_signer s;
	struct sigv4_request r = s3_req("GET", "/");

	s3_signer(&s);
	r.headers = h;
	r.nheaders = 1;
	r.query = q;
	r.nquery = 1;
	check_sign(&s, &r,
		   "GET\n/\nlifecycle=\n"
		   "host:examplebucket.s3.amazonaws.com\n"
		   "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
		   "x-amz-date:20130524T000000Z\n\n"
		   "host;x-amz-content-sha256;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
		   "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
		   "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		   "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		   "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	sigv4_signer_free(&s);
}

/* [S3DOC] Example: Get Bucket (List Objects), max-keys=2&prefix=J; the
 * parameters are given out of order to exercise the sort. */
static void test_s3doc_list_objects(void)
{
	static const struct sigv4_kv h[] = { { "Host", "examplebucket.s3.amazonaws.com" } };
	static const struct sigv4_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	struct sigv4_signer s;
	struct sigv4_request r = s3_req("GET", "/");

	s3_signer(&s);
	r.headers = h;
	r.nheaders = 1;
	r.query = q;
	r.nquery = 2;
	check_sign(&s, &r,
		   "GET\n/\nmax-keys=2&prefix=J\n"
		   "host:examplebucket.s3.amazonaws.com\n"
		   "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
		   "x-amz-date:20130524T000000Z\n\n"
		   "host;x-amz-content-sha256;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
		   "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
		   "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		   "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		   "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	sigv4_signer_free(&s);
}

/* ---- [SUITE] ---- */

#define SUITE_SCOPE "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

static void suite_case(const char *method, const char *path, const struct sigv4_kv *q, size_t nq,
		       const struct sigv4_kv *h, size_t nh, const char *token, const char *creq,
		       const char *sts, const char *authz)
{
	struct sigv4_signer s;
	struct sigv4_request r;

	T_EQ(sigv4_signer_init(&s, SUITE_AK, SUITE_SK, token), 0);
	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = path;
	r.query = q;
	r.nquery = nq;
	r.headers = h;
	r.nheaders = nh;
	r.payload_hash = SIGV4_EMPTY_SHA256;
	r.region = "us-east-1";
	r.service = "service";
	r.now = T20150830;
	r.flags = SIGV4_NO_CONTENT_HEADER;
	check_sign(&s, &r, creq, sts, authz);
	sigv4_signer_free(&s);
}

static const struct sigv4_kv suite_host[] = { { "Host", "example.amazonaws.com" } };

static void test_suite_get_vanilla(void)
{
	suite_case("GET", "/", NULL, 0, suite_host, 1, NULL,
		   "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
		   "host;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
		   "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_suite_get_vanilla_query_order_key_case(void)
{
	static const struct sigv4_kv q[] = { { "Param2", "value2" }, { "Param1", "value1" } };

	suite_case("GET", "/", q, 2, suite_host, 1, NULL,
		   "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
		   "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
		   "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

/* Same name twice: sorted by value. */
static void test_suite_get_vanilla_query_order_value(void)
{
	static const struct sigv4_kv q[] = { { "Param1", "value2" }, { "Param1", "value1" } };

	suite_case("GET", "/", q, 2, suite_host, 1, NULL,
		   "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\n"
		   "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   NULL,
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
		   "Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694");
}

#define UNRESERVED "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static void test_suite_get_vanilla_query_unreserved(void)
{
	static const struct sigv4_kv q[] = { { UNRESERVED, UNRESERVED } };

	suite_case("GET", "/", q, 1, suite_host, 1, NULL, NULL,
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
		   "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

/* A UTF-8 query name (U+1234) is percent-encoded byte by byte. */
static void test_suite_get_vanilla_utf8_query(void)
{
	static const struct sigv4_kv q[] = { { "\xE1\x88\xB4", "bar" } };

	suite_case("GET", "/", q, 1, suite_host, 1, NULL,
		   "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\n"
		   "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
		   "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

static void test_suite_get_unreserved(void)
{
	suite_case("GET", "/" UNRESERVED, NULL, 0, suite_host, 1, NULL,
		   "GET\n/" UNRESERVED "\n\nhost:example.amazonaws.com\n"
		   "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   NULL,
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
		   "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

/* A header given three times: one line, values joined in the order given. */
static void test_suite_get_header_key_duplicate(void)
{
	static const struct sigv4_kv h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "My-Header1", "value2" },
		{ "My-Header1", "value2" },
		{ "My-Header1", "value1" },
	};

	suite_case("GET", "/", NULL, 0, h, 4, NULL,
		   "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
		   "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
		   SUITE_SCOPE "SignedHeaders=host;my-header1;x-amz-date, "
		   "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

static void test_suite_get_header_value_order(void)
{
	static const struct sigv4_kv h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "My-Header1", "value4" },
		{ "My-Header1", "value1" },
		{ "My-Header1", "value3" },
		{ "My-Header1", "value2" },
	};

	suite_case("GET", "/", NULL, 0, h, 5, NULL, NULL, NULL,
		   SUITE_SCOPE "SignedHeaders=host;my-header1;x-amz-date, "
		   "Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01");
}

/* Values trimmed, inner runs of spaces made one; spaces around value1 and a
 * tab inside are added here to the suite's request, with the same result. */
static void test_suite_get_header_value_trim(void)
{
	static const struct sigv4_kv h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "My-Header1", "  value1 \t" },
		{ "My-Header2", "\"a   b \t c\"" },
	};

	suite_case("GET", "/", NULL, 0, h, 3, NULL,
		   "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\n"
		   "my-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n"
		   "host;my-header1;my-header2;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
		   SUITE_SCOPE "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
		   "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

static void test_suite_post_vanilla(void)
{
	suite_case("POST", "/", NULL, 0, suite_host, 1, NULL,
		   "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
		   "host;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
		   "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_suite_post_vanilla_query(void)
{
	static const struct sigv4_kv q[] = { { "Param1", "value1" } };

	suite_case("POST", "/", q, 1, suite_host, 1, NULL, NULL, NULL,
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
		   "Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11");
}

/* Header names are sorted whatever their case and order given. */
static void test_suite_post_header_key_sort(void)
{
	static const struct sigv4_kv h[] = {
		{ "My-Header1", "value1" },
		{ "Host", "example.amazonaws.com" },
	};

	suite_case("POST", "/", NULL, 0, h, 2, NULL, NULL,
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
		   SUITE_SCOPE "SignedHeaders=host;my-header1;x-amz-date, "
		   "Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c");
}

/* post-sts-header-before: session credentials, the token signed. */
static void test_suite_post_sts_header_before(void)
{
	static const char token[] =
		"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMic"
		"RXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKs"
		"burEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0"
		"iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
	char creq[1024];

	snprintf(creq, sizeof(creq),
		 "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
		 "x-amz-security-token:%s\n\nhost;x-amz-date;x-amz-security-token\n"
		 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", token);
	suite_case("POST", "/", NULL, 0, suite_host, 1, token, creq,
		   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		   "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
		   SUITE_SCOPE "SignedHeaders=host;x-amz-date;x-amz-security-token, "
		   "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

/*
 * [BOTO] A multipart part upload with session credentials, an encoded key and
 * an encoded query value, region eu-west-1.  The expected value was produced
 * once with Debian's python3-botocore 1.29.27 by
 *
 *   /usr/bin/python3 -c '
 *   from botocore.auth import S3SigV4Auth
 *   from botocore.awsrequest import AWSRequest
 *   from botocore.credentials import Credentials
 *   c = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
 *                   "FQoGZXIvYXdzEXAMPLE//////////sessiontoken+example/token==")
 *   r = AWSRequest(method="PUT", url="https://examplebucket.s3.eu-west-1.amazonaws.com"
 *                  "/sluice/data%20set/00000001%24x.obj",
 *                  params={"partNumber": "2", "uploadId": "abc/def+ghi"},
 *                  headers={"Content-Type": "application/octet-stream"},
 *                  data=b"Welcome to Amazon S3.")
 *   a = S3SigV4Auth(c, "s3", "eu-west-1")
 *   r.context["timestamp"] = "20240229T235959Z"   # what add_auth() takes from the clock
 *   a._modify_request_before_signing(r)
 *   a._inject_signature_to_request(r, a.signature(a.string_to_sign(r, a.canonical_request(r)), r))
 *   print(r.headers["Authorization"])'
 */
static void test_botocore_session_token(void)
{
	static const struct sigv4_kv h[] = {
		{ "Content-Type", "application/octet-stream" },
		{ "Host", "examplebucket.s3.eu-west-1.amazonaws.com" },
	};
	static const struct sigv4_kv q[] = { { "uploadId", "abc/def+ghi" }, { "partNumber", "2" } };
	const char *token = "FQoGZXIvYXdzEXAMPLE//////////sessiontoken+example/token==";
	const char *body = "Welcome to Amazon S3.";
	char hash[SIGV4_HEX_LEN + 1], *path, *query;
	struct sigv4_signer s;
	struct sigv4_request r;
	struct sigv4_signed out;
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(sigv4_uri_encode(&w, "/sluice/data set/00000001$x.obj", 31, 1), 0);
	path = wr_str(&w);
	T_STREQ(path, "/sluice/data%20set/00000001%24x.obj");
	wr_init(&w, 0);
	T_EQ(sigv4_canonical_query(q, 2, &w), 0);
	query = wr_str(&w);
	T_STREQ(query, "partNumber=2&uploadId=abc%2Fdef%2Bghi");
	sigv4_payload_hash(body, strlen(body), hash);

	T_EQ(sigv4_signer_init(&s, S3_AK, S3_SK, token), 0);
	memset(&r, 0, sizeof(r));
	r.method = "PUT";
	r.path = path;
	r.query = q;
	r.nquery = 2;
	r.headers = h;
	r.nheaders = 2;
	r.payload_hash = hash;
	r.region = "eu-west-1";
	r.service = "s3";
	r.now = 1709251199;	/* 20240229T235959Z */
	T_EQ(sigv4_sign(&s, &r, &out), 0);
	T_STREQ(out.authorization,
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240229/eu-west-1/s3/aws4_request, "
		"SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
		"Signature=e5b52c3a7a4fbdbb81ce5770158484c36833343411c24b37c6fa61fd4077d5ee");
	T_STREQ(out.amz_date, "20240229T235959Z");
	T_STREQ(out.security_token, token);
	/* botocore's string to sign for the same request. */
	{
		char *sts = sts_of(&s, &r);

		T_STREQ(sts, "AWS4-HMAC-SHA256\n20240229T235959Z\n20240229/eu-west-1/s3/aws4_request\n"
			     "9c472b7d30a6ebb7493a2286242e1b1ee24646ec7a9b6fc228fb59794fc35f09");
		free(sts);
	}
	sigv4_signer_free(&s);
	T_CHECK(s.session_token == NULL && s.secret_key == NULL);
	free(path);
	free(query);
}

/* The key is derived once per (day, region, service) and rederived on change. */
static void test_key_cache(void)
{
	static const struct sigv4_kv h[] = { { "Host", "examplebucket.s3.amazonaws.com" } };
	struct sigv4_signer s;
	struct sigv4_request r = s3_req("GET", "/");
	struct sigv4_signed a, b;

	s3_signer(&s);
	r.headers = h;
	r.nheaders = 1;
	T_EQ(sigv4_sign(&s, &r, &a), 0);
	T_EQ(s.key_derivations, 1);
	r.now = T20130524 + 86399;	/* same day */
	T_EQ(sigv4_sign(&s, &r, &b), 0);
	T_EQ(s.key_derivations, 1);
	r.now = T20130524;
	T_EQ(sigv4_sign(&s, &r, &b), 0);
	T_STREQ(a.authorization, b.authorization);	/* the cached key signs alike */
	r.now = T20130524 + 86400;	/* next day */
	T_EQ(sigv4_sign(&s, &r, &b), 0);
	T_EQ(s.key_derivations, 2);
	T_CHECK(strstr(b.authorization, "/20130525/us-east-1/s3/") != NULL);
	r.region = "eu-west-1";
	T_EQ(sigv4_sign(&s, &r, &b), 0);
	T_EQ(s.key_derivations, 3);
	/* Back to the first: derived again, and the same signature as at first. */
	r.region = "us-east-1";
	r.now = T20130524;
	T_EQ(sigv4_sign(&s, &r, &b), 0);
	T_EQ(s.key_derivations, 4);
	T_STREQ(a.authorization, b.authorization);
	sigv4_signer_free(&s);
}

/* UNSIGNED-PAYLOAD goes into both the header and the last line. */
static void test_unsigned_payload(void)
{
	static const struct sigv4_kv h[] = { { "Host", "b.s3.us-east-1.amazonaws.com" } };
	struct sigv4_signer s;
	struct sigv4_request r = s3_req("PUT", "/k");
	char *creq;

	s3_signer(&s);
	r.headers = h;
	r.nheaders = 1;
	r.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	creq = creq_of(&s, &r);
	T_STREQ(creq, "PUT\n/k\n\nhost:b.s3.us-east-1.amazonaws.com\n"
		      "x-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20130524T000000Z\n\n"
		      "host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD");
	free(creq);
	sigv4_signer_free(&s);
}

static void test_encoding(void)
{
	struct sl_wr w;
	char *got;

	wr_init(&w, 0);
	T_EQ(sigv4_uri_encode(&w, "a b/c~d$\xC3\xA9+=&%", 14, 1), 0);
	got = wr_str(&w);
	T_STREQ(got, "a%20b/c~d%24%C3%A9%2B%3D%26%25");
	free(got);
	wr_init(&w, 0);
	T_EQ(sigv4_uri_encode(&w, "a/b", 3, 0), 0);
	got = wr_str(&w);
	T_STREQ(got, "a%2Fb");
	free(got);
	{
		/* Sorted by encoded name: "%2A" (from '*') sorts before "A". */
		static const struct sigv4_kv q[] = { { "a", "" }, { "A", "x" }, { "*", "y" } };

		wr_init(&w, 0);
		T_EQ(sigv4_canonical_query(q, 3, &w), 0);
		got = wr_str(&w);
		T_STREQ(got, "%2A=y&A=x&a=");
		free(got);
	}
	wr_init(&w, 0);
	T_EQ(sigv4_canonical_query(NULL, 0, &w), 0);
	T_EQ(w.len, 0);
	wr_free(&w);
}

static void test_amz_date(void)
{
	char d[SIGV4_DATE_LEN + 1];

	T_EQ(sigv4_amz_date(0, d), 0);
	T_STREQ(d, "19700101T000000Z");
	T_EQ(sigv4_amz_date(1709251199, d), 0);
	T_STREQ(d, "20240229T235959Z");
	T_EQ(sigv4_amz_date(253402300799LL, d), 0);
	T_STREQ(d, "99991231T235959Z");
	T_EQ(sigv4_amz_date(253402300800LL, d), SL_E_INVALID);
	T_EQ(sigv4_amz_date(-1, d), SL_E_INVALID);
}

/* Sign r expecting err; on an error the output must be cleared. */
static void expect_refused(struct sigv4_signer *s, const struct sigv4_request *r, int err)
{
	struct sigv4_signed out;

	memset(&out, 'x', sizeof(out));
	T_EQ(sigv4_sign(s, r, &out), err);
	if (err)
		T_EQ(out.authorization[0], 0);
}

static void test_refusals(void)
{
	struct sigv4_kv h[SIGV4_MAX_HEADERS + 1];
	struct sigv4_kv q[SIGV4_MAX_PARAMS + 1];
	struct sigv4_signer s;
	struct sigv4_request r;
	size_t i;
	static const char *const bad_paths[] = {
		"", "test.txt", "/a b", "/a%2fb", "/a%2Fb", "/a%41", "/a%4", "/a%G0", "/a\nb", "/a?b",
	};
	static const char *const added[] = {
		"X-Amz-Date", "x-amz-content-sha256", "X-Amz-Security-Token", "Authorization",
	};

	s3_signer(&s);
	h[0].name = "Host";
	h[0].value = "examplebucket.s3.amazonaws.com";
	r = s3_req("GET", "/");
	r.headers = h;
	r.nheaders = 1;

	for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		r.path = bad_paths[i];
		expect_refused(&s, &r, SL_E_INVALID);
	}
	r.path = "/a%20b/%C3%A9";
	expect_refused(&s, &r, 0);
	r.path = "/";

	/* Headers the signer adds may not be passed. */
	for (i = 0; i < sizeof(added) / sizeof(added[0]); i++) {
		h[1].name = added[i];
		h[1].value = "x";
		r.nheaders = 2;
		expect_refused(&s, &r, SL_E_INVALID);
	}
	/* Control bytes in a value (header injection), bad names, no Host. */
	h[1].name = "x-amz-meta-a";
	h[1].value = "a\r\nx-evil: 1";
	expect_refused(&s, &r, SL_E_INVALID);
	h[1].value = "a\x01";
	expect_refused(&s, &r, SL_E_INVALID);
	h[1].value = "ok";
	h[1].name = "bad name";
	expect_refused(&s, &r, SL_E_INVALID);
	h[1].name = "";
	expect_refused(&s, &r, SL_E_INVALID);
	h[1].name = "bad:name";
	expect_refused(&s, &r, SL_E_INVALID);
	h[0].name = "Hostx";
	r.nheaders = 1;
	expect_refused(&s, &r, SL_E_INVALID);
	h[0].name = "Host";

	/* Caps. */
	for (i = 1; i <= SIGV4_MAX_HEADERS; i++) {
		h[i].name = "x-amz-meta-n";
		h[i].value = "v";
	}
	r.nheaders = SIGV4_MAX_HEADERS;
	expect_refused(&s, &r, 0);
	r.nheaders = SIGV4_MAX_HEADERS + 1;
	expect_refused(&s, &r, SL_E_TOOBIG);
	r.nheaders = 1;
	for (i = 0; i <= SIGV4_MAX_PARAMS; i++) {
		q[i].name = "p";
		q[i].value = "v";
	}
	r.query = q;
	r.nquery = SIGV4_MAX_PARAMS + 1;
	expect_refused(&s, &r, SL_E_TOOBIG);
	r.nquery = 1;
	q[0].name = "";
	expect_refused(&s, &r, SL_E_INVALID);
	r.nquery = 0;

	/* Payload hash, scope parts, method, time. */
	r.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
	expect_refused(&s, &r, SL_E_INVALID);
	r.payload_hash = "e3b0";
	expect_refused(&s, &r, SL_E_INVALID);
	r.payload_hash = SIGV4_EMPTY_SHA256 "0";
	expect_refused(&s, &r, SL_E_INVALID);
	r.payload_hash = SIGV4_EMPTY_SHA256;
	r.region = "us-east-1/x";
	expect_refused(&s, &r, SL_E_INVALID);
	r.region = "";
	expect_refused(&s, &r, SL_E_INVALID);
	r.region = "us-east-1";
	r.service = "S3";
	expect_refused(&s, &r, SL_E_INVALID);
	r.service = "s3";
	r.method = "GET /";
	expect_refused(&s, &r, SL_E_INVALID);
	r.method = "GET";
	r.now = -5;
	expect_refused(&s, &r, SL_E_INVALID);
	r.now = T20130524;
	expect_refused(&s, &r, 0);
	sigv4_signer_free(&s);

	/* Credentials that would break the Authorization value or the headers. */
	T_EQ(sigv4_signer_init(&s, "AKIA/EXAMPLE", S3_SK, NULL), SL_E_INVALID);
	T_EQ(sigv4_signer_init(&s, "AKIA EXAMPLE", S3_SK, NULL), SL_E_INVALID);
	T_EQ(sigv4_signer_init(&s, "", S3_SK, NULL), SL_E_INVALID);
	T_EQ(sigv4_signer_init(&s, S3_AK, "", NULL), SL_E_INVALID);
	T_EQ(sigv4_signer_init(&s, S3_AK, S3_SK, "tok\r\nen"), SL_E_INVALID);
	T_EQ(sigv4_signer_init(&s, S3_AK, S3_SK, ""), 0);	/* "" = no token */
	T_CHECK(s.session_token == NULL);
	sigv4_signer_free(&s);
	/* A freed signer refuses to sign. */
	r = s3_req("GET", "/");
	r.headers = h;
	r.nheaders = 1;
	expect_refused(&s, &r, SL_E_INVALID);
}

int main(void)
{
	T_RUN(test_s3doc_get_object);
	T_RUN(test_s3doc_put_object);
	T_RUN(test_s3doc_get_lifecycle);
	T_RUN(test_s3doc_list_objects);
	T_RUN(test_suite_get_vanilla);
	T_RUN(test_suite_get_vanilla_query_order_key_case);
	T_RUN(test_suite_get_vanilla_query_order_value);
	T_RUN(test_suite_get_vanilla_query_unreserved);
	T_RUN(test_suite_get_vanilla_utf8_query);
	T_RUN(test_suite_get_unreserved);
	T_RUN(test_suite_get_header_key_duplicate);
	T_RUN(test_suite_get_header_value_order);
	T_RUN(test_suite_get_header_value_trim);
	T_RUN(test_suite_post_vanilla);
	T_RUN(test_suite_post_vanilla_query);
	T_RUN(test_suite_post_header_key_sort);
	T_RUN(test_suite_post_sts_header_before);
	T_RUN(test_botocore_session_token);
	T_RUN(test_key_cache);
	T_RUN(test_unsigned_payload);
	T_RUN(test_encoding);
	T_RUN(test_amz_date);
	T_RUN(test_refusals);
	return t_done();
}
