/*
 * test_config.c - defaults, every kind of error with its source and line,
 * --set overrides, comments and blanks, integer overflow, listeners, dump.
 */
#include <stdlib.h>
#include <unistd.h>
#include "tests/unit/t.h"
#include "kernel/config.h"
#include "storage/s3url.h"

static char errbuf[512];

/* Parse text (given without its NUL) into a fresh config; returns the result. */
static int parse(struct config *c, const char *text)
{
	int err;

	T_EQ(config_init(c), 0);
	errbuf[0] = '\0';
	err = config_parse(c, text, strlen(text), "t.properties", errbuf, sizeof(errbuf));
	return err;
}

/* Parse text expecting an error message exactly equal to want. */
static void expect_err(const char *text, const char *want)
{
	struct config c;
	int err = parse(&c, text);

	T_EQ(err, SL_E_CONFIG);
	if (strcmp(errbuf, want) != 0) {
		fprintf(stderr, "  got  '%s'\n  want '%s'\n", errbuf, want);
		T_CHECK(strcmp(errbuf, want) == 0);
	}
	config_free(&c);
}

static void test_defaults(void)
{
	struct config c;

	T_EQ(config_init(&c), 0);
	T_EQ(c.node_id, 0);
	T_CHECK(strcmp(c.listeners, "PLAINTEXT://127.0.0.1:9092") == 0);
	T_CHECK(strcmp(c.advertised_listeners, "") == 0);
	T_EQ(c.num_partitions, 1);
	T_EQ(c.auto_create_topics, 1);
	T_EQ(c.log_retention_ms, 604800000);
	T_EQ(c.log_retention_bytes, -1);
	T_EQ(c.message_max_bytes, 1048588);
	T_EQ(c.socket_request_max_bytes, 104857600);
	T_EQ(c.max_connections, 1000);
	T_EQ(c.request_timeout_ms, 30000);
	T_EQ(c.default_replication_factor, 1);
	T_CHECK(strcmp(c.log_level, "info") == 0);
	T_CHECK(strcmp(c.cluster_id, "sluice-local") == 0);
	T_EQ(c.conn_max_unsent_bytes, 67108864);
	T_EQ(c.conn_max_inflight, 1000);
	T_CHECK(strcmp(c.wal_device, "") == 0);
	T_CHECK(strcmp(c.wal_volume, "") == 0);
	T_EQ(c.wal_capacity_bytes, 1073741824);
	T_CHECK(strcmp(c.objects_url, "") == 0);
	T_EQ(c.upload_bytes, 16777216);
	T_EQ(c.upload_interval_ms, 1000);
	T_EQ(c.cache_bytes, 268435456);
	T_CHECK(strcmp(c.s3_access_key, "") == 0);
	T_CHECK(strcmp(c.s3_secret_key, "") == 0);
	T_CHECK(strcmp(c.s3_ca_file, "") == 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), 0);
	config_free(&c);
	T_CHECK(c.listeners == NULL);
	config_free(&c);	/* twice is harmless */
}

static void test_parse_values(void)
{
	struct config c;
	const char *text =
		"# a comment\n"
		"! another comment\n"
		"\n"
		"   \t\n"
		"node.id=7\n"
		"  num.partitions =  12  \n"
		"auto.create.topics.enable=false\r\n"
		"log.retention.ms=-1\n"
		"log.retention.bytes = 9223372036854775807\n"
		"listeners: PLAINTEXT://0.0.0.0:19092\n"
		"sluice.objects.url=s3://bucket/prefix?region=eu-west-1&endpoint=http://h:1\n"
		"sluice.cluster.id=\n"
		"sluice.log.level=debug\n"
		"  # indented comment = with equals\n"
		"sluice.s3.secret.key=abc=def:ghi\n"
		"sluice.s3.access.key=AKIDEXAMPLE\n"	/* the pair, or validate refuses it */
		"node.id=8";	/* no final newline; duplicate: last wins */

	T_EQ(parse(&c, text), 0);
	T_CHECK(errbuf[0] == '\0');
	T_EQ(c.node_id, 8);
	T_EQ(c.num_partitions, 12);
	T_EQ(c.auto_create_topics, 0);
	T_EQ(c.log_retention_ms, -1);
	T_CHECK(c.log_retention_bytes == INT64_MAX);
	T_CHECK(strcmp(c.listeners, "PLAINTEXT://0.0.0.0:19092") == 0);
	T_CHECK(strcmp(c.objects_url,
		       "s3://bucket/prefix?region=eu-west-1&endpoint=http://h:1") == 0);
	T_CHECK(strcmp(c.cluster_id, "") == 0);
	T_CHECK(strcmp(c.log_level, "debug") == 0);
	T_CHECK(strcmp(c.s3_secret_key, "abc=def:ghi") == 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), 0);
	config_free(&c);

	/* bools ignore case, as Kafka's parser does */
	T_EQ(parse(&c, "auto.create.topics.enable=FALSE\n"), 0);
	T_EQ(c.auto_create_topics, 0);
	config_free(&c);
	T_EQ(parse(&c, "auto.create.topics.enable=True"), 0);
	T_EQ(c.auto_create_topics, 1);
	config_free(&c);

	/* empty input, only comments */
	T_EQ(parse(&c, ""), 0);
	config_free(&c);
	T_EQ(parse(&c, "#x\n\n!y"), 0);
	config_free(&c);
}

static void test_errors(void)
{
	expect_err("node.id=1\nnum.partiton=3\n",
		   "t.properties:2: unknown key 'num.partiton'");
	expect_err("\n\n\nnum.partitions=abc\n",
		   "t.properties:4: bad value 'abc' for num.partitions: "
		   "expected an integer between 1 and 1000000");
	expect_err("num.partitions=0",
		   "t.properties:1: bad value '0' for num.partitions: "
		   "expected an integer between 1 and 1000000");
	expect_err("num.partitions=1000001",
		   "t.properties:1: bad value '1000001' for num.partitions: "
		   "expected an integer between 1 and 1000000");
	expect_err("# c\nnum.partitions=12x",
		   "t.properties:2: bad value '12x' for num.partitions: "
		   "expected an integer between 1 and 1000000");
	expect_err("num.partitions=",
		   "t.properties:1: bad value '' for num.partitions: "
		   "expected an integer between 1 and 1000000");
	expect_err("num.partitions=+5",
		   "t.properties:1: bad value '+5' for num.partitions: "
		   "expected an integer between 1 and 1000000");
	expect_err("num.partitions=-",
		   "t.properties:1: bad value '-' for num.partitions: "
		   "expected an integer between 1 and 1000000");
	expect_err("num.partitions=1 2",
		   "t.properties:1: bad value '1 2' for num.partitions: "
		   "expected an integer between 1 and 1000000");
	expect_err("max.connections=0",
		   "t.properties:1: bad value '0' for max.connections: "
		   "expected an integer between 1 and 2147483647");
	expect_err("node.id=2147483648",
		   "t.properties:1: bad value '2147483648' for node.id: "
		   "expected an integer between 0 and 2147483647");
	expect_err("auto.create.topics.enable=yes",
		   "t.properties:1: bad value 'yes' for auto.create.topics.enable: "
		   "expected true or false");
	expect_err("auto.create.topics.enable=1",
		   "t.properties:1: bad value '1' for auto.create.topics.enable: "
		   "expected true or false");
	expect_err("sluice.log.level=loud",
		   "t.properties:1: bad value 'loud' for sluice.log.level: "
		   "expected one of debug, info, warn, error");
	expect_err("node.id=1\njust some words\n",
		   "t.properties:2: expected key=value, got 'just some words'");
	expect_err("=5", "t.properties:1: missing key before '='");
	expect_err("sluice.wal.device=/dev/x\001y",
		   "t.properties:1: bad value '/dev/x?y' for sluice.wal.device: "
		   "contains a control character");
	/* CRLF files count lines the same way */
	expect_err("node.id=1\r\nbogus=2\r\n", "t.properties:2: unknown key 'bogus'");
	/* unprintable bytes in a key are shown as '?' */
	expect_err("a\033[2Jb=1", "t.properties:1: unknown key 'a?[2Jb'");
}

static void test_overflow(void)
{
	expect_err("log.retention.ms=9223372036854775808",
		   "t.properties:1: bad value '9223372036854775808' for log.retention.ms: "
		   "expected an integer between -1 and 9223372036854775807");
	expect_err("log.retention.ms=99999999999999999999999999",
		   "t.properties:1: bad value '99999999999999999999999999' for log.retention.ms: "
		   "expected an integer between -1 and 9223372036854775807");
	expect_err("log.retention.ms=-9223372036854775808",
		   "t.properties:1: bad value '-9223372036854775808' for log.retention.ms: "
		   "expected an integer between -1 and 9223372036854775807");
	expect_err("log.retention.ms=-9223372036854775809",
		   "t.properties:1: bad value '-9223372036854775809' for log.retention.ms: "
		   "expected an integer between -1 and 9223372036854775807");
	expect_err("node.id=18446744073709551616",
		   "t.properties:1: bad value '18446744073709551616' for node.id: "
		   "expected an integer between 0 and 2147483647");
	expect_err("node.id=4294967296",
		   "t.properties:1: bad value '4294967296' for node.id: "
		   "expected an integer between 0 and 2147483647");
}

static void test_long_value_quoted_short(void)
{
	struct config c;
	char text[400];

	memset(text, '9', sizeof(text));
	memcpy(text, "node.id=", 8);
	T_EQ(config_init(&c), 0);
	T_EQ(config_parse(&c, text, sizeof(text), "f", errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strlen(errbuf) < 200);
	T_CHECK(strstr(errbuf, "...'") != NULL);
	/* a tiny errbuf is filled and terminated, never overrun */
	{
		char small[8];

		memset(small, 'x', sizeof(small));
		T_EQ(config_parse(&c, "bogus=1", 7, "file", small, sizeof(small)), SL_E_CONFIG);
		T_CHECK(strcmp(small, "file:1:") == 0);
		T_EQ(config_parse(&c, "bogus=1", 7, "file", NULL, 0), SL_E_CONFIG);
	}
	config_free(&c);
}

/* The text is not NUL-terminated: parsing stops at len exactly. */
static void test_not_terminated(void)
{
	struct config c;
	char *text = malloc(11);

	memcpy(text, "node.id=123", 11);
	T_EQ(config_init(&c), 0);
	T_EQ(config_parse(&c, text, 11, "f", errbuf, sizeof(errbuf)), 0);
	T_EQ(c.node_id, 123);
	T_EQ(config_parse(&c, text, 9, "f", errbuf, sizeof(errbuf)), 0);
	T_EQ(c.node_id, 1);
	T_EQ(config_parse(&c, text, 8, "f", errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_EQ(config_parse(&c, text, 0, "f", errbuf, sizeof(errbuf)), 0);
	free(text);
	config_free(&c);
}

static void test_set(void)
{
	struct config c;

	T_EQ(parse(&c, "num.partitions=3\nsluice.cluster.id=file"), 0);
	T_EQ(config_set(&c, "num.partitions=5", "--set", errbuf, sizeof(errbuf)), 0);
	T_EQ(c.num_partitions, 5);
	T_EQ(config_set(&c, " sluice.cluster.id = x y ", "--set", errbuf, sizeof(errbuf)), 0);
	T_CHECK(strcmp(c.cluster_id, "x y") == 0);
	T_EQ(config_set(&c, "sluice.wal.device=/tmp/wal", "--set", errbuf, sizeof(errbuf)), 0);
	T_CHECK(strcmp(c.wal_device, "/tmp/wal") == 0);

	T_EQ(config_set(&c, "nope=1", "--set", errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strcmp(errbuf, "--set: unknown key 'nope'") == 0);
	T_EQ(config_set(&c, "num.partitions=x", "--set", errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strcmp(errbuf, "--set: bad value 'x' for num.partitions: "
		       "expected an integer between 1 and 1000000") == 0);
	T_EQ(c.num_partitions, 5);	/* a bad value leaves the old one */
	T_EQ(config_set(&c, "num.partitions", "--set", errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strcmp(errbuf, "--set: expected key=value, got 'num.partitions'") == 0);
	T_EQ(config_set(&c, "", "--set", errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_EQ(config_set(&c, "node.id=1\nnode.id=2", "--set", errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_EQ(c.node_id, 0);
	config_free(&c);
}

static void test_load_file(void)
{
	struct config c;
	char path[] = "/tmp/sluice-test-config-XXXXXX";
	const char *text = "# test\nnode.id=42\nlisteners=PLAINTEXT://:9999\nbad.key=1\n";
	int fd = mkstemp(path);
	char want[128];

	T_CHECK(fd != -1);
	T_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
	close(fd);
	T_EQ(config_init(&c), 0);
	T_EQ(config_load_file(&c, path, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	snprintf(want, sizeof(want), "%s:4: unknown key 'bad.key'", path);
	T_CHECK(strcmp(errbuf, want) == 0);
	T_EQ(c.node_id, 42);
	unlink(path);
	T_EQ(config_load_file(&c, path, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strstr(errbuf, "cannot open") != NULL);
	T_EQ(config_load_file(&c, "kernel/sluice.properties", errbuf, sizeof(errbuf)), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), 0);
	config_free(&c);
}

/* The shipped sluice.properties sets every key to its default. */
static void test_default_file_matches(void)
{
	struct config a, b;
	int err;

	T_EQ(config_init(&a), 0);
	T_EQ(config_init(&b), 0);
	b.node_id = 99;
	err = config_load_file(&b, "kernel/sluice.properties", errbuf, sizeof(errbuf));
	T_EQ(err, 0);
	if (err)
		fprintf(stderr, "  %s\n", errbuf);
	T_EQ(b.node_id, a.node_id);
	T_CHECK(strcmp(a.listeners, b.listeners) == 0);
	T_EQ(a.num_partitions, b.num_partitions);
	T_CHECK(a.log_retention_ms == b.log_retention_ms);
	T_CHECK(strcmp(a.log_level, b.log_level) == 0);
	T_CHECK(a.cache_bytes == b.cache_bytes);
	config_free(&a);
	config_free(&b);
}

static void test_listener(void)
{
	struct listener_addr la;

	T_EQ(config_parse_listener("PLAINTEXT://127.0.0.1:9092", &la), 0);
	T_CHECK(strcmp(la.name, "PLAINTEXT") == 0);
	T_CHECK(strcmp(la.host, "127.0.0.1") == 0);
	T_EQ(la.port, 9092);
	T_EQ(config_parse_listener("PLAINTEXT://:1", &la), 0);
	T_CHECK(strcmp(la.host, "") == 0);
	T_EQ(la.port, 1);
	T_EQ(config_parse_listener("PLAINTEXT://0.0.0.0:65535", &la), 0);
	T_CHECK(strcmp(la.host, "0.0.0.0") == 0);
	T_EQ(la.port, 65535);
	T_EQ(config_parse_listener("plaintext://broker-1.example.com:9092", &la), 0);
	T_CHECK(strcmp(la.name, "PLAINTEXT") == 0);
	T_CHECK(strcmp(la.host, "broker-1.example.com") == 0);
	T_EQ(config_parse_listener("PLAINTEXT://localhost:9092,PLAINTEXT://x:1", &la), 0);
	T_CHECK(strcmp(la.host, "localhost") == 0);
	T_EQ(la.port, 9092);
	T_EQ(config_parse_listener("PLAINTEXT://[::1]:9092", &la), 0);
	T_CHECK(strcmp(la.host, "::1") == 0);

	T_EQ(config_parse_listener("PLAINTEXT://h:0", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://h:65536", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://h:99999999999999999999999", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://h:", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://h", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://h:90x", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://h:-1", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://h: 9", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("SSL://h:9093", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT:/h:9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAIN", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("", &la), SL_E_INVALID);
	T_EQ(config_parse_listener(NULL, &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://256.1.1.1:9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://1.2.3:9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://bad host:9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://-bad:9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://a..b:9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://[::1:9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://[zz]:9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://[::1]9092", &la), SL_E_INVALID);
	T_EQ(config_parse_listener("PLAINTEXT://a:b:9092", &la), SL_E_INVALID);
	{
		char big[400];

		memset(big, 'a', sizeof(big));
		memcpy(big, "PLAINTEXT://", 12);
		memcpy(big + sizeof(big) - 6, ":9092", 6);
		T_EQ(config_parse_listener(big, &la), SL_E_INVALID);
	}
}

static void test_validate(void)
{
	struct config c;

	T_EQ(parse(&c, "listeners=PLAINTEXT://h:0"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strcmp(errbuf, "listeners: bad value 'PLAINTEXT://h:0': "
		       "expected PLAINTEXT://host:port with port 1-65535") == 0);
	config_free(&c);

	T_EQ(parse(&c, "advertised.listeners=SSL://h:1"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strncmp(errbuf, "advertised.listeners: bad value 'SSL://h:1'", 41) == 0);
	config_free(&c);

	T_EQ(parse(&c, "advertised.listeners=PLAINTEXT://0.0.0.0:9092"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	config_free(&c);

	T_EQ(parse(&c, "listeners=PLAINTEXT://0.0.0.0:9092\n"
		   "advertised.listeners=PLAINTEXT://broker.local:9092"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), 0);
	config_free(&c);

	/* sluice.objects.url is parsed at start; its parser's message is the error. */
	T_EQ(parse(&c, "sluice.objects.url=s3://My_Bucket?region=eu-west-1"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strncmp(errbuf, "sluice.objects.url: bucket name 'My_Bucket'", 43) == 0);
	config_free(&c);
	T_EQ(parse(&c, "sluice.objects.url=s3://bucket"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strstr(errbuf, "region is required") != NULL);
	config_free(&c);
	T_EQ(parse(&c, "sluice.objects.url=s3://bucket/p?region=eu-west-1\n"
		   "sluice.s3.tls.insecure=true"), 0);
	T_EQ(c.s3_tls_insecure, 1);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), 0);
	config_free(&c);
	T_EQ(parse(&c, "sluice.s3.tls.insecure=yes"), SL_E_CONFIG);
	config_free(&c);
	/* S3 keys: both or neither. */
	T_EQ(parse(&c, "sluice.s3.access.key=AKIDEXAMPLE"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strcmp(errbuf, "sluice.s3.access.key: set without sluice.s3.secret.key: "
		       "set both or neither") == 0);
	config_free(&c);
	T_EQ(parse(&c, "sluice.s3.secret.key=wJalrXUtnFEMI"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strncmp(errbuf, "sluice.s3.secret.key: set without sluice.s3.access.key", 54) == 0);
	T_CHECK(strstr(errbuf, "wJalr") == NULL);
	config_free(&c);
	T_EQ(parse(&c, "sluice.s3.access.key=AKIDEXAMPLE\nsluice.s3.secret.key=wJalrXUtnFEMI"), 0);
	T_EQ(config_validate(&c, errbuf, sizeof(errbuf)), 0);
	config_free(&c);
}

struct dump {
	int lines;
	int saw_secret_masked, saw_secret_plain, saw_partitions, saw_bool, saw_empty_key;
};

static void on_line(const char *s, void *arg)
{
	struct dump *d = arg;

	d->lines++;
	if (strcmp(s, "sluice.s3.secret.key=****") == 0)
		d->saw_secret_masked = 1;
	if (strstr(s, "hunter2"))
		d->saw_secret_plain = 1;
	if (strcmp(s, "num.partitions=4") == 0)
		d->saw_partitions = 1;
	if (strcmp(s, "auto.create.topics.enable=false") == 0)
		d->saw_bool = 1;
	if (strcmp(s, "sluice.s3.access.key=AKIA") == 0)
		d->saw_empty_key = 1;
	T_CHECK(strchr(s, '=') != NULL);
}

static void test_dump(void)
{
	struct config c;
	struct dump d;

	T_EQ(parse(&c, "num.partitions=4\nsluice.s3.secret.key=hunter2\n"
		   "auto.create.topics.enable=false\nsluice.s3.access.key=AKIA"), 0);
	memset(&d, 0, sizeof(d));
	config_dump(&c, on_line, &d);
	T_EQ(d.lines, 45);
	T_EQ(d.saw_secret_masked, 1);
	T_EQ(d.saw_secret_plain, 0);
	T_EQ(d.saw_partitions, 1);
	T_EQ(d.saw_bool, 1);
	T_EQ(d.saw_empty_key, 1);
	config_free(&c);

	/* an unset secret shows as empty, not as a mask */
	T_EQ(config_init(&c), 0);
	memset(&d, 0, sizeof(d));
	config_dump(&c, on_line, &d);
	T_EQ(d.saw_secret_masked, 0);
	config_free(&c);
}

int main(void)
{
	config_objects_url_check = s3url_check;
	T_RUN(test_defaults);
	T_RUN(test_parse_values);
	T_RUN(test_errors);
	T_RUN(test_overflow);
	T_RUN(test_long_value_quoted_short);
	T_RUN(test_not_terminated);
	T_RUN(test_set);
	T_RUN(test_load_file);
	T_RUN(test_default_file_matches);
	T_RUN(test_listener);
	T_RUN(test_validate);
	T_RUN(test_dump);
	return t_done();
}
