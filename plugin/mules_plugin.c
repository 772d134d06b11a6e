/*
 * mules_plugin.c - a generic uWSGI 2.0 plugin for uwsgi-mules.
 *
 * What it adds to a uWSGI instance that has mules:
 *
 *   - the exact mule/farm layout (mule count, mule programs, farm names and
 *     members, --mule-msg-size), readable from any process;
 *   - the depth of every mule queue, farm queue and of the shared queue:
 *     payload bytes (FIONREAD on the reader end), messages (counted with
 *     MSG_PEEK + SO_PEEK_OFF) and kernel memory used / allowed
 *     (SIOCOUTQ and SO_SNDBUF on the writer end);
 *   - a send that waits for room up to a timeout instead of failing at once;
 *   - per-queue counters (sent, refused, received) and per-mule "taken"
 *     counters, kept in shared memory;
 *   - all of the above as uWSGI metrics ("mules_plugin.*"), visible in the
 *     stats server and in --metrics-dir files when metrics are enabled.
 *
 * Python reaches it through ctypes: uWSGI dlopen()s plugins with
 * RTLD_GLOBAL, so the exported mules_plugin_* functions below are visible
 * to ctypes.CDLL(None) in the master, the workers and the mules.  No
 * function here touches Python or the GIL (ctypes releases the GIL around
 * every call), and every function is safe to call from several threads.
 *
 * Queues (see core/mule.c): each queue is a non-blocking AF_UNIX
 * SOCK_SEQPACKET socketpair created by the master; writers write to
 * queue_pipe[0], mules read from queue_pipe[1].  Workers close the reader
 * ends after fork, so the plugin keeps its own duplicates of them (taken in
 * the master before any fork) to measure depths from every process.
 */

#include <uwsgi.h>
#include <linux/sockios.h>
#include <pthread.h>

extern struct uwsgi_server uwsgi;

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

/* bumped when an exported signature or struct changes */
#define MP_ABI_VERSION 2

/* queue kinds, as passed by callers */
#define MP_SHARED 0
#define MP_MULE 1
#define MP_FARM 2

/* send_wait results besides 1 (sent) and 0 (refused: full until the deadline) */
#define MP_ERR_NOT_READY -1	/* plugin not initialized / no mules */
#define MP_ERR_TARGET -2	/* no such mule or farm */
#define MP_ERR_TOO_BIG -3	/* larger than the queue can ever hold */
#define MP_ERR_IO -4		/* any other socket error */

/* longest single poll() while waiting for room: SEQPACKET sockets only
 * report POLLOUT once 3/4 of the buffer is free, so we also retry on a
 * short clock to catch smaller amounts of room */
#define MP_POLL_SLICE_MS 10

/* safety bound on the message-counting loop */
#define MP_MAX_COUNT 1000000

/* counters of one queue (shared memory, updated atomically) */
struct mp_counters {
	int64_t sent;
	int64_t refused;
	int64_t received;
	int64_t taken;		/* mules only: messages the mule took from any of its queues */
};

/* what a caller gets back for one queue; -1 means "unknown" */
struct mules_plugin_queue_info {
	int64_t sent;
	int64_t refused;
	int64_t received;
	int64_t taken;
	int64_t depth_bytes;
	int64_t depth_messages;
	int64_t mem_used;
	int64_t mem_limit;
};

/* shared by all processes (allocated by the master before forking) */
struct mp_shared {
	pthread_mutex_t peek_lock;	/* SO_PEEK_OFF is per socket: one counter at a time */
	struct mp_counters q[];		/* slot 0 shared, 1..M mules, M+1..M+F farms */
};

/* a metric's view of a queue */
struct mp_metric_ref {
	int slot;
	int what;
};
enum { MP_M_DEPTH_BYTES, MP_M_DEPTH_MESSAGES, MP_M_MEM_USED };

static struct mp_shared *mp_shm;	/* NULL until post_init */
static int mp_slots;			/* 1 + mules + farms, fixed at post_init */
static int mp_mules;			/* mule count seen at post_init */
static int mp_farms;			/* farm count seen at post_init */
static int *mp_writer;			/* per slot: writer fd (uWSGI's) */
static int *mp_reader;			/* per slot: our duplicate of the reader fd */
static volatile int mp_ready;		/* 1 once the fds are known (preinit_apps) */

/* -- helpers ------------------------------------------------------------- */

static double mp_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* map (kind, id) to a slot; mule ids are 1-based, farm ids 1-based indexes */
static int mp_slot(int kind, int id) {
	if (kind == MP_SHARED || (kind == MP_MULE && id == 0))
		return 0;
	if (kind == MP_MULE && id >= 1 && id <= mp_mules)
		return id;
	if (kind == MP_FARM && id >= 1 && id <= mp_farms)
		return mp_mules + id;
	return -1;
}

static void mp_lock(void) {
	int ret = pthread_mutex_lock(&mp_shm->peek_lock);
	/* a process died while holding it: the state it guards is a socket
	 * option we always overwrite, so simply take the lock over */
	if (ret == EOWNERDEAD)
		pthread_mutex_consistent(&mp_shm->peek_lock);
}

static void mp_unlock(void) {
	pthread_mutex_unlock(&mp_shm->peek_lock);
}

/*
 * Count the messages waiting on a reader socket without consuming them.
 * Each MSG_PEEK|MSG_TRUNC recv at peek offset `off` returns the length of
 * the message starting there; adding it moves to the next message.  Exact
 * while nobody reads the queue; while a mule reads concurrently the count
 * may miss the messages consumed during the walk.  Zero-length messages
 * are only seen by the first walk after they arrive (kernel "peeked" flag).
 */
static int64_t mp_count_messages(int fd) {
	char dummy;
	int64_t count = 0;
	int off = 0;
	int disable = -1;

	mp_lock();
	while (count < MP_MAX_COUNT) {
		if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off))) {
			count = -1;
			break;
		}
		ssize_t len = recv(fd, &dummy, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (len < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				count = -1;
			break;
		}
		count++;
		off += (int) len;
	}
	setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &disable, sizeof(disable));
	mp_unlock();
	return count;
}

static int64_t mp_ioctl(int fd, unsigned long request) {
	int value = 0;
	if (fd < 0 || ioctl(fd, request, &value))
		return -1;
	return value;
}

static int64_t mp_sndbuf(int fd) {
	int value = 0;
	socklen_t len = sizeof(value);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, &len))
		return -1;
	return value;
}

/* -- exported API (called through ctypes) --------------------------------- */

int mules_plugin_abi_version(void) {
	return MP_ABI_VERSION;
}

/* 1 when the plugin can serve requests in this process */
int mules_plugin_ready(void) {
	return mp_ready && mp_shm != NULL;
}

int mules_plugin_mule_count(void) {
	return mp_mules;
}

int mules_plugin_farm_count(void) {
	return mp_farms;
}

/* --mule-msg-size as configured (0: kernel default) */
int mules_plugin_msg_size(void) {
	return uwsgi.mule_msg_size;
}

/* SO_SNDBUF of the shared queue's writer end, -1 without mules */
int mules_plugin_socket_buffer(void) {
	if (!mules_plugin_ready() || mp_mules < 1)
		return -1;
	return (int) mp_sndbuf(mp_writer[0]);
}

/* copy mule `id`'s program (the --mule value) into buf; returns its length,
 * 0 for a signal-only mule, -1 for an unknown mule or a too small buffer */
int mules_plugin_mule_program(int id, char *buf, int size) {
	struct uwsgi_string_list *usl = uwsgi.mules_patches;
	int i;
	if (id < 1 || id > uwsgi.mules_cnt || size < 1)
		return -1;
	for (i = 1; usl && i < id; i++)
		usl = usl->next;
	buf[0] = 0;
	if (!usl || !usl->value)
		return 0;
	int len = (int) strlen(usl->value);
	if (len >= size)
		return -1;
	memcpy(buf, usl->value, len + 1);
	return len;
}

/* copy farm `index`'s name (1-based) into buf; returns its length or -1 */
int mules_plugin_farm_name(int index, char *buf, int size) {
	if (!uwsgi.farms || index < 1 || index > uwsgi.farms_cnt || size < 1)
		return -1;
	int len = (int) strlen(uwsgi.farms[index - 1].name);
	if (len >= size)
		return -1;
	memcpy(buf, uwsgi.farms[index - 1].name, len + 1);
	return len;
}

/* 1-based index of the farm called `name`, 0 if there is none */
int mules_plugin_farm_index(const char *name) {
	int i;
	if (!uwsgi.farms || !name)
		return 0;
	for (i = 0; i < uwsgi.farms_cnt; i++) {
		if (!strcmp(uwsgi.farms[i].name, name))
			return i + 1;
	}
	return 0;
}

/* write up to `max` member mule ids of farm `index` into ids, in config
 * order; returns the number of members (may exceed max) or -1 */
int mules_plugin_farm_mules(int index, int *ids, int max) {
	if (!uwsgi.farms || index < 1 || index > uwsgi.farms_cnt)
		return -1;
	int n = 0;
	struct uwsgi_mule_farm *umf;
	for (umf = uwsgi.farms[index - 1].mules; umf; umf = umf->next) {
		if (n < max)
			ids[n] = umf->mule->id;
		n++;
	}
	return n;
}

/*
 * Send one message, waiting up to `timeout` seconds for room in the queue.
 * Returns 1 when queued, 0 when the queue stayed full until the deadline,
 * or a negative MP_ERR_* code.  Refusals (0, MP_ERR_TOO_BIG) are counted.
 * Holds no lock and touches no Python state.
 */
int mules_plugin_send_wait(int kind, int id, const char *msg, size_t len, double timeout) {
	if (!mules_plugin_ready() || mp_mules < 1)
		return MP_ERR_NOT_READY;
	int slot = mp_slot(kind, id);
	if (slot < 0)
		return MP_ERR_TARGET;
	int fd = mp_writer[slot];
	/* NaN and negative timeouts mean "do not wait"; inf waits forever */
	double deadline = mp_now() + (timeout > 0 ? timeout : 0);
	int result = 0;

	for (;;) {
		ssize_t sent = send(fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (sent == (ssize_t) len) {
			__atomic_add_fetch(&mp_shm->q[slot].sent, 1, __ATOMIC_RELAXED);
			return 1;
		}
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			double remaining = deadline - mp_now();
			if (!(remaining > 0))
				break;
			/* compared as a double first: a remaining time of inf or
			 * over INT_MAX ms must not be cast (a negative poll
			 * timeout blocks until POLLOUT, which needs 3/4 free) */
			int wait_ms = remaining * 1000.0 >= MP_POLL_SLICE_MS ? MP_POLL_SLICE_MS : (int) (remaining * 1000.0) + 1;
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			poll(&pfd, 1, wait_ms);	/* woken early when room appears */
			continue;
		}
		/* EMSGSIZE: can never fit; anything else: give up at once */
		result = (sent < 0 && errno == EMSGSIZE) ? MP_ERR_TOO_BIG : MP_ERR_IO;
		break;
	}
	__atomic_add_fetch(&mp_shm->q[slot].refused, 1, __ATOMIC_RELAXED);
	return result;
}

/* the writer end of a queue (for senders that write themselves, without
 * uWSGI's "MULE MSG QUEUE IS FULL" log line); -1 if unknown */
int mules_plugin_writer_fd(int kind, int id) {
	if (!mules_plugin_ready() || mp_mules < 1)
		return -1;
	int slot = mp_slot(kind, id);
	return slot < 0 ? -1 : mp_writer[slot];
}

/* `count` messages sent to queue (kind, id) by a sender that wrote itself */
int mules_plugin_count_sent_n(int kind, int id, int count) {
	if (!mp_shm || count < 0)
		return -1;
	int slot = mp_slot(kind, id);
	if (slot < 0)
		return -1;
	__atomic_add_fetch(&mp_shm->q[slot].sent, count, __ATOMIC_RELAXED);
	return 0;
}

/* fill `out` for one queue; returns 0, or -1 for an unknown queue */
int mules_plugin_queue_info(int kind, int id, struct mules_plugin_queue_info *out) {
	if (!mules_plugin_ready() || mp_mules < 1)
		return -1;
	int slot = mp_slot(kind, id);
	if (slot < 0)
		return -1;
	struct mp_counters *c = &mp_shm->q[slot];
	out->sent = __atomic_load_n(&c->sent, __ATOMIC_RELAXED);
	out->refused = __atomic_load_n(&c->refused, __ATOMIC_RELAXED);
	out->received = __atomic_load_n(&c->received, __ATOMIC_RELAXED);
	out->taken = __atomic_load_n(&c->taken, __ATOMIC_RELAXED);
	out->depth_bytes = mp_ioctl(mp_reader[slot], FIONREAD);
	out->depth_messages = mp_reader[slot] < 0 ? -1 : mp_count_messages(mp_reader[slot]);
	out->mem_used = mp_ioctl(mp_writer[slot], SIOCOUTQ);
	out->mem_limit = mp_sndbuf(mp_writer[slot]);
	return 0;
}

/* the caller read one message from queue (kind, id); returns 0 or -1 */
int mules_plugin_count_received(int kind, int id) {
	if (!mp_shm)
		return -1;
	int slot = mp_slot(kind, id);
	if (slot < 0)
		return -1;
	__atomic_add_fetch(&mp_shm->q[slot].received, 1, __ATOMIC_RELAXED);
	return 0;
}

/* mule `mule_id` took one message from one of its queues, source unknown
 * (uwsgi.mule_get_msg() does not say which); returns 0 or -1 */
/* `count` messages taken by a mule at once (mule loops batch their reports) */
int mules_plugin_count_taken_n(int mule_id, int count) {
	if (!mp_shm || mule_id < 1 || mule_id > mp_mules || count < 0)
		return -1;
	__atomic_add_fetch(&mp_shm->q[mule_id].taken, count, __ATOMIC_RELAXED);
	return 0;
}

int mules_plugin_count_taken(int mule_id) {
	return mules_plugin_count_taken_n(mule_id, 1);
}

/* -- metrics ----------------------------------------------------------------- */

/* collector for depth metrics, run by the master's metrics thread */
static int64_t mp_collect(struct uwsgi_metric *metric) {
	struct mp_metric_ref *ref = (struct mp_metric_ref *) metric->custom;
	if (!ref || !mp_ready)
		return 0;
	int64_t value = -1;
	switch (ref->what) {
	case MP_M_DEPTH_BYTES:
		value = mp_ioctl(mp_reader[ref->slot], FIONREAD);
		break;
	case MP_M_DEPTH_MESSAGES:
		value = mp_reader[ref->slot] < 0 ? -1 : mp_count_messages(mp_reader[ref->slot]);
		break;
	case MP_M_MEM_USED:
		value = mp_ioctl(mp_writer[ref->slot], SIOCOUTQ);
		break;
	}
	return value < 0 ? 0 : value;
}

/* metric names allow [0-9a-zA-Z._-] only: map anything else to '_' */
static void mp_sanitize(char *name) {
	for (; *name; name++) {
		char ch = *name;
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-' || ch == '_'))
			*name = '_';
	}
}

static void mp_register_queue_metrics(int slot, const char *prefix) {
	static const char *gauges[] = { "depth_bytes", "depth_messages", "mem_used" };
	char name[512];
	int i;
	for (i = 0; i < 3; i++) {
		struct mp_metric_ref *ref = uwsgi_calloc(sizeof(struct mp_metric_ref));
		ref->slot = slot;
		ref->what = i;
		snprintf(name, sizeof(name), "%s.%s", prefix, gauges[i]);
		uwsgi_register_metric(name, NULL, UWSGI_METRIC_GAUGE, "mules_plugin", NULL, 0, ref);
	}
	struct mp_counters *c = &mp_shm->q[slot];
	snprintf(name, sizeof(name), "%s.sent", prefix);
	uwsgi_register_metric(name, NULL, UWSGI_METRIC_COUNTER, "ptr", &c->sent, 0, NULL);
	snprintf(name, sizeof(name), "%s.refused", prefix);
	uwsgi_register_metric(name, NULL, UWSGI_METRIC_COUNTER, "ptr", &c->refused, 0, NULL);
	snprintf(name, sizeof(name), "%s.received", prefix);
	uwsgi_register_metric(name, NULL, UWSGI_METRIC_COUNTER, "ptr", &c->received, 0, NULL);
	if (slot >= 1 && slot <= mp_mules) {
		snprintf(name, sizeof(name), "%s.taken", prefix);
		uwsgi_register_metric(name, NULL, UWSGI_METRIC_COUNTER, "ptr", &c->taken, 0, NULL);
	}
}

/* register every metric; farms are named from the --farm options since the
 * farm table does not exist yet (metrics are set up right after it) */
static void mp_register_metrics(void) {
	char prefix[512];
	int i;
	if (!uwsgi.has_metrics || mp_mules < 1)
		return;
	uwsgi_register_metric_collector("mules_plugin", mp_collect);
	mp_register_queue_metrics(0, "mules_plugin.shared");
	for (i = 1; i <= mp_mules; i++) {
		snprintf(prefix, sizeof(prefix), "mules_plugin.mule.%d", i);
		mp_register_queue_metrics(i, prefix);
	}
	struct uwsgi_string_list *usl = uwsgi.farms_list;
	for (i = 1; usl && i <= mp_farms; i++, usl = usl->next) {
		char *colon = strchr(usl->value, ':');
		int len = colon ? (int) (colon - usl->value) : (int) strlen(usl->value);
		snprintf(prefix, sizeof(prefix), "mules_plugin.farm.%.*s", len, usl->value);
		mp_sanitize(prefix);
		mp_register_queue_metrics(mp_mules + i, prefix);
	}
}

/* -- messages left in the queues when the master reloads or exits ------------------
 *
 * uWSGI drops its queues at a reload or an exit. By then every worker and mule
 * has exited (the master waits for them), so nothing can be sent any more:
 * whatever is still queued is saved, with the instance key that signed it, to
 * the backlog directory (the runtime directory's at a reload, where the new
 * mules look; UWSGIMULES_BACKLOG_DIR at an exit). uwsgi-mules' mules verify
 * every message with that key before replaying it.
 */

#define MP_QUEUED_MAGIC "UWSGIMULES-QUEUED-1\n"
#define MP_KEY_SIZE 32

/* the first non-empty of TMPDIR, TEMP, TMP, else /tmp: the rule of
 * uwsgi_mules.instance.temp_dir (not tempfile.gettempdir()) */
static void mp_tempdir(char *out, size_t size) {
	const char *names[] = { "TMPDIR", "TEMP", "TMP" };
	size_t i;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *value = getenv(names[i]);
		if (value && *value) {
			snprintf(out, size, "%s", value);
			return;
		}
	}
	snprintf(out, size, "/tmp");
}

/* field 22 of /proc/self/stat (the start time in clock ticks), parsed by
 * hand after the last ')' (the command name may hold spaces) */
static int mp_start_time(char *out, size_t size) {
	char stat[1024] = { 0 };
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t len = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	char *p = strrchr(stat, ')');
	if (!p)
		return -1;
	p++;
	int field;
	/* after ") " come fields 3, 4, ...: skip to the start of field 22 */
	for (field = 2; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		if (field == 21)
			break;
		while (*p && *p != ' ')
			p++;
	}
	size_t n = strcspn(p, " \n");
	if (n == 0 || n >= size)
		return -1;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

/* refuse what is not a private directory of this user (uwsgi_mules.instance.check_private) */
static int mp_check_private(int fd, const char *path) {
	struct stat st;
	if (fstat(fd, &st)) {
		uwsgi_error("mules_plugin: fstat() of the runtime directory");
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 0077)) {
		uwsgi_log("mules_plugin: ERROR %s is not a private directory of uid %d (uid %d, mode %o): refused\n",
			  path, (int) getuid(), (int) st.st_uid, (unsigned) (st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* open `name` (relative to dirfd, or a path) as a checked private directory:
 * O_NOFOLLOW, so a symbolic link put in its place is refused; -1 (logged) */
static int mp_open_private(int dirfd, const char *name, const char *shown, int create) {
	if (create && mkdirat(dirfd, name, 0700) && errno != EEXIST) {
		uwsgi_log("mules_plugin: ERROR mkdir() of %s: %s\n", shown, strerror(errno));
		return -1;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return -2;	/* not there: the caller decides whether that is worth a line */
		uwsgi_log("mules_plugin: ERROR cannot open %s: %s%s\n", shown, strerror(errno),
			  errno == ELOOP || errno == ENOTDIR ? " (a symbolic link or not a directory: refused)" : "");
		return -1;
	}
	if (mp_check_private(fd, shown)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* the runtime directory uwsgi_mules.instance computes for this master, opened
 * and checked level by level (its base too when it is the default location):
 * a descriptor, -2 when it does not exist, -1 (logged) when refused */
static int mp_open_runtime_dir(char *shown, size_t size) {
	char *configured = getenv("UWSGIMULES_RUNTIME_DIR");
	if (configured && *configured) {
		snprintf(shown, size, "%s", configured);
		return mp_open_private(AT_FDCWD, configured, shown, 0);
	}
	char base[PATH_MAX + 32], start[64];
	char *xdg = getenv("XDG_RUNTIME_DIR");
	int len;
	if (xdg && xdg[0] == '/') {
		len = snprintf(base, sizeof(base), "%s/uwsgi-mules", xdg);
	}
	else {
		char tmp[PATH_MAX];
		mp_tempdir(tmp, sizeof(tmp));
		len = snprintf(base, sizeof(base), "%s/uwsgi-mules-%d", tmp, (int) getuid());
	}
	if (len < 0 || len >= PATH_MAX) {
		snprintf(shown, size, "(a path over PATH_MAX)");
		uwsgi_log("mules_plugin: ERROR the runtime directory's path is too long\n");
		return -1;
	}
	if (mp_start_time(start, sizeof(start))) {
		uwsgi_log("mules_plugin: ERROR cannot read this master's start time from /proc/self/stat\n");
		return -1;
	}
	int basefd = mp_open_private(AT_FDCWD, base, base, 0);
	if (basefd < 0) {
		snprintf(shown, size, "%s", base);
		return basefd;
	}
	char name[96];
	snprintf(name, sizeof(name), "%d-%s", (int) getpid(), start);
	snprintf(shown, size, "%s/%s", base, name);
	int fd = mp_open_private(basefd, name, shown, 0);
	close(basefd);
	return fd;
}

/* the instance key, read with O_NOFOLLOW from the checked runtime directory,
 * and O_NONBLOCK: a FIFO put in its place is opened and refused, never waited
 * on (the master would hang at its exit): 0, or -1 with the reason in `why` */
static int mp_read_key(int runfd, unsigned char *key, char *why, size_t size) {
	int kfd = openat(runfd, "key", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (kfd < 0) {
		if (errno == ENOENT)
			snprintf(why, size, "there is no key file (no process of this instance signed an envelope)");
		else
			snprintf(why, size, "the key file cannot be opened (%s%s)", strerror(errno),
				 errno == ELOOP ? ": a symbolic link, refused" : "");
		return -1;
	}
	struct stat st;
	const char *bad = fstat(kfd, &st) ? "cannot be checked"
		: !S_ISREG(st.st_mode) ? "is not a regular file, refused"
		: (st.st_uid != getuid() || (st.st_mode & 0077)) ? "is not a file of this user with mode 0600" : NULL;
	if (bad) {
		close(kfd);
		snprintf(why, size, "the key file %s (uid %d)", bad, (int) getuid());
		return -1;
	}
	unsigned char extra[MP_KEY_SIZE + 1];
	size_t got = 0;
	while (got < sizeof(extra)) {
		ssize_t n = read(kfd, extra + got, sizeof(extra) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(kfd);
	if (got != MP_KEY_SIZE) {
		snprintf(why, size, "the key file holds %s%d bytes, not %d", got > MP_KEY_SIZE ? "more than " : "",
			 (int) (got > MP_KEY_SIZE ? MP_KEY_SIZE : got), MP_KEY_SIZE);
		return -1;
	}
	memcpy(key, extra, MP_KEY_SIZE);
	return 0;
}

static int mp_write_all(int fd, const void *data, size_t len) {
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* 1 when any queue holds a message (an empty one included), without taking it */
static int mp_anything_queued(void) {
	char dummy;
	int slot;
	for (slot = 0; slot < mp_slots; slot++) {
		if (mp_reader[slot] >= 0 && recv(mp_reader[slot], &dummy, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT) >= 0)
			return 1;
	}
	return 0;
}

/* read and drop what is queued (uWSGI drops it anyway); returns how many */
static int64_t mp_drop_all(char *buf, int64_t size) {
	int64_t dropped = 0;
	int slot;
	for (slot = 0; slot < mp_slots; slot++) {
		int64_t guard = 0;
		while (mp_reader[slot] >= 0 && guard++ < MP_MAX_COUNT && recv(mp_reader[slot], buf, size, MSG_DONTWAIT) >= 0)
			dropped++;
	}
	return dropped;
}

/* the directory the master saves queued messages to (the instance's backlog
 * directory, or the runtime directory's at a reload), opened and checked, and
 * the instance key: the directory's fd, or -1 with the reason in `why` */
static int mp_open_save_dir(unsigned char *key, char *dir, size_t dir_size, char *why, size_t why_size) {
	char runtime[PATH_MAX + 128];
	int runfd = mp_open_runtime_dir(runtime, sizeof(runtime));
	int dirfd = -1;
	if (runfd == -2)
		snprintf(why, why_size, "the runtime directory %s does not exist (no process of this instance signed an envelope)", runtime);
	else if (runfd < 0)
		snprintf(why, why_size, "the runtime directory %s is refused (see above)", runtime);
	else if (mp_read_key(runfd, key, why, why_size) == 0) {
		char *configured = getenv("UWSGIMULES_BACKLOG_DIR");
		if (uwsgi_instance_is_reloading || !configured || !*configured) {
			snprintf(dir, dir_size, "%s/backlog", runtime);
			dirfd = mp_open_private(runfd, "backlog", dir, 1);
		}
		else {
			snprintf(dir, dir_size, "%s", configured);
			dirfd = mp_open_private(AT_FDCWD, configured, dir, 1);
		}
		if (dirfd < 0)
			snprintf(why, why_size, "the backlog directory %s is refused (see above)", dir);
	}
	if (runfd >= 0)
		close(runfd);
	return dirfd;
}

/* one queued message as a backlog entry: kind (0 mule/shared, 1 farm), mule id
 * or farm name length, message length, farm name, message; 0 or -1 */
static int mp_write_entry(int fd, int slot, const char *buf, ssize_t n) {
	unsigned char kind = slot <= mp_mules ? 0 : 1;
	const char *farm = slot > mp_mules ? uwsgi.farms[slot - mp_mules - 1].name : NULL;
	uint32_t value = htonl(kind ? (uint32_t) strlen(farm) : (uint32_t) slot);
	uint32_t length = htonl((uint32_t) n);
	if (mp_write_all(fd, &kind, 1) || mp_write_all(fd, &value, 4) || mp_write_all(fd, &length, 4)
	    || (farm && mp_write_all(fd, farm, strlen(farm))) || mp_write_all(fd, buf, n))
		return -1;
	return 0;
}

/* read every queue into the open backlog file `fd`; the number of messages
 * written, or -1 when a write failed; empty messages are counted in `empty` */
static int mp_write_queues(int fd, char *buf, int64_t size, int *empty) {
	int count = 0, slot;
	for (slot = 0; slot < mp_slots; slot++) {
		if (mp_reader[slot] < 0)
			continue;
		int64_t guard = 0;
		while (guard++ < MP_MAX_COUNT) {
			ssize_t n = recv(mp_reader[slot], buf, size, MSG_DONTWAIT);
			if (n < 0)
				break;	/* EAGAIN: this queue is empty */
			if (n == 0) {
				(*empty)++;	/* a zero-length message: not an offload, the drain goes on */
				continue;
			}
			if (mp_write_entry(fd, slot, buf, n))
				return -1;
			count++;
		}
	}
	return count;
}

/* make the written temporary file `tmp` the backlog file; 0 or -1 (logged) */
static int mp_publish(int dirfd, const char *tmp, const char *dir, int count) {
	char final[96];
	snprintf(final, sizeof(final), "%020lld-%d-master.queued", (long long) (uwsgi_micros() * 1000), (int) getpid());
	if (renameat(dirfd, tmp, dirfd, final)) {
		uwsgi_error("mules_plugin: rename() of the backlog file");
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (fsync(dirfd))	/* the rename itself is durable only once the directory is */
		uwsgi_error("mules_plugin: fsync() of the backlog directory");
	uwsgi_log("mules_plugin: saved %d message(s) left in the mule queues to %s/%s\n", count, dir, final);
	return 0;
}

/* the master's last act: save what is still queued to a backlog file (uWSGI
 * would drop it), or drop it with one ERROR line saying why */
static void mp_master_cleanup(void) {
	if (!mp_ready || mp_mules < 1 || !mp_anything_queued())
		return;
	int64_t size = mules_plugin_socket_buffer();
	if (size < 65536)
		size = 65536;
	char *buf = uwsgi_malloc(size);
	char why[2 * PATH_MAX + 512], dir[PATH_MAX + 256], tmp[64];
	unsigned char key[MP_KEY_SIZE];
	int dirfd = mp_open_save_dir(key, dir, sizeof(dir), why, sizeof(why));
	if (dirfd < 0) {
		int64_t dropped = mp_drop_all(buf, size);
		free(buf);
		uwsgi_log("mules_plugin: ERROR %lld message(s) left in the mule queues are dropped: %s\n",
			  (long long) dropped, why);
		return;
	}
	snprintf(tmp, sizeof(tmp), ".writing-master-%d", (int) getpid());
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		uwsgi_log("mules_plugin: ERROR open() of %s/%s: %s\n", dir, tmp, strerror(errno));
		free(buf);
		close(dirfd);
		return;
	}
	int empty = 0;
	int count = mp_write_all(fd, MP_QUEUED_MAGIC, strlen(MP_QUEUED_MAGIC)) || mp_write_all(fd, key, MP_KEY_SIZE)
		? -1 : mp_write_queues(fd, buf, size, &empty);
	free(buf);
	if (empty)
		uwsgi_log("mules_plugin: dropped %d empty message(s) left in the mule queues (not offloads)\n", empty);
	if (count < 0 || fsync(fd)) {
		uwsgi_error("mules_plugin: writing the backlog file");
		close(fd);
		unlinkat(dirfd, tmp, 0);
	}
	else {
		close(fd);
		if (count == 0)
			unlinkat(dirfd, tmp, 0);
		else
			mp_publish(dirfd, tmp, dir, count);
	}
	close(dirfd);
}

/* -- plugin hooks ---------------------------------------------------------------- */

/* master, after option parsing, before mules and metrics are set up */
static void mp_post_init(void) {
	mp_mules = uwsgi.mules_cnt;
	mp_farms = uwsgi.farms_cnt;
	mp_slots = 1 + mp_mules + mp_farms;

	mp_shm = uwsgi_calloc_shared(sizeof(struct mp_shared) + sizeof(struct mp_counters) * mp_slots);
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&mp_shm->peek_lock, &attr);
	pthread_mutexattr_destroy(&attr);

	mp_writer = uwsgi_malloc(sizeof(int) * mp_slots);
	mp_reader = uwsgi_malloc(sizeof(int) * mp_slots);
	int i;
	for (i = 0; i < mp_slots; i++)
		mp_writer[i] = mp_reader[i] = -1;

	mp_register_metrics();
	uwsgi_log("mules_plugin: loaded (abi %d, %d mule(s), %d farm(s))\n", MP_ABI_VERSION, mp_mules, mp_farms);
}

/* keep a private copy of a reader end (workers close uWSGI's after fork) */
static int mp_dup(int fd) {
	if (fd < 0)
		return -1;
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (copy < 0)
		uwsgi_error("mules_plugin: fcntl(F_DUPFD_CLOEXEC)");
	return copy;
}

/* master, after the queues exist and before workers or mules are forked */
static void mp_preinit_apps(void) {
	int i;
	if (!mp_shm || mp_ready)
		return;
	if (mp_mules != uwsgi.mules_cnt || mp_farms != uwsgi.farms_cnt) {
		uwsgi_log("mules_plugin: layout changed after init, disabled\n");
		return;
	}
	if (mp_mules > 0) {
		mp_writer[0] = uwsgi.shared->mule_queue_pipe[0];
		mp_reader[0] = mp_dup(uwsgi.shared->mule_queue_pipe[1]);
		for (i = 0; i < mp_mules; i++) {
			mp_writer[1 + i] = uwsgi.mules[i].queue_pipe[0];
			mp_reader[1 + i] = mp_dup(uwsgi.mules[i].queue_pipe[1]);
		}
		for (i = 0; i < mp_farms; i++) {
			mp_writer[1 + mp_mules + i] = uwsgi.farms[i].queue_pipe[0];
			mp_reader[1 + mp_mules + i] = mp_dup(uwsgi.farms[i].queue_pipe[1]);
		}
	}
	mp_ready = 1;
	uwsgi_log("mules_plugin: ready (queue buffer %d bytes)\n", mules_plugin_socket_buffer());
}

/* master, at the top of every cycle: uWSGI never clears a dead mule's harakiri
 * deadlines, and during a reload or a stop it sets the dead mule's pid to 0
 * ("annihilated") instead of respawning it; an armed deadline would then
 * expire into kill(0, SIGKILL) in uwsgi_master_check_mules_deadline(), i.e.
 * the master's own process group.  A death is reaped in one cycle and the
 * deadlines are checked in a later one, so this hook always runs between. */
static void mp_master_cycle(void) {
	int i;
	for (i = 0; i < uwsgi.mules_cnt; i++) {
		struct uwsgi_mule *mule = &uwsgi.mules[i];
		if (mule->pid > 0 || (mule->harakiri <= 0 && mule->user_harakiri <= 0))
			continue;
		mule->harakiri = 0;
		mule->user_harakiri = 0;
		uwsgi_log("mules_plugin: mule %d is gone with a harakiri still armed (it died during a reload or a stop): "
			  "disarmed (uWSGI would SIGKILL pid 0, its own process group)\n", i + 1);
	}
}

struct uwsgi_plugin mules_plugin = {
	.name = "mules",
	.post_init = mp_post_init,
	.preinit_apps = mp_preinit_apps,
	.master_cleanup = mp_master_cleanup,
	.master_cycle = mp_master_cycle,
};
