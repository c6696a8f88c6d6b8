/* The sampler's high-rate fast path (sandbox.sampler.ticker): read a few single-number
 * cgroup files on a fixed tick with the GIL released, and hand the values to Python in
 * batches. At 100 Hz a Python thread pays ~80 us of wake-up per tick on a small VM (0.8% of
 * a core before it reads anything); this loop pays the kernel's wake-up only.
 *
 * run(fds, interval_ns, out_fd, stop_fd, batch, early, move) -> ticks
 *   Every interval_ns (CLOCK_MONOTONIC deadlines on a fixed grid; missed ticks are skipped,
 *   not caught up), pread each fd from offset 0 and parse a decimal integer (-1 when the read
 *   fails or holds no number). Each tick is (t_ns, v0, ..., vN-1) as native int64; every
 *   `batch` ticks the records are written to out_fd in one write; sooner, once a batch holds
 *   `early` ticks, if the first fd's value moved `move` or more since the last write (or
 *   became readable or unreadable; move 0: never sooner). Returns within ~100 ms of
 *   stop_fd becoming readable (after writing the ticks it holds) or when out_fd is closed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 8
#define MAX_BATCH 1000
#define STOP_CHECK_NS 100000000LL /* stop_fd is polled about this often (not every tick: a
                                      ppoll wait costs ~8 us more per tick than a sleep) */

static int64_t read_number(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *end;
    long long value = strtoll(buf, &end, 10);
    return end == buf ? -1 : (int64_t)value;
}

static int write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static int64_t ns(const struct timespec *t) {
    return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* Whether stop_fd is readable (or failed) now. */
static int stopped(int stop_fd) {
    struct pollfd stop = {.fd = stop_fd, .events = POLLIN};
    return poll(&stop, 1, 0) != 0;
}

/* Whether `value` moved `move` or more from `since`, or one of them is unreadable (-1). */
static int moved(int64_t value, int64_t since, long long move) {
    if ((value < 0) != (since < 0)) return 1;
    return value >= 0 && llabs(value - since) >= move;
}

static PyObject *run(PyObject *self, PyObject *args) {
    PyObject *fd_seq;
    long long interval_ns;
    long long move;
    int out_fd, stop_fd, batch, early;
    if (!PyArg_ParseTuple(args, "OLiiiiL", &fd_seq, &interval_ns, &out_fd, &stop_fd, &batch,
                          &early, &move))
        return NULL;
    PyObject *fast = PySequence_Fast(fd_seq, "fds must be a sequence of ints");
    if (fast == NULL) return NULL;
    Py_ssize_t nfds = PySequence_Fast_GET_SIZE(fast);
    if (nfds < 1 || nfds > MAX_FDS || interval_ns < 1000000 || batch < 1 || batch > MAX_BATCH
        || early < 1 || move < 0) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError,
                        "1-8 fds, interval >= 1 ms, batch 1-1000, early >= 1, move >= 0");
        return NULL;
    }
    int fds[MAX_FDS];
    for (Py_ssize_t i = 0; i < nfds; i++) {
        fds[i] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
    }
    Py_DECREF(fast);
    if (PyErr_Occurred()) return NULL;

    size_t width = (size_t)nfds + 1;
    int64_t *records = malloc(sizeof(int64_t) * width * (size_t)batch);
    if (records == NULL) return PyErr_NoMemory();
    long long ticks = 0;
    long long stop_every = STOP_CHECK_NS / interval_ns > 1 ? STOP_CHECK_NS / interval_ns : 1;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    struct timespec deadline, now;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    int filled = 0;
    int64_t written = -2; /* the first fd's value at the last write (-2: none yet) */
    for (;;) {
        int64_t next = ns(&deadline) + interval_ns;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (next < ns(&now)) /* fell behind: the next tick on the grid after now */
            next += ((ns(&now) - next) / interval_ns + 1) * interval_ns;
        deadline.tv_sec = next / 1000000000LL;
        deadline.tv_nsec = next % 1000000000LL;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR) {
        }
        int64_t *record = records + width * (size_t)filled;
        record[0] = next;
        for (Py_ssize_t i = 0; i < nfds; i++) record[i + 1] = read_number(fds[i]);
        ticks++;
        if (ticks % stop_every == 0 && stopped(stop_fd)) {
            filled++;
            break;
        }
        if (written == -2) written = record[1];
        filled++;
        int due_early = move > 0 && filled >= early && moved(record[1], written, move);
        if (filled < batch && !due_early) continue;
        if (write_all(out_fd, (const char *)records, sizeof(int64_t) * width * (size_t)filled)) {
            failed = errno != EPIPE;
            break;
        }
        filled = 0;
        written = record[1];
    }
    if (filled > 0 && !failed)
        write_all(out_fd, (const char *)records, sizeof(int64_t) * width * (size_t)filled);
    Py_END_ALLOW_THREADS
    free(records);
    if (failed) return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLongLong(ticks);
}

static PyMethodDef methods[] = {
    {"run", run, METH_VARARGS,
     "run(fds, interval_ns, out_fd, stop_fd, batch, early, move) -> ticks"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ticker", "The sampler's high-rate fast path (C).", -1, methods,
};

PyMODINIT_FUNC PyInit__ticker(void) { return PyModule_Create(&module); }
