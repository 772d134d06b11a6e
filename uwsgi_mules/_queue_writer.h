/*
 * uwsgi_mules._speedups.QueueWriter: the C twin of
 * uwsgi_mules.backends.real.QueueWriter (included by _speedups.c).
 */
#ifndef UWSGI_MULES_QUEUE_WRITER_H
#define UWSGI_MULES_QUEUE_WRITER_H

#include <Python.h>

#include <errno.h>
#include <time.h>
#include <unistd.h>

/* QueueWriter(fd, count, batch=64): writes messages straight to a queue's
 * socket (the plugin's writer fd). send() returns False for a full queue or
 * a message the socket refuses as too large, raises OSError otherwise; sends
 * are reported by calling count(n) in batches, at once when the last report
 * is a second old, and on flush(). The same as backends.real.QueueWriter. */
typedef struct {
    PyObject_HEAD
    int fd; /* -1 until __init__ (tp_new sets it): never write to a descriptor nobody gave */
    Py_ssize_t batch;
    Py_ssize_t unreported;
    double flushed_at;
    PyObject *count;
} QueueWriterObject;

static double monotonic_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static PyObject *QueueWriter_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    QueueWriterObject *self = (QueueWriterObject *)type->tp_alloc(type, 0);
    if (self != NULL) self->fd = -1;
    return (PyObject *)self;
}

/* Every method that writes or reports starts here (an object made by
 * QueueWriter.__new__ without __init__ has no queue and no counter). */
static int queue_writer_ready(QueueWriterObject *self) {
    if (self->fd >= 0 && self->count != NULL) return 1;
    PyErr_SetString(PyExc_ValueError, "QueueWriter was not initialised: call QueueWriter(fd, count)");
    return 0;
}

static int QueueWriter_init(QueueWriterObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"fd", "count", "batch", NULL};
    PyObject *count;
    int fd;
    Py_ssize_t batch = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iO|n:QueueWriter", kwlist, &fd, &count, &batch)) return -1;
    if (!PyCallable_Check(count)) {
        PyErr_SetString(PyExc_TypeError, "QueueWriter(): count must be callable");
        return -1;
    }
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "QueueWriter(): fd must be an open descriptor (>= 0)");
        return -1;
    }
    self->fd = fd;
    self->batch = batch > 0 ? batch : 1;
    self->unreported = 0;
    self->flushed_at = 0.0;
    Py_XSETREF(self->count, Py_NewRef(count));
    return 0;
}

static void QueueWriter_dealloc(QueueWriterObject *self) {
    Py_XDECREF(self->count);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *QueueWriter_flush(QueueWriterObject *self, PyObject *unused) {
    Py_ssize_t count = self->unreported;
    if (!queue_writer_ready(self)) return NULL;
    self->unreported = 0;
    self->flushed_at = monotonic_seconds();
    if (count) {
        PyObject *result = PyObject_CallFunction(self->count, "n", count);
        if (result == NULL) return NULL;
        Py_DECREF(result);
    }
    Py_RETURN_NONE;
}

static PyObject *QueueWriter_send(QueueWriterObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer view;
    ssize_t written;
    if (!queue_writer_ready(self)) return NULL;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "send(message, target=None)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    do {
        written = write(self->fd, view.buf, (size_t)view.len);
    } while (written < 0 && errno == EINTR);
    PyBuffer_Release(&view);
    if (written < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EMSGSIZE || errno == ENOBUFS) Py_RETURN_FALSE;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    self->unreported++;
    if (self->unreported >= self->batch || monotonic_seconds() - self->flushed_at >= 1.0) {
        PyObject *flushed = QueueWriter_flush(self, NULL);
        if (flushed == NULL) return NULL;
        Py_DECREF(flushed);
    }
    Py_RETURN_TRUE;
}

static PyObject *QueueWriter_get_unreported(QueueWriterObject *self, void *closure) {
    return PyLong_FromSsize_t(self->unreported);
}

static PyObject *QueueWriter_get_fd(QueueWriterObject *self, void *closure) { return PyLong_FromLong(self->fd); }

static PyMethodDef QueueWriter_methods[] = {
    {"send", (PyCFunction)(void (*)(void))QueueWriter_send, METH_FASTCALL,
     "send(message, target=None) -> True if queued, False if the queue is full or refuses the size"},
    {"flush", (PyCFunction)QueueWriter_flush, METH_NOARGS, "flush(): report the sends not reported yet"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef QueueWriter_getset[] = {
    {"unreported", (getter)QueueWriter_get_unreported, NULL, "sends not reported to count() yet", NULL},
    {"fd", (getter)QueueWriter_get_fd, NULL, "the queue socket", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject QueueWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uwsgi_mules._speedups.QueueWriter",
    .tp_basicsize = sizeof(QueueWriterObject),
    .tp_dealloc = (destructor)QueueWriter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "QueueWriter(fd, count, batch=64): writes messages straight to a queue socket, counting them.",
    .tp_new = QueueWriter_new,
    .tp_init = (initproc)QueueWriter_init,
    .tp_methods = QueueWriter_methods,
    .tp_getset = QueueWriter_getset,
};

#endif
