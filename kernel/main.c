/*
 * main.c - the command line, and the wiring of the layers.
 *
 *   sluice serve  [--config FILE] [--set key=value]...   run the broker
 *   sluice format [--config FILE] [--set key=value]...   initialise a WAL
 *   sluice version
 *
 * This is the one file of kernel/ that includes the layers above it.  Its
 * job is order: read every configuration source (file first, then each
 * --set in order), refuse to start on any error, then build the loop, the
 * store, the Kafka front end and the listener, and run until SIGTERM or
 * SIGINT asks for a clean stop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "config.h"
#include "log.h"
#include "loop.h"
#include "../kafka/kafka.h"
#include "../net/conn.h"
#include "../storage/stream.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice serve  [--config FILE] [--set key=value]...\n"
		"       sluice format [--config FILE] [--set key=value]...\n"
		"       sluice version\n");
}

/* Apply --config and --set in command-line order: the file first, then the sets. */
static int load_config(struct config *cfg, int argc, char **argv)
{
	char err[512];
	const char *file = NULL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			file = argv[++i];
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
			i++;
		} else {
			fprintf(stderr, "sluice: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return -1;
		}
	}
	if (file && config_load_file(cfg, file, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluice: configuration error: %s\n", err);
		return -1;
	}
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--set") != 0)
			continue;
		if (config_set(cfg, argv[++i], "--set", err, sizeof(err)) != 0) {
			fprintf(stderr, "sluice: configuration error: %s\n", err);
			return -1;
		}
	}
	if (config_validate(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluice: configuration error: %s\n", err);
		return -1;
	}
	enum log_level lvl;
	if (log_parse_level(cfg->log_level, &lvl) == 0)
		log_set_level(lvl);
	return 0;
}

struct stopper {
	struct loop *l;
	struct server *srv;
	int fd;
};

static void on_signal(struct loop *l, int fd, unsigned events, void *arg)
{
	struct stopper *s = arg;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	log_info("main", "signal %u: stopping", si.ssi_signo);
	server_stop_accepting(s->srv);
	loop_stop(l);
}

static void dump_line(const char *line, void *arg)
{
	log_debug("config", "%s", line);
}

static int serve(int argc, char **argv)
{
	struct config cfg;
	struct listener_addr la;
	struct loop *l = NULL;
	struct store *st = NULL;
	struct kafka *k = NULL;
	struct server *srv = NULL;
	struct stopper stop = { .fd = -1 };
	int rc = 1;

	if (config_init(&cfg) != 0) {
		fprintf(stderr, "sluice: cannot initialise configuration\n");
		return 1;
	}
	if (load_config(&cfg, argc, argv) != 0)
		goto out;
	config_dump(&cfg, dump_line, NULL);
	/*
	 * Durability settings this build cannot honour are refused, not ignored:
	 * an operator who named a WAL device or a bucket expects acknowledged
	 * data to survive, and it would not.
	 */
	const char *unhonoured = cfg.wal_device[0] ? "sluice.wal.device"
				 : cfg.wal_volume[0] ? "sluice.wal.volume"
				 : cfg.objects_url[0] ? "sluice.objects.url" : NULL;
	if (unhonoured) {
		log_error("main", "%s is set, but this build keeps streams in memory only; "
			  "refusing to start rather than acknowledge writes it cannot keep", unhonoured);
		goto out;
	}
	if (config_parse_listener(cfg.listeners, &la) != 0) {
		log_error("main", "bad listeners '%s'", cfg.listeners);
		goto out;
	}

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	l = loop_new();
	if (!l) {
		log_error("main", "cannot create the event loop: %s", strerror(errno));
		goto out;
	}
	st = store_new(l);
	k = st ? kafka_new(l, &cfg, st) : NULL;
	if (!k) {
		log_error("main", "cannot create the broker");
		goto out;
	}
	struct net_limits lim = {
		.max_frame = (size_t)cfg.socket_request_max_bytes,
		.max_connections = cfg.max_connections,
		.max_inflight = cfg.conn_max_inflight,
		.max_unsent = (size_t)cfg.conn_max_unsent_bytes,
	};
	struct net_ops ops = { .on_request = kafka_on_request };
	srv = server_listen(l, la.host, la.port, &lim, &ops, k);
	if (!srv)
		goto out;
	kafka_set_port(k, server_port(srv));

	stop.l = l;
	stop.srv = srv;
	stop.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (stop.fd == -1) {
		log_error("main", "cannot watch signals: %s", strerror(errno));
		goto out;
	}
	int err = loop_add(l, stop.fd, LOOP_READ, on_signal, &stop);
	if (err != 0) {
		log_error("main", "cannot watch signals: %s", sl_strerror(err));
		goto out;
	}
	log_info("main", "sluice %s node %d listening on %s:%u", SLUICE_VERSION, cfg.node_id,
		 la.host[0] ? la.host : "*", server_port(srv));
	log_warn("main", "streams are kept in memory: acknowledged data does not survive a restart");
	rc = loop_run(l) == 0 ? 0 : 1;
	log_info("main", "stopped");
out:
	if (stop.fd != -1)
		close(stop.fd);
	server_destroy(srv);
	kafka_destroy(k);
	store_destroy(st);
	loop_destroy(l);
	config_free(&cfg);
	return rc;
}

static int format(int argc, char **argv)
{
	struct config cfg;

	if (config_init(&cfg) != 0)
		return 1;
	int rc = load_config(&cfg, argc, argv);
	config_free(&cfg);
	if (rc != 0)
		return 1;
	fprintf(stderr, "sluice format: this build keeps streams in memory and has no WAL to format\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0)
		return serve(argc - 2, argv + 2);
	if (strcmp(argv[1], "format") == 0)
		return format(argc - 2, argv + 2);
	if (strcmp(argv[1], "version") == 0) {
		printf("sluice %s\n", SLUICE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
