/*
 * test_s3xml.c - the XML reader and S3's documents: response bodies from the
 * Amazon S3 API Reference examples, escaping both ways, the pagination
 * fields, malformed input and the caps.
 *
 * Bodies marked [API ...] are the examples of that page of the Amazon S3 API
 * Reference (https://docs.aws.amazon.com/AmazonS3/latest/API/), with the
 * "..." placeholders of the page left out.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "storage/s3xml.h"

#define T_STREQ(a, b) do { const char *t_sa_ = (a), *t_sb_ = (b); \
	if (!t_sa_ || !t_sb_ || strcmp(t_sa_, t_sb_) != 0) { t_failed_checks++; \
	fprintf(stderr, "  %s:%d: %s == %s:\n    got  '%s'\n    want '%s'\n", __FILE__, \
		__LINE__, #a, #b, t_sa_ ? t_sa_ : "(null)", t_sb_ ? t_sb_ : "(null)"); } } while (0)

#define LEN(s) (sizeof(s) - 1)

/* [API ListObjectsV2] Example 1: Listing keys. */
static const char list_ex1[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"    <Name>bucket</Name>\n"
	"    <Prefix/>\n"
	"    <KeyCount>205</KeyCount>\n"
	"    <MaxKeys>1000</MaxKeys>\n"
	"    <IsTruncated>false</IsTruncated>\n"
	"    <Contents>\n"
	"        <Key>my-image.jpg</Key>\n"
	"        <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
	"        <ETag>\"fba9dede5f27731c9771645a39863328\"</ETag>\n"
	"        <Size>434234</Size>\n"
	"        <StorageClass>STANDARD</StorageClass>\n"
	"    </Contents>\n"
	"</ListBucketResult>";

/* [API ListObjectsV2] Example 2: max-keys, prefix and start-after. */
static const char list_ex2[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"  <Name>quotes</Name>\n"
	"  <Prefix>E</Prefix>\n"
	"  <StartAfter>ExampleGuide.pdf</StartAfter>\n"
	"  <KeyCount>1</KeyCount>\n"
	"  <MaxKeys>3</MaxKeys>\n"
	"  <IsTruncated>false</IsTruncated>\n"
	"  <Contents>\n"
	"    <Key>ExampleObject.txt</Key>\n"
	"    <LastModified>2013-09-17T18:07:53.000Z</LastModified>\n"
	"    <ETag>\"599bab3ed2c697f1d26842727561fd94\"</ETag>\n"
	"    <Size>857</Size>\n"
	"    <StorageClass>REDUCED_REDUNDANCY</StorageClass>\n"
	"  </Contents>\n"
	"</ListBucketResult>\n";

/* [API ListObjectsV2] Example 3: prefix and delimiter. */
static const char list_ex3[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"  <Name>example-bucket</Name>\n"
	"  <Prefix>photos/2006/</Prefix>\n"
	"  <KeyCount>3</KeyCount>\n"
	"  <MaxKeys>1000</MaxKeys>\n"
	"  <Delimiter>/</Delimiter>\n"
	"  <IsTruncated>false</IsTruncated>\n"
	"  <Contents>\n"
	"    <Key>photos/2006/</Key>\n"
	"    <LastModified>2016-04-30T23:51:29.000Z</LastModified>\n"
	"    <ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag>\n"
	"    <Size>0</Size>\n"
	"    <StorageClass>STANDARD</StorageClass>\n"
	"  </Contents>\n"
	"\n"
	"  <CommonPrefixes>\n"
	"    <Prefix>photos/2006/February/</Prefix>\n"
	"  </CommonPrefixes>\n"
	"  <CommonPrefixes>\n"
	"    <Prefix>photos/2006/January/</Prefix>\n"
	"  </CommonPrefixes>\n"
	"</ListBucketResult>";

/* [API ListObjectsV2] Example 4: a truncated page and its continuation
 * token; the ETag escaped as S3 itself sends it. */
static const char list_ex4[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"  <Name>bucket</Name>\n"
	"  <Prefix></Prefix>\n"
	"  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\n"
	"  <KeyCount>1000</KeyCount>\n"
	"  <MaxKeys>1000</MaxKeys>\n"
	"  <IsTruncated>true</IsTruncated>\n"
	"  <Contents>\n"
	"    <Key>happyface.jpg</Key>\n"
	"    <LastModified>2014-11-21T19:40:05.000Z</LastModified>\n"
	"    <ETag>&quot;70ee1738b6b21e2c8a43f3a5ab0eee71&quot;</ETag>\n"
	"    <Size>11</Size>\n"
	"    <StorageClass>STANDARD</StorageClass>\n"
	"  </Contents>\n"
	"</ListBucketResult>";

/* [API ErrorResponses] REST error response. */
static const char error_nosuchkey[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<Error>\n"
	"  <Code>NoSuchKey</Code>\n"
	"  <Message>The resource you requested does not exist</Message>\n"
	"  <Resource>/mybucket/myfoto.jpg</Resource> \n"
	"  <RequestId>4442587FB7D0A2F9</RequestId>\n"
	"</Error>";

/* [API CompleteMultipartUpload] the error S3 can send with 200 OK. */
static const char error_internal[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"\n"
	"<Error>\n"
	"  <Code>InternalError</Code>\n"
	"  <Message>We encountered an internal error. Please try again.</Message>\n"
	"  <RequestId>656c76696e6727732072657175657374</RequestId>\n"
	"  <HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId>\n"
	"</Error>";

/* [API CreateMultipartUpload] */
static const char initiate_ex[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"  <Bucket>example-bucket</Bucket>\n"
	"  <Key>example-object</Key>\n"
	"  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
	"</InitiateMultipartUploadResult>";

/* [API CompleteMultipartUpload], after the whitespace S3 sends to keep the
 * connection alive while it works. */
static const char complete_ex[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"\n \n \n"
	"<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"  <Location>http://Example-Bucket.s3.Region.amazonaws.com/Example-Object</Location>\n"
	"  <Bucket>Example-Bucket</Bucket>\n"
	"  <Key>Example-Object</Key>\n"
	"  <ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>\n"
	"</CompleteMultipartUploadResult>";

/* [API DeleteObjects] Example 1 response. */
static const char delete_ex[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"  <Deleted>\n"
	"    <Key>sample1.txt</Key>\n"
	"  </Deleted>\n"
	"  <Error>\n"
	"    <Key>sample2.txt</Key>\n"
	"    <Code>AccessDenied</Code>\n"
	"    <Message>Access Denied</Message>\n"
	"  </Error>\n"
	"</DeleteResult>";

static void test_list_examples(void)
{
	struct s3xml_list l;

	T_EQ(s3xml_parse_list(list_ex1, LEN(list_ex1), NULL, &l), 0);
	T_EQ(l.nobjects, 1);
	T_EQ(l.nprefixes, 0);
	T_EQ(l.is_truncated, 0);
	T_CHECK(l.next_token == NULL);
	T_EQ(l.key_count, 205);
	if (l.nobjects == 1) {
		T_STREQ(l.objects[0].key, "my-image.jpg");
		T_EQ(l.objects[0].size, 434234);
		T_STREQ(l.objects[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
		T_EQ(l.objects[0].last_modified_ms, 1255369830000LL);
	}
	s3xml_list_free(&l);

	T_EQ(s3xml_parse_list(list_ex2, LEN(list_ex2), NULL, &l), 0);
	T_EQ(l.nobjects, 1);
	T_EQ(l.key_count, 1);
	if (l.nobjects == 1) {
		T_STREQ(l.objects[0].key, "ExampleObject.txt");
		T_EQ(l.objects[0].size, 857);
		T_EQ(l.objects[0].last_modified_ms, 1379441273000LL);
	}
	s3xml_list_free(&l);

	T_EQ(s3xml_parse_list(list_ex3, LEN(list_ex3), NULL, &l), 0);
	T_EQ(l.nobjects, 1);
	T_EQ(l.nprefixes, 2);
	T_EQ(l.key_count, 3);
	if (l.nobjects == 1 && l.nprefixes == 2) {
		T_STREQ(l.objects[0].key, "photos/2006/");
		T_EQ(l.objects[0].size, 0);
		T_EQ(l.objects[0].last_modified_ms, 1462060289000LL);
		T_STREQ(l.prefixes[0], "photos/2006/February/");
		T_STREQ(l.prefixes[1], "photos/2006/January/");
	}
	s3xml_list_free(&l);

	T_EQ(s3xml_parse_list(list_ex4, LEN(list_ex4), NULL, &l), 0);
	T_EQ(l.is_truncated, 1);
	T_STREQ(l.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	T_EQ(l.key_count, 1000);
	if (l.nobjects == 1) {
		T_STREQ(l.objects[0].etag, "\"70ee1738b6b21e2c8a43f3a5ab0eee71\"");
		T_EQ(l.objects[0].last_modified_ms, 1416598805000LL);
	}
	s3xml_list_free(&l);
	s3xml_list_free(&l);	/* twice is harmless */
}

static void test_error_examples(void)
{
	struct s3xml_error e;
	char *etag = (char *)"untouched";

	T_EQ(s3xml_parse_error(error_nosuchkey, LEN(error_nosuchkey), NULL, &e), 0);
	T_STREQ(e.code, "NoSuchKey");
	T_STREQ(e.message, "The resource you requested does not exist");
	T_STREQ(e.resource, "/mybucket/myfoto.jpg");
	T_STREQ(e.request_id, "4442587FB7D0A2F9");
	s3xml_error_free(&e);

	/* A 200 answer to CompleteMultipartUpload that is an error. */
	T_EQ(s3xml_parse_complete(error_internal, LEN(error_internal), NULL, &etag), SL_E_REMOTE);
	T_CHECK(etag == NULL);
	T_EQ(s3xml_parse_error(error_internal, LEN(error_internal), NULL, &e), 0);
	T_STREQ(e.code, "InternalError");
	T_STREQ(e.request_id, "656c76696e6727732072657175657374");
	T_CHECK(e.resource == NULL);
	s3xml_error_free(&e);

	/* Not an error document, or one without a code. */
	T_EQ(s3xml_parse_error(initiate_ex, LEN(initiate_ex), NULL, &e), SL_E_PROTO);
	T_CHECK(e.code == NULL);
	T_EQ(s3xml_parse_error("<Error><Message>m</Message></Error>", 35, NULL, &e), SL_E_PROTO);
	T_EQ(s3xml_parse_error("<Error><Code></Code></Error>", 28, NULL, &e), SL_E_PROTO);
}

static void test_multipart_examples(void)
{
	char *s = NULL;
	struct s3xml_list l;

	T_EQ(s3xml_parse_initiate(initiate_ex, LEN(initiate_ex), NULL, &s), 0);
	T_STREQ(s, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
	free(s);
	T_EQ(s3xml_parse_complete(complete_ex, LEN(complete_ex), NULL, &s), 0);
	T_STREQ(s, "\"3858f62230ac3c915f300c664312c11f-9\"");
	free(s);
	/* The wrong document for the call. */
	T_EQ(s3xml_parse_initiate(complete_ex, LEN(complete_ex), NULL, &s), SL_E_PROTO);
	T_CHECK(s == NULL);
	T_EQ(s3xml_parse_list(initiate_ex, LEN(initiate_ex), NULL, &l), SL_E_PROTO);
	T_EQ(s3xml_parse_initiate("<InitiateMultipartUploadResult><UploadId/>"
				  "</InitiateMultipartUploadResult>", 74, NULL, &s), SL_E_PROTO);
	T_EQ(s3xml_parse_list(error_nosuchkey, LEN(error_nosuchkey), NULL, &l), SL_E_REMOTE);
}

static void test_delete_example(void)
{
	struct s3xml_delete_result d;

	T_EQ(s3xml_parse_delete(delete_ex, LEN(delete_ex), NULL, &d), 0);
	T_EQ(d.ndeleted, 1);
	T_EQ(d.nerrors, 1);
	if (d.ndeleted == 1 && d.nerrors == 1) {
		T_STREQ(d.deleted[0], "sample1.txt");
		T_STREQ(d.errors[0].key, "sample2.txt");
		T_STREQ(d.errors[0].code, "AccessDenied");
		T_STREQ(d.errors[0].message, "Access Denied");
	}
	s3xml_delete_result_free(&d);
	/* Quiet and all deleted: an empty result. */
	T_EQ(s3xml_parse_delete("<DeleteResult/>", 15, NULL, &d), 0);
	T_EQ(d.ndeleted + d.nerrors, 0);
	s3xml_delete_result_free(&d);
	T_EQ(s3xml_parse_delete("<DeleteResult><Error><Key>k</Key></Error></DeleteResult>", 56, NULL,
				&d), SL_E_PROTO);
}

/* Parse a list body expecting err. */
static void list_expect(const char *body, int err)
{
	struct s3xml_list l;
	int got = s3xml_parse_list(body, strlen(body), NULL, &l);

	if (got != err)
		fprintf(stderr, "  body: %s\n", body);
	T_EQ(got, err);
	if (got == 0)
		s3xml_list_free(&l);
	else
		T_CHECK(l.objects == NULL && l.mem_ == NULL);
}

#define LBR(x) "<ListBucketResult>" x "</ListBucketResult>"

static void test_list_fields(void)
{
	struct s3xml_list l;
	static const char big[] = LBR("<IsTruncated>false</IsTruncated><Contents><Key>k</Key>"
				      "<Size>18446744073709551615</Size></Contents>");

	T_EQ(s3xml_parse_list(big, LEN(big), NULL, &l), 0);
	if (l.nobjects == 1) {
		T_CHECK(l.objects[0].size == UINT64_MAX);
		T_CHECK(l.objects[0].etag == NULL);
		T_EQ(l.objects[0].last_modified_ms, -1);
	}
	T_EQ(l.key_count, -1);
	s3xml_list_free(&l);

	list_expect(LBR("<IsTruncated>false</IsTruncated>"), 0);
	/* Pagination: a truncated page must say where to go on. */
	list_expect(LBR("<IsTruncated>true</IsTruncated>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>true</IsTruncated><NextContinuationToken/>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>true</IsTruncated><NextContinuationToken>t"
			"</NextContinuationToken>"), 0);
	list_expect(LBR(""), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>yes</IsTruncated>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated> false</IsTruncated>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><IsTruncated>false</IsTruncated>"),
		    SL_E_PROTO);
	list_expect(LBR("<IsTruncated><b>false</b></IsTruncated>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><KeyCount>x</KeyCount>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><KeyCount>-1</KeyCount>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><EncodingType>url</EncodingType>"),
		    SL_E_PROTO);
	/* Contents: Key and Size required and well-formed. */
	list_expect(LBR("<IsTruncated>false</IsTruncated><Contents><Size>1</Size></Contents>"),
		    SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><Contents><Key>k</Key></Contents>"),
		    SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><Contents><Key>k</Key>"
			"<Size>18446744073709551616</Size></Contents>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><Contents><Key>k</Key>"
			"<Size>+1</Size></Contents>"), SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>1</Size>"
			"<LastModified>2009-02-29T00:00:00.000Z</LastModified></Contents>"),
		    SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>1</Size>"
			"<LastModified>2009-10-12T17:50:30.Z</LastModified></Contents>"),
		    SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>1</Size>"
			"<LastModified>2009-10-12 17:50:30Z</LastModified></Contents>"),
		    SL_E_PROTO);
	list_expect(LBR("<IsTruncated>false</IsTruncated><CommonPrefixes></CommonPrefixes>"),
		    SL_E_PROTO);
	{
		/* Times: fractions of any length, leap days, no fraction. */
		static const char t[] = LBR(
			"<IsTruncated>false</IsTruncated>"
			"<Contents><Key>a</Key><Size>1</Size>"
			"<LastModified>2024-02-29T23:59:59.123456Z</LastModified></Contents>"
			"<Contents><Key>b</Key><Size>1</Size>"
			"<LastModified>1970-01-01T00:00:00Z</LastModified></Contents>");

		T_EQ(s3xml_parse_list(t, LEN(t), NULL, &l), 0);
		if (l.nobjects == 2) {
			T_EQ(l.objects[0].last_modified_ms, 1709251199123LL);
			T_EQ(l.objects[1].last_modified_ms, 0);
		}
		s3xml_list_free(&l);
	}
}

/* Text decoding: entities, character references, CDATA, comments, line ends. */
static void test_decoding(void)
{
	static const char body[] =
		"\xEF\xBB\xBF<?xml version='1.0'?>\r\n<!-- a comment -->\n"
		"<s3:ListBucketResult xmlns:s3='http://s3.amazonaws.com/doc/2006-03-01/' a=\"&lt;&#65;\">"
		"<s3:IsTruncated>false</s3:IsTruncated>"
		"<s3:Contents><s3:Key>a&amp;b&lt;c&gt;d&quot;e&apos;f&#65;&#x42;&#x1F600;\xC3\xA9"
		"<![CDATA[<&x>]]>g<!-- c -->h\r\ni\rj&#13;</s3:Key><s3:Size >1</s3:Size ></s3:Contents>"
		"</s3:ListBucketResult>\n<!-- trailing -->\n";
	struct s3xml_list l;

	T_EQ(s3xml_parse_list(body, LEN(body), NULL, &l), 0);
	if (l.nobjects == 1)
		T_STREQ(l.objects[0].key, "a&b<c>d\"e'fAB\xF0\x9F\x98\x80\xC3\xA9<&x>gh\ni\nj\r");
	s3xml_list_free(&l);
}

static void test_tree(void)
{
	static const char body[] = "<a>\n <b>one</b>\n <c/>\n <b>two</b>\n <d><e>x</e></d>\n</a>";
	struct s3xml_doc d;
	const struct s3xml_node *a, *n;

	T_EQ(s3xml_parse(body, LEN(body), NULL, &d), 0);
	T_EQ(d.nnodes, 6);
	a = &d.nodes[0];
	T_STREQ(a->name, "a");
	T_STREQ(a->text, "");
	T_EQ(a->depth, 1);
	n = s3xml_child(&d, a, NULL);
	T_STREQ(n ? n->name : NULL, "b");
	T_STREQ(n ? n->text : NULL, "one");
	n = s3xml_next(&d, n, "b");
	T_STREQ(n ? n->text : NULL, "two");
	T_CHECK(s3xml_next(&d, n, "b") == NULL);
	n = s3xml_child(&d, a, "c");
	T_CHECK(n && n->text[0] == '\0' && n->text_len == 0);
	n = s3xml_child(&d, s3xml_child(&d, a, "d"), "e");
	T_STREQ(n ? n->text : NULL, "x");
	T_EQ(n ? n->depth : 0, 3);
	T_CHECK(s3xml_child(&d, a, "z") == NULL);
	T_CHECK(s3xml_child(&d, NULL, "a") == NULL);
	s3xml_doc_free(&d);
	/* Text is kept as is (keys are data): no trimming of a leaf. */
	T_EQ(s3xml_parse("<a>  x  </a>", 12, NULL, &d), 0);
	T_STREQ(d.nodes[0].text, "  x  ");
	s3xml_doc_free(&d);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"",
		"   ",
		"text",
		"<a>",
		"<a></b>",
		"<a><b></a></b>",
		"<a></a><b></b>",
		"<a></a>x",
		"<a>x<b/></a>",
		"<a><b/>x</a>",
		"<a><b/><![CDATA[x]]></a>",
		"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
		"<a>&x;</a>",
		"<a>&amp</a>",
		"<a>&#0;</a>",
		"<a>&#1;</a>",
		"<a>&#xD800;</a>",
		"<a>&#x110000;</a>",
		"<a>&#99999999999999999999;</a>",
		"<a>&#;</a>",
		"<a>&#x;</a>",
		"<a>&#X41;</a>",
		"<a>\x01</a>",
		"<a>\xC0\xAF</a>",
		"<a>\xE0\x80\xAF</a>",
		"<a>\xF0\x80\x80\xAF</a>",
		"<a>\xED\xA0\x80</a>",
		"<a>\xE2\x82</a>",
		"<a>\xF5\x80\x80\x80</a>",
		"<a>\xEF\xBF\xBE</a>",
		"<a><?pi x?></a>",
		"<a><!ELEMENT a></a>",
		" <?xml version=\"1.0\"?><a/>",
		"<a/><?xml version=\"1.0\"?>",
		"<!-- a -- b --><a/>",
		"<!-- a",
		"<a><![CDATA[x</a>",
		"<a b></a>",
		"<a b=c></a>",
		"<a b=\"<\"></a>",
		"<a b=\"1\"c=\"2\"></a>",
		"<a b=\"&x;\"></a>",
		"<a b=\"1></a>",
		"<1a/>",
		"<a:/>",
		"< a/>",
		"<a/ >",
		"</a>",
		"<a></a >x",
		"<a\x01/>",
	};
	struct s3xml_doc d;
	size_t i, n;
	int err;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = strlen(bad[i]);
		err = s3xml_parse(bad[i], n, NULL, &d);
		if (err != SL_E_PROTO)
			fprintf(stderr, "  case %zu: %s\n", i, bad[i]);
		T_EQ(err, SL_E_PROTO);
		T_CHECK(d.nodes == NULL && d.strings == NULL);
	}
	/* A NUL byte is not an XML character. */
	T_EQ(s3xml_parse("<a>\0</a>", 8, NULL, &d), SL_E_PROTO);
	/* Well-formed neighbours of the above. */
	T_EQ(s3xml_parse("<a></a >", 8, NULL, &d), 0);
	s3xml_doc_free(&d);
	T_EQ(s3xml_parse("<a b = '1' c=\"2\" />", 19, NULL, &d), 0);
	s3xml_doc_free(&d);
	T_EQ(s3xml_parse("<?xml-stylesheet x?><a><!----></a>", 34, NULL, &d), 0);
	s3xml_doc_free(&d);
	T_EQ(s3xml_parse("<a>]]></a>", 10, NULL, &d), 0);
	s3xml_doc_free(&d);
}

/* Every strict prefix of a document is refused, none crashes. */
static void test_truncated(void)
{
	struct s3xml_list l;
	size_t n;
	int bad = 0;

	for (n = 0; n < LEN(list_ex3); n++) {
		char *copy = malloc(n ? n : 1);	/* exact size, so ASan sees overreads */

		memcpy(copy, list_ex3, n);
		if (s3xml_parse_list(copy, n, NULL, &l) == 0) {
			bad++;
			s3xml_list_free(&l);
		}
		free(copy);
	}
	T_EQ(bad, 0);
}

/* "<a><a>...</a></a>" nested depth times, into a fresh writer. */
static char *nested(unsigned depth, size_t *len)
{
	struct sl_wr w;
	unsigned i;

	wr_init(&w, 0);
	for (i = 0; i < depth; i++)
		wr_bytes(&w, "<a>", 3);
	for (i = 0; i < depth; i++)
		wr_bytes(&w, "</a>", 4);
	return (char *)wr_take(&w, len);
}

static void test_caps(void)
{
	struct s3xml_limits lim = s3xml_default_limits;
	struct s3xml_doc d;
	struct sl_wr w;
	size_t n, i;
	char *p;

	p = nested(S3XML_MAX_DEPTH, &n);
	T_EQ(s3xml_parse(p, n, NULL, &d), 0);
	s3xml_doc_free(&d);
	free(p);
	p = nested(S3XML_MAX_DEPTH + 1, &n);
	T_EQ(s3xml_parse(p, n, NULL, &d), SL_E_TOOBIG);
	free(p);
	/* A larger configured depth still stops at the hard cap. */
	lim.max_depth = 1000;
	p = nested(S3XML_DEPTH_HARD, &n);
	T_EQ(s3xml_parse(p, n, &lim, &d), 0);
	s3xml_doc_free(&d);
	free(p);
	p = nested(S3XML_DEPTH_HARD + 1, &n);
	T_EQ(s3xml_parse(p, n, &lim, &d), SL_E_TOOBIG);
	free(p);

	/* Elements. */
	lim = s3xml_default_limits;
	lim.max_elements = 10;
	wr_init(&w, 0);
	wr_bytes(&w, "<r>", 3);
	for (i = 0; i < 9; i++)
		wr_bytes(&w, "<b/>", 4);
	wr_bytes(&w, "</r>", 4);
	T_EQ(s3xml_parse(w.p, w.len, &lim, &d), 0);
	s3xml_doc_free(&d);
	w.len -= 4;
	wr_bytes(&w, "<b/></r>", 8);
	T_EQ(s3xml_parse(w.p, w.len, &lim, &d), SL_E_TOOBIG);
	wr_free(&w);

	/* Bytes: checked before anything is read. */
	lim = s3xml_default_limits;
	lim.max_bytes = 7;
	T_EQ(s3xml_parse("<a></a>", 7, &lim, &d), 0);
	s3xml_doc_free(&d);
	T_EQ(s3xml_parse("<a></a> ", 8, &lim, &d), SL_E_TOOBIG);
	{
		struct s3xml_list l;

		T_EQ(s3xml_parse_list(list_ex1, LEN(list_ex1), &lim, &l), SL_E_TOOBIG);
	}

	/* Names. */
	wr_init(&w, 0);
	wr_u8(&w, '<');
	for (i = 0; i < 257; i++)
		wr_u8(&w, 'n');
	wr_bytes(&w, "/>", 2);
	T_EQ(s3xml_parse(w.p, w.len, NULL, &d), SL_E_TOOBIG);
	w.len = 1 + 256;
	wr_bytes(&w, "/>", 2);
	T_EQ(s3xml_parse(w.p, w.len, NULL, &d), 0);
	s3xml_doc_free(&d);
	wr_free(&w);
}

static char *take_str(struct sl_wr *w)
{
	size_t n;
	char *p;

	wr_u8(w, '\0');
	p = (char *)wr_take(w, &n);
	return p;
}

static void test_write_complete(void)
{
	/* [API CompleteMultipartUpload] the parts of the example request. */
	static const struct s3xml_part parts[] = {
		{ 1, "\"a54357aff0632cce46d942af68356b38\"" },
		{ 2, "\"0c78aef83f66abc1fa1e8477f296d394\"" },
		{ 3, "\"acbd18db4cc2f85cedef654fccc4a4d8\"" },
	};
	struct s3xml_part bad[2];
	struct s3xml_doc d;
	const struct s3xml_node *part;
	struct sl_wr w;
	char *s;

	wr_init(&w, 0);
	T_EQ(s3xml_write_complete(&w, parts, 3), 0);
	s = take_str(&w);
	T_STREQ(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		   "<Part><PartNumber>1</PartNumber>"
		   "<ETag>&quot;a54357aff0632cce46d942af68356b38&quot;</ETag></Part>"
		   "<Part><PartNumber>2</PartNumber>"
		   "<ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag></Part>"
		   "<Part><PartNumber>3</PartNumber>"
		   "<ETag>&quot;acbd18db4cc2f85cedef654fccc4a4d8&quot;</ETag></Part>"
		   "</CompleteMultipartUpload>");
	/* It reads back as written. */
	T_EQ(s3xml_parse(s, strlen(s), NULL, &d), 0);
	part = s3xml_child(&d, &d.nodes[0], "Part");
	part = s3xml_next(&d, part, "Part");
	T_STREQ(part ? s3xml_child(&d, part, "ETag")->text : NULL,
		"\"0c78aef83f66abc1fa1e8477f296d394\"");
	s3xml_doc_free(&d);
	free(s);

	wr_init(&w, 0);
	T_EQ(s3xml_write_complete(&w, parts, 0), SL_E_INVALID);
	bad[0] = parts[1];
	bad[1] = parts[0];
	T_EQ(s3xml_write_complete(&w, bad, 2), SL_E_INVALID);	/* out of order */
	bad[1] = parts[1];
	T_EQ(s3xml_write_complete(&w, bad, 2), SL_E_INVALID);	/* repeated */
	bad[0].number = 0;
	T_EQ(s3xml_write_complete(&w, bad, 1), SL_E_INVALID);
	bad[0].number = S3XML_MAX_PARTS + 1;
	T_EQ(s3xml_write_complete(&w, bad, 1), SL_E_INVALID);
	bad[0].number = S3XML_MAX_PARTS;
	T_EQ(s3xml_write_complete(&w, bad, 1), 0);
	bad[0].etag = "";
	T_EQ(s3xml_write_complete(&w, bad, 1), SL_E_INVALID);
	bad[0].etag = NULL;
	T_EQ(s3xml_write_complete(&w, bad, 1), SL_E_INVALID);
	wr_free(&w);
}

static void test_write_delete(void)
{
	static const char *const keys[] = {
		"sluice/data/00000001.obj",
		"a&b<c>\"d'e\tf\ng\rh \xC3\xA9",
	};
	const char *bad[2];
	const char **many;
	struct s3xml_doc d;
	const struct s3xml_node *o;
	char big[S3XML_KEY_MAX + 2];
	struct sl_wr w;
	char *s;
	size_t i;

	wr_init(&w, 0);
	T_EQ(s3xml_write_delete(&w, keys, 2, 1), 0);
	s = take_str(&w);
	T_STREQ(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
		   "<Object><Key>sluice/data/00000001.obj</Key></Object>"
		   "<Object><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#9;f&#10;g&#13;h \xC3\xA9</Key>"
		   "</Object></Delete>");
	/* Every byte of the key survives a round trip through the reader. */
	T_EQ(s3xml_parse(s, strlen(s), NULL, &d), 0);
	o = s3xml_next(&d, s3xml_child(&d, &d.nodes[0], "Object"), "Object");
	T_STREQ(o ? s3xml_child(&d, o, "Key")->text : NULL, keys[1]);
	s3xml_doc_free(&d);
	free(s);

	wr_init(&w, 0);
	T_EQ(s3xml_write_delete(&w, keys, 1, 0), 0);
	s = take_str(&w);
	T_CHECK(strstr(s, "Quiet") == NULL);
	free(s);

	wr_init(&w, 0);
	T_EQ(s3xml_write_delete(&w, keys, 0, 0), SL_E_INVALID);
	bad[0] = "";
	T_EQ(s3xml_write_delete(&w, bad, 1, 0), SL_E_INVALID);
	bad[0] = "a\x01";
	T_EQ(s3xml_write_delete(&w, bad, 1, 0), SL_E_INVALID);
	bad[0] = "a\xC3";
	T_EQ(s3xml_write_delete(&w, bad, 1, 0), SL_E_INVALID);
	bad[0] = "ok";
	bad[1] = NULL;
	T_EQ(s3xml_write_delete(&w, bad, 2, 0), SL_E_INVALID);
	memset(big, 'k', sizeof(big));
	big[S3XML_KEY_MAX] = '\0';
	bad[0] = big;
	T_EQ(s3xml_write_delete(&w, bad, 1, 0), 0);
	big[S3XML_KEY_MAX] = 'k';
	big[S3XML_KEY_MAX + 1] = '\0';
	T_EQ(s3xml_write_delete(&w, bad, 1, 0), SL_E_INVALID);
	wr_free(&w);

	many = calloc(S3XML_MAX_DELETE + 1, sizeof(*many));
	for (i = 0; i <= S3XML_MAX_DELETE; i++)
		many[i] = "k";
	wr_init(&w, 0);
	T_EQ(s3xml_write_delete(&w, many, S3XML_MAX_DELETE, 1), 0);
	wr_free(&w);
	wr_init(&w, 0);
	T_EQ(s3xml_write_delete(&w, many, S3XML_MAX_DELETE + 1, 1), SL_E_INVALID);
	T_EQ(w.len, 0);
	wr_free(&w);
	free(many);
}

int main(void)
{
	T_RUN(test_list_examples);
	T_RUN(test_error_examples);
	T_RUN(test_multipart_examples);
	T_RUN(test_delete_example);
	T_RUN(test_list_fields);
	T_RUN(test_decoding);
	T_RUN(test_tree);
	T_RUN(test_malformed);
	T_RUN(test_truncated);
	T_RUN(test_caps);
	T_RUN(test_write_complete);
	T_RUN(test_write_delete);
	return t_done();
}
