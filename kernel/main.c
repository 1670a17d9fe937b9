/*
 * main.c - the command line, and the wiring of the layers.
 *
 *   sluice serve  [--config FILE] [--set key=value]...   run the broker
 *   sluice format [--force] [--config FILE] [--set key=value]...   initialise a WAL
 *   sluice version
 *
 * This is the one file of kernel/ that includes the layers above it.  Its
 * job is order: read every configuration source (file first, then each
 * --set in order), refuse to start on any error, then build the loop, the
 * store, the Kafka front end and the listener, and run until SIGTERM or
 * SIGINT asks for a clean stop.
 *
 * As PID 1 of the appliance (started by the kernel as /init, with no
 * subcommand) it first does an init system's duties (kernel/init.h), which
 * end with the configuration from the kernel command line, fw_cfg or EC2
 * user-data; then it prepares the WAL device, runs the same broker, and
 * powers the machine off when the broker stops:
 *
 *   init_boot ─▶ WAL device (blank? format if allowed) ─▶ broker ─▶ power off
 *       │                 │                                 ▲  SIGTERM, SIGINT
 *       └─ any error ─────┴──▶ message on the console ──────┘  (ctrl-alt-del),
 *                                                              power button
 * PID 1 also reaps children on SIGCHLD, and never exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config.h"
#include "init.h"
#include "log.h"
#include "loop.h"
#include "../kafka/kafka.h"
#include "../net/conn.h"
#include "../net/httpc.h"
#include "../net/netif.h"
#include "../net/userdata.h"
#include "../storage/objstore.h"
#include "../storage/s3cred.h"
#include "../storage/s3url.h"
#include "../storage/stream.h"
#include "../storage/wal.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice serve  [--config FILE] [--set key=value]...\n"
		"       sluice format [--force] [--config FILE] [--set key=value]...\n"
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

/* The WAL's path: sluice.wal.device, or the device of EBS volume sluice.wal.volume. */
static int wal_path(const struct config *cfg, char *path, size_t cap)
{
	path[0] = 0;
	if (cfg->wal_device[0]) {
		snprintf(path, cap, "%s", cfg->wal_device);
		return 0;
	}
	if (!cfg->wal_volume[0])
		return 0;
	int err = wal_find_volume("/sys/block", cfg->wal_volume, path, cap);
	if (err != 0) {
		log_error("main", "sluice.wal.volume %s: %s", cfg->wal_volume,
			  err == SL_E_INVALID ? "not an EBS volume id (vol-...)"
					      : "no NVMe device has that serial; is the volume attached?");
		return -1;
	}
	log_info("main", "WAL volume %s is %s", cfg->wal_volume, path);
	return 0;
}

static void ident_of(const struct config *cfg, struct wal_ident *id)
{
	memset(id, 0, sizeof(*id));
	snprintf(id->cluster, sizeof(id->cluster), "%s", cfg->cluster_id);
	id->node = cfg->node_id;
}

#define MAX_BUTTONS 4

struct stopper {
	struct loop *l;
	struct server *srv;
	int fd;
	int pid1;
	int buttons[MAX_BUTTONS];
	int nbuttons;
};

static void stop_broker(struct stopper *s)
{
	server_stop_accepting(s->srv);
	loop_stop(s->l);
	/* Whatever still flushes gets this long; then the machine goes off regardless. */
	if (s->pid1)
		init_shutdown_deadline(INIT_SHUTDOWN_S);
}

static void on_signal(struct loop *l, int fd, unsigned events, void *arg)
{
	struct stopper *s = arg;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	if (si.ssi_signo == SIGCHLD) {
		init_reap();
		return;
	}
	log_info("main", "signal %u%s: stopping", si.ssi_signo,
		 s->pid1 && si.ssi_signo == SIGINT ? " (ctrl-alt-del)" : "");
	stop_broker(s);
}

static void on_power_button(struct loop *l, int fd, unsigned events, void *arg)
{
	struct stopper *s = arg;

	if (events & LOOP_ERROR) {
		loop_del(l, fd);
		return;
	}
	if (!init_power_pressed(fd))
		return;
	log_info("main", "power button: stopping");
	stop_broker(s);
}

static void dump_line(const char *line, void *arg)
{
	log_debug("config", "%s", line);
}

static void stop_now(struct loop *l, void *arg)
{
	loop_stop(l);
}

/* One more turn of the loop, for the deferred tasks that free what was just closed. */
static void drain_loop(struct loop *l)
{
	struct loop_timer t;

	loop_timer_init(&t, stop_now, NULL);
	loop_timer_set(l, &t, 0);
	(void)loop_run(l);
	loop_timer_cancel(l, &t);
}

/* Shared storage: the object store and what it needs. */
struct shared {
	struct httpc *http;
	struct s3cred *cred;
	struct objstore *os;
	struct tier *tier;
	int ready, err;
};

/*
 * The embedded default for a broker run as a process on a WAL file without
 * a bucket: the directory "<WAL file>.objects" (file:// needs an absolute
 * path).  SL_E_NOTFOUND when the WAL is not a regular file.
 */
static int default_objects(const char *walpath, char *url, size_t cap)
{
	struct stat stb;
	char abs[PATH_MAX];

	if (stat(walpath, &stb) != 0 || !S_ISREG(stb.st_mode) || !realpath(walpath, abs))
		return SL_E_NOTFOUND;
	if ((size_t)snprintf(url, cap, "file://%s.objects", abs) >= cap)
		return SL_E_TOOBIG;
	return 0;
}

static int open_tier(struct loop *l, const struct config *cfg, const char *url, struct store *st,
		     struct wal *w, struct shared *sh)
{
	/*
	 * Data objects go up in one PUT up to 64 MiB: a 16 MiB object in 8 MiB
	 * parts would cost five write requests instead of one.
	 */
	struct s3_options s3o = { .ca_file = cfg->s3_ca_file, .insecure = cfg->s3_tls_insecure,
				  .multipart_threshold = (size_t)64 << 20 };
	struct httpc_config hc = { 0 };
	struct objstore_options oo = { .s3 = &s3o, .create_dir = 1 };
	struct tier_options to = {
		.node = cfg->node_id,
		.upload_bytes = (uint64_t)cfg->upload_bytes,
		.upload_interval_ms = (uint64_t)cfg->upload_interval_ms,
		.cache_bytes = (size_t)cfg->cache_bytes,
		.tail_bytes = (size_t)cfg->tail_bytes,
		.gc_grace_ms = cfg->gc_grace_ms,
		.gc_interval_ms = cfg->gc_interval_ms,
		.compaction_interval_ms = cfg->compaction_interval_ms,
		.compaction_rate = (uint64_t)cfg->compaction_rate,
	};
	struct wal_ident id;
	char why[512];

	ident_of(cfg, &id);
	to.cluster = id.cluster;
	if (obj_comp_parse(cfg->objects_compression, &to.comp) != 0) {
		log_error("main", "sluice.objects.compression: unknown value '%s'", cfg->objects_compression);
		return SL_E_CONFIG;
	}
	if (strncmp(url, "s3://", 5) == 0) {
		sh->http = httpc_new(l, &hc);
		sh->cred = sh->http ? s3cred_new(l, cfg, sh->http) : NULL;
		if (!sh->cred) {
			log_error("main", "cannot set up S3 credentials");
			return SL_E_NOMEM;
		}
		oo.cred = sh->cred;
	}
	int rc = objstore_open(l, url, &oo, &sh->os, why, sizeof(why));
	if (rc != 0) {
		log_error("main", "sluice.objects.url %s: %s", url,
			  rc == SL_E_CONFIG ? why : sl_strerror(rc));
		return rc;
	}
	sh->tier = tier_new(l, st, w, sh->os, &to);
	if (!sh->tier) {
		log_error("main", "cannot create the upload pipeline");
		return SL_E_NOMEM;
	}
	log_info("main", "objects go to %s (uploads every %lld ms or %lld bytes, %s)",
		 objstore_name(sh->os), (long long)cfg->upload_interval_ms,
		 (long long)cfg->upload_bytes, cfg->objects_compression);
	return 0;
}

struct load_wait {
	struct shared *sh;
	struct loop *l;
	int fd;
};

static void load_signal(struct loop *l, int fd, unsigned events, void *arg)
{
	struct load_wait *lw = arg;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("main", "stop signal while reading the manifest: stopping");
			lw->sh->ready = 1;
			lw->sh->err = SL_E_CLOSED;
			loop_stop(l);
		}
	}
}

static void load_done(void *arg, int err)
{
	struct load_wait *lw = arg;

	lw->sh->ready = 1;
	lw->sh->err = err;
	loop_stop(lw->l);
}

/*
 * Read the manifest before anything is served: the loop runs until it is
 * loaded, however long the object store takes to answer (each failure is
 * logged and retried), or a stop signal ends the wait.
 */
static int load_tier(struct loop *l, struct shared *sh)
{
	struct load_wait lw = { sh, l, -1 };
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	lw.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (lw.fd != -1 && loop_add(l, lw.fd, LOOP_READ, load_signal, &lw) != 0) {
		close(lw.fd);
		lw.fd = -1;
	}
	int rc = tier_load(sh->tier, load_done, &lw);
	if (rc != 0)
		log_error("main", "cannot read the manifest: %s", sl_strerror(rc));
	while (rc == 0 && !sh->ready)
		if (loop_run(l) != 0)
			rc = SL_E_CLOSED;
	if (lw.fd != -1) {
		loop_del(l, lw.fd);
		close(lw.fd);
	}
	return rc ? rc : sh->err;
}

static void close_tier(struct shared *sh)
{
	tier_free(sh->tier);
	objstore_free(sh->os);
	s3cred_free(sh->cred);
	if (sh->http)
		httpc_free(sh->http);
}

/*
 * Run the broker with cfg until a stop signal (or, as PID 1, the power
 * button).  0 after a clean stop, 1 after an error once listening, 2 when it
 * never started (the reason logged).
 */
static int run_broker(const struct config *cfg, int pid1)
{
	struct listener_addr la;
	struct loop *l = NULL;
	struct store *st = NULL;
	struct kafka *k = NULL;
	struct server *srv = NULL;
	struct stopper stop = { .fd = -1, .pid1 = pid1 };
	struct wal *w = NULL;
	struct shared sh = { 0 };
	char walpath[512];
	int rc = 2;

	config_dump(cfg, dump_line, NULL);
	if (config_parse_listener(cfg->listeners, &la) != 0) {
		log_error("main", "bad listeners '%s'", cfg->listeners);
		goto out;
	}

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (pid1)
		sigaddset(&mask, SIGCHLD);	/* reaped from the loop */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	l = loop_new();
	if (!l) {
		log_error("main", "cannot create the event loop: %s", strerror(errno));
		goto out;
	}
	st = store_new(l);
	if (!st) {
		log_error("main", "cannot create the store");
		goto out;
	}
	if (wal_path(cfg, walpath, sizeof(walpath)) != 0)
		goto out;
	if (walpath[0]) {
		char why[512];
		int err;
		struct wal_ident id;
		ident_of(cfg, &id);
		if (wal_set_io(cfg->wal_io) != 0) {
			log_error("main", "sluice.wal.io: unknown value '%s'", cfg->wal_io);
			goto out;
		}
		w = wal_open(l, walpath, &id, &err, why, sizeof(why));
		if (!w) {
			log_error("main", "cannot open the WAL: %s%s", why,
				  err != SL_E_CORRUPT ? "" : pid1 ?
				  " (it is not blank, so it is not formatted at boot; check "
				  "sluice.wal.device or sluice.wal.volume)" :
				  " (run `sluice format` first?)");
			goto out;
		}
		store_set_wal(st, w);
	}
	k = kafka_new(l, cfg, st);
	if (!k) {
		log_error("main", "cannot create the broker");
		goto out;
	}
	const char *url = cfg->objects_url;
	char deflt[600];
	if (!url[0] && !pid1 && w && default_objects(walpath, deflt, sizeof(deflt)) == 0) {
		url = deflt;
		log_info("main", "no sluice.objects.url: objects go to %s, beside the WAL file", url);
	}
	if (url[0]) {
		if (!w) {
			log_error("main", "sluice.objects.url needs a WAL (sluice.wal.device or "
				  "sluice.wal.volume): uploads are trimmed from it");
			goto out;
		}
		if (open_tier(l, cfg, url, st, w, &sh) != 0)
			goto out;
		kafka_set_tier(k, sh.tier);
		int lr = load_tier(l, &sh);
		if (lr == SL_E_CLOSED && sh.ready) {
			rc = 0;		/* stopped while waiting for the object store: a clean stop */
			goto out;
		}
		if (lr != 0 || kafka_restore_tier(k) != 0)
			goto out;
	}
	if (w) {
		struct wal_recovery rec = { 0 };
		int err = store_recover(st, &rec);
		if (err != 0) {
			log_error("main", "WAL recovery failed: %s", sl_strerror(err));
			goto out;
		}
	}
	if (kafka_recovered(k) != 0)
		goto out;
	if (sh.tier)
		tier_start(sh.tier);
	struct net_limits lim = {
		.max_frame = (size_t)cfg->socket_request_max_bytes,
		.max_connections = cfg->max_connections,
		.max_inflight = cfg->conn_max_inflight,
		.max_unsent = (size_t)cfg->conn_max_unsent_bytes,
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
	if (pid1)
		stop.nbuttons = init_power_buttons(stop.buttons, MAX_BUTTONS);
	for (int i = 0; i < stop.nbuttons; i++) {
		err = loop_add(l, stop.buttons[i], LOOP_READ, on_power_button, &stop);
		if (err != 0)
			log_warn("main", "cannot watch the power button: %s", sl_strerror(err));
	}
	log_info("main", "sluice %s node %d listening on %s:%u", SLUICE_VERSION, cfg->node_id,
		 la.host[0] ? la.host : "*", server_port(srv));
	if (!w)
		log_warn("main", "no sluice.wal.device: streams are kept in memory and "
			 "acknowledged data does not survive a restart");
	rc = loop_run(l) == 0 ? 0 : 1;
	log_info("main", "stopped");
out:
	if (stop.fd != -1)
		close(stop.fd);
	for (int i = 0; i < stop.nbuttons; i++)
		close(stop.buttons[i]);
	server_destroy(srv);
	/* Closed connections are freed by a deferred task: let it run. */
	if (l)
		drain_loop(l);
	/* Pending appends complete (or fail) before the layers that wait on them go. */
	if (w)
		wal_close(w);
	kafka_destroy(k);
	close_tier(&sh);
	store_destroy(st);
	loop_destroy(l);
	return rc;
}

static int serve(int argc, char **argv)
{
	struct config cfg;
	int rc = 1;

	if (config_init(&cfg) != 0) {
		fprintf(stderr, "sluice: cannot initialise configuration\n");
		return 1;
	}
	if (load_config(&cfg, argc, argv) == 0)
		rc = run_broker(&cfg, 0) == 0 ? 0 : 1;
	config_free(&cfg);
	return rc;
}

static int format(int argc, char **argv)
{
	struct config cfg;
	struct wal_ident id;
	char path[512], why[512];
	int force = 0, rc = 1;

	/* --force is format's own flag; everything else is configuration. */
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0) {
			force = 1;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(*argv));
			argc--;
			i--;
		}
	}
	if (config_init(&cfg) != 0)
		return 1;
	if (load_config(&cfg, argc, argv) != 0 || wal_path(&cfg, path, sizeof(path)) != 0)
		goto out;
	if (!path[0]) {
		fprintf(stderr, "sluice format: no sluice.wal.device or sluice.wal.volume configured\n");
		goto out;
	}
	ident_of(&cfg, &id);
	if (wal_format(path, (uint64_t)cfg.wal_capacity_bytes, &id, force, why, sizeof(why)) != 0) {
		fprintf(stderr, "sluice format: %s\n", why);
		goto out;
	}
	printf("formatted %s for cluster %s node %d\n", path, id.cluster, id.node);
	rc = 0;
out:
	config_free(&cfg);
	return rc;
}

/*
 * The WAL device before the broker opens it, as PID 1: wait for it to
 * appear (modules probe in the background; EBS volumes attach late), and
 * format it when it is blank and the configuration allows that.  Returns 0,
 * or -1 with why for the console.
 */
static int pid1_wal(const struct config *cfg, char *why, size_t whylen)
{
	char path[512], fwhy[512];
	struct wal_ident id;
	int blank, err;

	path[0] = 0;
	if (cfg->wal_device[0]) {
		snprintf(path, sizeof(path), "%s", cfg->wal_device);
	} else if (cfg->wal_volume[0]) {
		uint64_t start = init_sys.now_ms();
		int said = 0;

		while ((err = wal_find_volume("/sys/block", cfg->wal_volume, path, sizeof(path))) ==
		       SL_E_NOTFOUND && init_sys.now_ms() - start < INIT_VOLUME_WAIT_MS) {
			if (!said++)
				log_info("main", "waiting up to %d s for EBS volume %s to be attached",
					 INIT_VOLUME_WAIT_MS / 1000, cfg->wal_volume);
			init_sys.sleep_ms(500);
		}
		if (err != 0) {
			snprintf(why, whylen, "configuration error: sluice.wal.volume %s: %s",
				 cfg->wal_volume, err == SL_E_INVALID ?
				 "not an EBS volume id (vol-...)" :
				 "no NVMe device has that serial after waiting; is the volume attached?");
			return -1;
		}
		log_info("main", "WAL volume %s is %s", cfg->wal_volume, path);
	}
	if (!path[0])
		return 0;
	err = init_wait_path(path, INIT_DEVICE_WAIT_MS);
	if (err == 0)
		err = init_device_blank(path, &blank);
	if (err != 0) {
		snprintf(why, whylen, "cannot read the WAL device %s: %s", path, sl_strerror(err));
		return -1;
	}
	if (!blank)
		return 0;
	if (!cfg->wal_format_if_blank) {
		snprintf(why, whylen, "configuration error: the WAL device %s is blank (never "
			 "formatted).\nSet sluice.wal.format.if.blank=true to format it at boot, or "
			 "run `sluice format` on it.", path);
		return -1;
	}
	ident_of(cfg, &id);
	if (wal_format(path, (uint64_t)cfg->wal_capacity_bytes, &id, 0, fwhy, sizeof(fwhy)) != 0) {
		snprintf(why, whylen, "cannot format the blank WAL device %s: %s", path, fwhy);
		return -1;
	}
	log_info("main", "formatted the blank WAL device %s (sluice.wal.format.if.blank)", path);
	return 0;
}

/* PID 1: the init duties, the broker, then power off.  Never returns. */
/*
 * init's DHCP hook: net/netif.c on the NIC init chose.  "Not found" means
 * something else to init (a NIC left down on purpose), so it is passed on
 * as -ENODEV.  The lease is not renewed: slirp's lasts a day and an EC2
 * instance keeps its address.
 */
static struct netif_lease pid1_lease;

static int pid1_dhcp(const char *ifname, int timeout_ms, char *why, size_t whylen)
{
	struct netif_opts o = { .ifname = ifname, .timeout_ms = timeout_ms };
	int rc = netif_configure_opts(&o, &pid1_lease);

	if (rc != 0) {
		snprintf(why, whylen, "%s", sl_strerror(rc));
		return rc == SL_E_NOTFOUND ? -ENODEV : rc;
	}
	return 0;
}

static void pid1(void) __attribute__((noreturn));
static void pid1(void)
{
	struct config cfg;
	char why[1024];
	int rc;

	init_signals();
	/* kernel/ includes nothing above it: the IMDS client comes in from here. */
	init_sys.userdata = userdata_fetch;
	init_sys.configure_nic = pid1_dhcp;
	init_boot_or_poweroff(&cfg);
	log_info("main", "sluice %s", SLUICE_VERSION);
	why[0] = 0;
	if (pid1_wal(&cfg, why, sizeof(why)) != 0) {
		config_free(&cfg);
		init_fatal(why);
	}
	rc = run_broker(&cfg, 1);
	config_free(&cfg);
	if (rc == 2)
		init_fatal("the broker could not start: the reason is logged above");
	init_poweroff(rc == 0 ? "the broker stopped" : "the broker stopped after an error");
}

static int is_command(const char *s)
{
	return strcmp(s, "serve") == 0 || strcmp(s, "format") == 0 || strcmp(s, "version") == 0 ||
	       strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

int main(int argc, char **argv)
{
	config_objects_url_check = s3url_check;
	/*
	 * Started by the kernel as /init: PID 1 and no subcommand (the kernel
	 * passes stray command-line words as arguments, so any non-command is
	 * ignored).  PID 1 with a subcommand is a container running
	 * `sluice serve`: no machine to boot or power off there.
	 */
	if (getpid() == 1 && (argc < 2 || !is_command(argv[1])))
		pid1();
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
