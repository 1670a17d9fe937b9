/*
 * test_kafka.c - the broker in one process, driven over loopback with
 * requests built by the codec: a device error under a Produce reaches the
 * client as KAFKA_STORAGE_ERROR, the failed batch is never served, later
 * produces are refused the same way, and what was acknowledged before stays
 * readable.
 *
 * The WAL runs on its pwrite path, where faults come in through wal_sys.
 */
#include <errno.h>
#include "tbroker.h"

static int fail_writes;

static ssize_t eio_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (fail_writes) {
		errno = EIO;
		return -1;
	}
	return pwrite(fd, buf, n, off);
}

static void test_device_error_reaches_the_client(void)
{
	const char *path = "build/test-kafka-wal";
	struct tbroker b;
	int64_t base = -1;

	T_EQ(tb_start(&b, path, 1, NULL), 0);
	if (b.fd < 0) {
		tb_stop(&b);
		return;
	}
	int fd = b.fd;

	T_EQ(create_topic(fd, "faults"), KERR_NONE);
	T_EQ(produce(fd, "faults", "first", &base), KERR_NONE);
	T_EQ(base, 0);
	T_EQ(high_watermark(fd, "faults"), 1);

	/* The device fails under the next produce: the client hears it, nothing is served. */
	fail_writes = 1;
	wal_sys.pwrite = eio_pwrite;
	T_EQ(produce(fd, "faults", "second", &base), KERR_KAFKA_STORAGE_ERROR);
	T_EQ(high_watermark(fd, "faults"), 1);
	/* The device works again, but the WAL stays read-only: nothing more is acknowledged. */
	fail_writes = 0;
	wal_sys_reset();
	T_EQ(produce(fd, "faults", "third", &base), KERR_KAFKA_STORAGE_ERROR);
	T_EQ(high_watermark(fd, "faults"), 1);

	tb_stop(&b);
	unlink(path);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	L = loop_new();
	T_RUN(test_device_error_reaches_the_client);
	loop_destroy(L);
	return t_done();
}
