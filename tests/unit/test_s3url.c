/*
 * test_s3url.c - sluice.objects.url: AWS (virtual-hosted and path-style),
 * custom endpoints, file URLs, every refusal with its message, and the
 * request paths of object keys.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "storage/s3url.h"

#define T_STREQ(a, b) do { const char *t_sa_ = (a), *t_sb_ = (b); \
	if (!t_sa_ || !t_sb_ || strcmp(t_sa_, t_sb_) != 0) { t_failed_checks++; \
	fprintf(stderr, "  %s:%d: %s == %s:\n    got  '%s'\n    want '%s'\n", __FILE__, \
		__LINE__, #a, #b, t_sa_ ? t_sa_ : "(null)", t_sb_ ? t_sb_ : "(null)"); } } while (0)

static char errbuf[256];

static int parse(const char *url, struct s3url *u)
{
	errbuf[0] = 'x';
	errbuf[1] = '\0';
	return s3url_parse(url, u, errbuf, sizeof(errbuf));
}

/* url must be refused with a message containing want. */
static void refused(const char *url, const char *want)
{
	struct s3url u;

	T_EQ(parse(url, &u), SL_E_CONFIG);
	if (!strstr(errbuf, want)) {
		fprintf(stderr, "  url  '%s'\n  got  '%s'\n  want '...%s...'\n", url, errbuf, want);
		T_CHECK(strstr(errbuf, want) != NULL);
	}
	T_EQ(u.kind, 0);
}

static char *path_of(const struct s3url *u, const char *key)
{
	struct sl_wr w;
	size_t n;

	wr_init(&w, 0);
	if (s3url_object_path(u, key, &w) != 0) {
		wr_free(&w);
		return NULL;
	}
	wr_u8(&w, '\0');
	return (char *)wr_take(&w, &n);
}

static void check_path(const struct s3url *u, const char *key, const char *want)
{
	char *p = path_of(u, key);

	T_STREQ(p, want);
	free(p);
}

static void test_aws_virtual(void)
{
	struct s3url u;

	T_EQ(parse("s3://my-bucket/sluice/prod?region=eu-west-1", &u), 0);
	T_EQ(u.kind, S3URL_S3);
	T_STREQ(u.bucket, "my-bucket");
	T_STREQ(u.prefix, "sluice/prod");
	T_STREQ(u.region, "eu-west-1");
	T_EQ(u.aws, 1);
	T_EQ(u.tls, 1);
	T_EQ(u.port, 443);
	T_EQ(u.path_style, 0);
	T_STREQ(u.host, "my-bucket.s3.eu-west-1.amazonaws.com");
	T_STREQ(u.host_header, "my-bucket.s3.eu-west-1.amazonaws.com");
	check_path(&u, "data/00000001.obj", "/sluice/prod/data/00000001.obj");
	check_path(&u, "a b$c+d=é~", "/sluice/prod/a%20b%24c%2Bd%3D%C3%A9~");

	T_EQ(parse("s3://my-bucket?region=us-east-1", &u), 0);
	T_STREQ(u.prefix, "");
	check_path(&u, "k", "/k");
	T_EQ(parse("s3://cn-bucket/?region=cn-north-1", &u), 0);
	T_STREQ(u.host, "cn-bucket.s3.cn-north-1.amazonaws.com.cn");
	T_STREQ(u.prefix, "");
}

static void test_aws_path_style(void)
{
	struct s3url u;
	struct sl_wr w;

	T_EQ(parse("s3://my.dotted.bucket//a/b//?path_style=true&region=us-west-2", &u), 0);
	T_EQ(u.path_style, 1);
	T_STREQ(u.host, "s3.us-west-2.amazonaws.com");
	T_STREQ(u.prefix, "a/b");
	check_path(&u, "x/y", "/my.dotted.bucket/a/b/x/y");
	wr_init(&w, 0);
	T_EQ(s3url_bucket_path(&u, &w), 0);
	T_CHECK(w.len == 17 && memcmp(w.p, "/my.dotted.bucket", 17) == 0);
	wr_free(&w);
	/* Dots cannot be virtual-hosted over TLS. */
	refused("s3://my.dotted.bucket?region=us-west-2", "add path_style=true");
}

static void test_endpoint(void)
{
	struct s3url u;
	struct sl_wr w;

	T_EQ(parse("s3://bucket/pre?endpoint=https://minio.internal:9000", &u), 0);
	T_EQ(u.aws, 0);
	T_EQ(u.tls, 1);
	T_EQ(u.port, 9000);
	T_EQ(u.path_style, 1);
	T_STREQ(u.region, "us-east-1");
	T_STREQ(u.host, "minio.internal");
	T_STREQ(u.host_header, "minio.internal:9000");
	check_path(&u, "k", "/bucket/pre/k");
	wr_init(&w, 0);
	T_EQ(s3url_bucket_path(&u, &w), 0);
	T_CHECK(w.len == 7 && memcmp(w.p, "/bucket", 7) == 0);
	wr_free(&w);

	T_EQ(parse("s3://bucket?endpoint=http://127.0.0.1:4568/&region=local-1", &u), 0);
	T_EQ(u.tls, 0);
	T_EQ(u.port, 4568);
	T_STREQ(u.host, "127.0.0.1");
	T_STREQ(u.host_header, "127.0.0.1:4568");
	T_STREQ(u.region, "local-1");

	/* Default ports stay out of Host; names are lower-cased. */
	T_EQ(parse("s3://bucket?endpoint=http://S3.Example.COM:80", &u), 0);
	T_EQ(u.port, 80);
	T_STREQ(u.host_header, "s3.example.com");
	T_EQ(parse("s3://bucket?endpoint=https://s3.example.com", &u), 0);
	T_EQ(u.port, 443);
	T_STREQ(u.host_header, "s3.example.com");

	/* IPv6, percent-encoded endpoint. */
	T_EQ(parse("s3://bucket?endpoint=http%3A%2F%2F%5B::1%5D%3A9000", &u), 0);
	T_STREQ(u.host, "::1");
	T_STREQ(u.host_header, "[::1]:9000");
	T_EQ(parse("s3://bucket?endpoint=https://[fd00::5]", &u), 0);
	T_STREQ(u.host_header, "[fd00::5]");
	T_EQ(u.port, 443);

	/* Virtual-hosted on a custom endpoint. */
	T_EQ(parse("s3://bucket?endpoint=https://s3.example.com:8443&path_style=false", &u), 0);
	T_EQ(u.path_style, 0);
	T_STREQ(u.host, "bucket.s3.example.com");
	T_STREQ(u.host_header, "bucket.s3.example.com:8443");
	check_path(&u, "k", "/k");
	refused("s3://bucket?endpoint=http://10.0.0.1:9000&path_style=false", "not an address");
	refused("s3://bucket?endpoint=https://[::1]&path_style=false", "not an address");
	refused("s3://b.c.d?endpoint=https://s3.example.com&path_style=false", "has dots");
	T_EQ(parse("s3://b.c.d?endpoint=http://s3.example.com&path_style=false", &u), 0);
	T_STREQ(u.host, "b.c.d.s3.example.com");
}

static void test_file(void)
{
	struct s3url u;

	T_EQ(parse("file:///var/lib/sluice/objects/", &u), 0);
	T_EQ(u.kind, S3URL_FILE);
	T_STREQ(u.path, "/var/lib/sluice/objects");
	T_EQ(parse("file:///", &u), 0);
	T_STREQ(u.path, "/");
	T_EQ(parse("file:///tmp/a b", &u), 0);
	T_STREQ(u.path, "/tmp/a b");
	T_CHECK(path_of(&u, "k") == NULL);	/* no request paths for files */
	refused("file://host/path", "no host");
	refused("file:relative", "neither");
	refused("file:///tmp/a%20b", "literally");
	refused("file:///tmp?x=1", "literally");
}

static void test_refusals(void)
{
	struct s3url u;
	char longurl[S3URL_URL_MAX + 2];

	refused("", "no URL given");
	T_EQ(s3url_parse(NULL, &u, NULL, 0), SL_E_CONFIG);	/* no errbuf is fine */
	refused("http://bucket", "neither file:///PATH nor s3://");
	refused("S3://bucket?region=x", "neither");
	refused("s3://bucket#frag?region=us-east-1", "fragment");
	/* Buckets. */
	refused("s3://?region=us-east-1", "bucket name '' is not valid");
	refused("s3://ab?region=us-east-1", "bucket name 'ab' is not valid");
	refused("s3://My_Bucket?region=us-east-1", "bucket name 'My_Bucket'");
	refused("s3://-bucket?region=us-east-1", "is not valid");
	refused("s3://bucket-?region=us-east-1", "is not valid");
	refused("s3://a..b?region=us-east-1&path_style=true", "is not valid");
	refused("s3://user@bucket?region=us-east-1", "is not valid");
	refused("s3://bucket:443?region=us-east-1", "is not valid");
	refused("s3://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?region=x",
		"is not valid");
	/* Prefixes. */
	refused("s3://bucket/a//b?region=us-east-1", "empty, '.' or '..' segment");
	refused("s3://bucket/a/../b?region=us-east-1", "segment");
	refused("s3://bucket/./b?region=us-east-1", "segment");
	refused("s3://bucket/a b?region=us-east-1", "may hold only");
	refused("s3://bucket/a%20b?region=us-east-1", "may hold only");
	refused("s3://bucket/a\\b?region=us-east-1", "may hold only");
	/* Query. */
	refused("s3://bucket", "region is required");
	refused("s3://bucket/p", "region is required");
	refused("s3://bucket?", "is not NAME=VALUE");
	refused("s3://bucket?region", "is not NAME=VALUE");
	refused("s3://bucket?region=", "'region' has no value");
	refused("s3://bucket?region=us-east-1&region=eu-west-1", "'region' is given twice");
	refused("s3://bucket?region=us-east-1&Region=x", "unknown parameter 'Region'");
	refused("s3://bucket?region=us-east-1&", "is not NAME=VALUE");
	refused("s3://bucket?region=US-EAST-1", "region 'US-EAST-1' is not valid");
	refused("s3://bucket?region=us_east", "is not valid");
	refused("s3://bucket?region=%zz", "value '%zz' of 'region' is not valid");
	refused("s3://bucket?region=a%0Ab", "is not valid");
	refused("s3://bucket?region=eu-west-1&path_style=yes", "path_style 'yes' is not true or false");
	refused("s3://bucket?region=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "too long");
	/* Endpoints. */
	refused("s3://bucket?endpoint=minio:9000", "must start with http:// or https://");
	refused("s3://bucket?endpoint=ftp://minio", "must start with");
	refused("s3://bucket?endpoint=http://", "is not http(s)://HOST[:PORT]");
	refused("s3://bucket?endpoint=http://minio:0", "is not http");
	refused("s3://bucket?endpoint=http://minio:65536", "is not http");
	refused("s3://bucket?endpoint=http://minio:", "is not http");
	refused("s3://bucket?endpoint=http://minio:9x", "is not http");
	refused("s3://bucket?endpoint=http://user@minio", "is not http");
	refused("s3://bucket?endpoint=http://minio/path", "is not http");
	refused("s3://bucket?endpoint=http://min_io", "is not http");
	refused("s3://bucket?endpoint=http://[::1", "is not http");
	refused("s3://bucket?endpoint=http://[::1]x", "is not http");
	refused("s3://bucket?endpoint=http://[zz]", "is not http");
	refused("s3://bucket?endpoint=http%3A%2F%2Fa%3Fb", "is not http");
	/* Long and hostile input is quoted short and printable. */
	memset(longurl, 'a', sizeof(longurl));
	longurl[sizeof(longurl) - 1] = '\0';
	refused(longurl, "longer than 2048");
	refused("s3://bucket?region=eu-west-1&\x01\x02=x", "unknown parameter '?\?'");
	refused("s3://bucket/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b?region=x", "...' may hold only");
	/* A message never overflows a small buffer. */
	{
		char small[8];

		T_EQ(s3url_parse("s3://x", &u, small, sizeof(small)), SL_E_CONFIG);
		T_EQ(strlen(small), 7);
	}
}

static void test_keys(void)
{
	struct s3url u;
	struct sl_wr w;
	char big[S3URL_KEY_MAX + 2];

	T_EQ(parse("s3://bucket/pre?region=us-east-1", &u), 0);
	T_CHECK(path_of(&u, "") == NULL);
	T_CHECK(path_of(&u, NULL) == NULL);
	T_CHECK(path_of(&u, "/abs") == NULL);
	T_CHECK(path_of(&u, "a\nb") == NULL);
	T_CHECK(path_of(&u, "a\x7f") == NULL);
	/* 1024 bytes with the prefix: "pre/" + 1020. */
	memset(big, 'k', sizeof(big));
	big[1020] = '\0';
	wr_init(&w, 0);
	T_EQ(s3url_object_path(&u, big, &w), 0);
	T_EQ(w.len, 1 + 1024);
	wr_free(&w);
	big[1020] = 'k';
	big[1021] = '\0';
	T_CHECK(path_of(&u, big) == NULL);

	/* The full key and the listing prefix. */
	wr_init(&w, 0);
	T_EQ(s3url_full_key(&u, "", &w), 0);
	T_CHECK(w.len == 4 && memcmp(w.p, "pre/", 4) == 0);
	wr_free(&w);
	wr_init(&w, 0);
	T_EQ(s3url_full_key(&u, "a b", &w), 0);
	T_CHECK(w.len == 7 && memcmp(w.p, "pre/a b", 7) == 0);
	wr_free(&w);
	T_EQ(parse("s3://bucket?region=us-east-1", &u), 0);
	wr_init(&w, 0);
	T_EQ(s3url_full_key(&u, "", &w), 0);
	T_EQ(w.len, 0);
	wr_free(&w);
	/* Without a prefix the whole 1024 bytes are the key's. */
	memset(big, 'k', sizeof(big));
	big[S3URL_KEY_MAX] = '\0';
	wr_init(&w, 0);
	T_EQ(s3url_object_path(&u, big, &w), 0);
	T_EQ(w.len, 1 + S3URL_KEY_MAX);
	wr_free(&w);
	big[S3URL_KEY_MAX] = 'k';
	big[S3URL_KEY_MAX + 1] = '\0';
	T_CHECK(path_of(&u, big) == NULL);
	/* Not for file URLs. */
	T_EQ(parse("file:///tmp", &u), 0);
	wr_init(&w, 0);
	T_EQ(s3url_full_key(&u, "k", &w), SL_E_INVALID);
	T_EQ(s3url_bucket_path(&u, &w), SL_E_INVALID);
	wr_free(&w);
}

int main(void)
{
	T_RUN(test_aws_virtual);
	T_RUN(test_aws_path_style);
	T_RUN(test_endpoint);
	T_RUN(test_file);
	T_RUN(test_refusals);
	T_RUN(test_keys);
	return t_done();
}
