/*
 * uwsgi_mules._speedups: the per-message work of signed envelopes in C.
 *
 * Optional: uwsgi_mules.envelope uses it when it is compiled and falls back
 * to the same operations in Python otherwise (same bytes, same outcomes; the
 * tests run both). It does what every offload and every received message
 * costs: pickling a call and tagging it with the instance key (sender), and
 * checking the tag, unpickling, finding the registered task and writing the
 * in-flight record (mule). The wire format is uwsgi_mules/envelope.py's:
 *
 *     PREFIX (14 bytes) + tag (16 bytes, keyed BLAKE2b of body) + body
 *     body = pickle((path, args, kwargs, target, meta))
 *
 * and the record's (uwsgi_mules/delivery/inflight.py): state byte, 3 pad
 * bytes, message length (uint32, native order), 24 bytes of counters, then
 * the message.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#include "_blake2b.h"
#include "_queue_writer.h"

#define PREFIX "\x00uwsgi-mules\x00\x02"
#define PREFIX_SIZE 14
#define TAG_SIZE 16
#define HEADER_SIZE (PREFIX_SIZE + TAG_SIZE)
#define RECORD_HEADER 32
#define RECORD_RUNNING 1

/* Codes of Signer.open() for messages that are not genuine envelopes. */
#define OPEN_NOT_OURS 0
#define OPEN_BAD_TAG 1

static PyObject *pickle_dumps = NULL;
static PyObject *pickle_loads = NULL;
static PyObject *pickle_protocol = NULL;

typedef struct {
    PyObject_HEAD
    blake2b_keyed state;
    int ready; /* 1 once __init__ absorbed a key: tp_new alone gives a zeroed, unusable state */
} SignerObject;

/* Every method starts here: an object made by Signer.__new__ without
 * __init__ has no key and must not tag anything. */
static int signer_ready(SignerObject *self) {
    if (self->ready) return 1;
    PyErr_SetString(PyExc_ValueError, "Signer was not initialised: call Signer(key)");
    return 0;
}

static int Signer_init(SignerObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"key", NULL};
    Py_buffer key;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*:Signer", kwlist, &key)) return -1;
    if (key.len < 1 || key.len > 64) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "a BLAKE2b key is 1 to 64 bytes");
        return -1;
    }
    blake2b_keyed_init(&self->state, (const uint8_t *)key.buf, (size_t)key.len, TAG_SIZE);
    PyBuffer_Release(&key);
    self->ready = 1;
    return 0;
}

/* constant time for equal lengths: the comparison does not stop early */
static int tags_equal(const uint8_t *a, const uint8_t *b) {
    uint8_t diff = 0;
    int i;
    for (i = 0; i < TAG_SIZE; i++) diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

static PyObject *Signer_tag(SignerObject *self, PyObject *data) {
    Py_buffer view;
    uint8_t out[TAG_SIZE];
    if (!signer_ready(self)) return NULL;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    blake2b_keyed_tag(&self->state, (const uint8_t *)view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, TAG_SIZE);
}

/* PREFIX + tag + body as one new bytes object */
static PyObject *seal_buffer(SignerObject *self, const char *body, Py_ssize_t size) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, HEADER_SIZE + size);
    char *p;
    if (out == NULL) return NULL;
    p = PyBytes_AS_STRING(out);
    memcpy(p, PREFIX, PREFIX_SIZE);
    blake2b_keyed_tag(&self->state, (const uint8_t *)body, (size_t)size, (uint8_t *)p + PREFIX_SIZE);
    memcpy(p + HEADER_SIZE, body, (size_t)size);
    return out;
}

static PyObject *Signer_seal(SignerObject *self, PyObject *body) {
    Py_buffer view;
    PyObject *out;
    if (!signer_ready(self)) return NULL;
    if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) return NULL;
    out = seal_buffer(self, (const char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return out;
}

/* pickle.dumps((path, args, kwargs, target, meta), HIGHEST_PROTOCOL): the
 * unsigned body of a call, or NULL with what pickle raised. */
static PyObject *pickle_call(PyObject *const *fields) {
    PyObject *call, *body;
    PyObject *dump_args[2];
    Py_ssize_t i;
    call = PyTuple_New(5);
    if (call == NULL) return NULL;
    for (i = 0; i < 5; i++) PyTuple_SET_ITEM(call, i, Py_NewRef(fields[i]));
    dump_args[0] = call;
    dump_args[1] = pickle_protocol;
    body = PyObject_Vectorcall(pickle_dumps, dump_args, 2, NULL);
    Py_DECREF(call);
    if (body != NULL && !PyBytes_Check(body)) {
        Py_DECREF(body);
        PyErr_SetString(PyExc_TypeError, "pickle.dumps did not return bytes");
        return NULL;
    }
    return body;
}

/* The signed envelope of a call (fields: path, args, kwargs, target, meta). */
static PyObject *seal_fields(SignerObject *self, PyObject *const *fields) {
    PyObject *body = pickle_call(fields), *out;
    if (body == NULL) return NULL;
    out = seal_buffer(self, PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body));
    Py_DECREF(body);
    return out;
}

/* seal_call(path, args, kwargs, target, meta): the signed envelope of a call.
 * Whatever pickle raises propagates (the caller turns it into NotOffloadable). */
static PyObject *Signer_seal_call(SignerObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!signer_ready(self)) return NULL;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "seal_call(path, args, kwargs, target, meta)");
        return NULL;
    }
    return seal_fields(self, args);
}

/* verified_body(message): the body of a genuine envelope as bytes, or None
 * (not an envelope of this format, or a bad tag). */
static PyObject *Signer_verified_body(SignerObject *self, PyObject *message) {
    Py_buffer view;
    uint8_t tag[TAG_SIZE];
    PyObject *out = NULL;
    if (!signer_ready(self)) return NULL;
    if (PyObject_GetBuffer(message, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (view.len >= HEADER_SIZE && memcmp(view.buf, PREFIX, PREFIX_SIZE) == 0) {
        const uint8_t *p = (const uint8_t *)view.buf;
        blake2b_keyed_tag(&self->state, p + HEADER_SIZE, (size_t)(view.len - HEADER_SIZE), tag);
        if (tags_equal(tag, p + PREFIX_SIZE))
            out = PyBytes_FromStringAndSize((const char *)p + HEADER_SIZE, view.len - HEADER_SIZE);
    }
    PyBuffer_Release(&view);
    if (out == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return out;
}

static void write_record(Py_buffer *record, const char *message, Py_ssize_t size) {
    char *p = (char *)record->buf;
    Py_ssize_t capacity = record->len - RECORD_HEADER;
    uint32_t length;
    if (capacity < 0) return;
    if (size > capacity) size = capacity;  /* the head names the task */
    memcpy(p + RECORD_HEADER, message, (size_t)size);
    length = (uint32_t)size;
    memcpy(p + 4, &length, sizeof(length));
    p[1] = p[2] = p[3] = 0;
    p[0] = RECORD_RUNNING;  /* last: the state says the message is complete */
}

/* open(message, tasks, record) -> 0 | 1 | (func, path, args, kwargs, target, meta)
 *
 * 0: not an envelope of this format (not even its prefix); 1: the prefix but
 * a bad tag or too short (never unpickled). Otherwise the verified body is
 * unpickled (an undecodable body raises what pickle raised, or ValueError if
 * it is not a 5-tuple) and func is tasks[path] when path is a str, args a
 * tuple, kwargs a dict and meta None or a dict, else None. When func is
 * found and record is not None, the message is written to the record
 * (a writable buffer) and the record marked running. */
#define DECODED 2

/* The work of open(): OPEN_NOT_OURS, OPEN_BAD_TAG, DECODED (then *decoded is
 * the body's 5-tuple, a new reference, and *func the registered task,
 * borrowed, or NULL), or -1 with an exception set. record: the in-flight
 * record's writable buffer, or NULL. */
static int decode_message(SignerObject *self, PyObject *message, PyObject *tasks, Py_buffer *record,
                          PyObject **decoded_out, PyObject **func_out) {
    PyObject *view_obj, *decoded, *path, *call_args, *kwargs, *meta;
    Py_buffer view;
    const uint8_t *p;
    uint8_t tag[TAG_SIZE];
    *decoded_out = NULL;
    *func_out = NULL;
    if (PyObject_GetBuffer(message, &view, PyBUF_SIMPLE) < 0) return -1;
    p = (const uint8_t *)view.buf;
    if (view.len < PREFIX_SIZE || memcmp(p, PREFIX, PREFIX_SIZE) != 0) {
        PyBuffer_Release(&view);
        return OPEN_NOT_OURS;
    }
    if (view.len < HEADER_SIZE) {
        PyBuffer_Release(&view);
        return OPEN_BAD_TAG;
    }
    blake2b_keyed_tag(&self->state, p + HEADER_SIZE, (size_t)(view.len - HEADER_SIZE), tag);
    if (!tags_equal(tag, p + PREFIX_SIZE)) {
        PyBuffer_Release(&view);
        return OPEN_BAD_TAG;
    }
    view_obj = PyMemoryView_FromMemory((char *)p + HEADER_SIZE, view.len - HEADER_SIZE, PyBUF_READ);
    if (view_obj == NULL) {
        PyBuffer_Release(&view);
        return -1;
    }
    decoded = PyObject_Vectorcall(pickle_loads, &view_obj, 1, NULL);
    Py_DECREF(view_obj);
    if (decoded == NULL) {
        PyBuffer_Release(&view);
        return -1;
    }
    if (!PyTuple_CheckExact(decoded) || PyTuple_GET_SIZE(decoded) != 5) {
        PyBuffer_Release(&view);
        Py_DECREF(decoded);
        PyErr_SetString(PyExc_ValueError, "the signed body is not a (path, args, kwargs, target, meta) tuple");
        return -1;
    }
    path = PyTuple_GET_ITEM(decoded, 0);
    call_args = PyTuple_GET_ITEM(decoded, 1);
    kwargs = PyTuple_GET_ITEM(decoded, 2);
    meta = PyTuple_GET_ITEM(decoded, 4);
    if (PyUnicode_CheckExact(path) && PyTuple_CheckExact(call_args) && PyDict_CheckExact(kwargs) &&
        (meta == Py_None || PyDict_CheckExact(meta))) {
        PyObject *found = PyDict_GetItemWithError(tasks, path);
        if (found != NULL) {
            *func_out = found;
            if (record != NULL) write_record(record, (const char *)p, view.len);
        } else if (PyErr_Occurred()) {
            PyBuffer_Release(&view);
            Py_DECREF(decoded);
            return -1;
        }
    }
    PyBuffer_Release(&view);
    *decoded_out = decoded;
    return DECODED;
}

/* (func or None, path, args, kwargs, target, meta) of a decoded body (steals decoded) */
static PyObject *opened_tuple(PyObject *decoded, PyObject *func) {
    PyObject *out = PyTuple_Pack(6, func ? func : Py_None, PyTuple_GET_ITEM(decoded, 0), PyTuple_GET_ITEM(decoded, 1),
                                 PyTuple_GET_ITEM(decoded, 2), PyTuple_GET_ITEM(decoded, 3),
                                 PyTuple_GET_ITEM(decoded, 4));
    Py_DECREF(decoded);
    return out;
}

/* open() on one message: an int code or the opened tuple; NULL with an exception */
static PyObject *open_message(SignerObject *self, PyObject *message, PyObject *tasks, Py_buffer *record) {
    PyObject *decoded, *func;
    int status = decode_message(self, message, tasks, record, &decoded, &func);
    if (status < 0) return NULL;
    if (status != DECODED) return PyLong_FromLong(status);
    return opened_tuple(decoded, func);
}

static PyObject *Signer_open(SignerObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!signer_ready(self)) return NULL;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "open(message, tasks, record)");
        return NULL;
    }
    if (!PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "open(): tasks must be a dict");
        return NULL;
    }
    if (args[2] == Py_None) return open_message(self, args[0], args[1], NULL);
    {
        Py_buffer record;
        PyObject *out;
        if (PyObject_GetBuffer(args[2], &record, PyBUF_WRITABLE) < 0) return NULL;
        out = open_message(self, args[0], args[1], &record);
        PyBuffer_Release(&record);
        return out;
    }
}

/* What Signer.serve() stopped for (the third item of its result). */
#define SERVE_BATCH 0   /* it read `batch` messages */
#define SERVE_IDLE 1    /* get() returned no message (a timeout, or a signal was handled): value */
#define SERVE_STOP 2    /* stop.signum is set */
#define SERVE_SLOW 3    /* a message the Python loop handles: value = (message, opened) */
#define SERVE_FAILED 4  /* a task raised: value = (exception, path, args, kwargs); record still running */

static PyObject *serve_result(Py_ssize_t taken, Py_ssize_t ran, int kind, PyObject *value) {
    /* steals value */
    PyObject *out;
    if (value == NULL) return NULL;
    out = Py_BuildValue("(nniN)", taken, ran, kind, value);
    return out;
}

/* The pending exception as an object (its traceback attached), cleared; a new reference. */
static PyObject *take_exception(void) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL && traceback != NULL) PyException_SetTraceback(value, traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value != NULL ? value : Py_NewRef(Py_None);
}

/* serve()'s arguments, checked, and what the loop holds for the whole call. */
typedef struct {
    PyObject *get, *first_args, *loop_args, *tasks, *record, *stop;
    Py_ssize_t batch;
    PyObject *signum_name;   /* "signum", read on stop before each message */
    Py_buffer record_view;   /* the record's buffer, held for the whole call: no export per message */
    Py_buffer *record_buf;   /* &record_view, or NULL when record is None */
} ServeLoop;

/* Fill loop from serve()'s arguments; -1 with a TypeError when they are malformed. */
static int serve_parse(ServeLoop *loop, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "serve(get, first_args, args, tasks, record, stop, batch)");
        return -1;
    }
    loop->get = args[0];
    loop->first_args = args[1];
    loop->loop_args = args[2];
    loop->tasks = args[3];
    loop->record = args[4];
    loop->stop = args[5];
    loop->batch = PyLong_AsSsize_t(args[6]);
    if (loop->batch == -1 && PyErr_Occurred()) return -1;
    if (!PyTuple_Check(loop->first_args) || !PyTuple_Check(loop->loop_args) || !PyDict_Check(loop->tasks)) {
        PyErr_SetString(PyExc_TypeError, "serve(): get arguments must be tuples and tasks a dict");
        return -1;
    }
    return 0;
}

/* Before reading a message: 1 and *why (SERVE_STOP, SERVE_BATCH) when the
 * loop ends, 0 when it goes on, -1 on an error (a signal handler raised). */
static int serve_ends(ServeLoop *loop, Py_ssize_t taken, int *why) {
    PyObject *signum;
    int stopping;
    if (PyErr_CheckSignals() < 0) return -1;
    signum = PyObject_GetAttr(loop->stop, loop->signum_name);
    if (signum == NULL) return -1;
    stopping = PyObject_IsTrue(signum);
    Py_DECREF(signum);
    if (stopping < 0) return -1;
    if (stopping) {
        *why = SERVE_STOP;
        return 1;
    }
    if (taken >= loop->batch) {
        *why = SERVE_BATCH;
        return 1;
    }
    return 0;
}

/* Open and run one message (steals it): 1 when its task returned (the loop
 * goes on), else 0 with *out the loop's result (SERVE_SLOW, SERVE_FAILED),
 * or NULL with an exception set. */
static int serve_message(SignerObject *self, ServeLoop *loop, PyObject *message, Py_ssize_t taken,
                         Py_ssize_t ran, PyObject **out) {
    PyObject *decoded, *func, *result, *call_kwargs;
    int status = decode_message(self, message, loop->tasks, loop->record_buf, &decoded, &func);
    if (status < 0) {  /* undecodable: the exception goes to the Python loop */
        *out = serve_result(taken, ran, SERVE_SLOW, Py_BuildValue("(NN)", message, take_exception()));
        return 0;
    }
    if (status != DECODED) {
        *out = serve_result(taken, ran, SERVE_SLOW, Py_BuildValue("(Nl)", message, (long)status));
        return 0;
    }
    call_kwargs = PyTuple_GET_ITEM(decoded, 2);
    /* metadata, unknown tasks and non-str keywords go to the Python loop (whose TypeError
     * has the traceback users know) */
    if (func == NULL || PyTuple_GET_ITEM(decoded, 4) != Py_None ||
        (PyDict_GET_SIZE(call_kwargs) && !PyArg_ValidateKeywordArguments(call_kwargs))) {
        PyErr_Clear();
        *out = serve_result(taken, ran, SERVE_SLOW, Py_BuildValue("(NN)", message, opened_tuple(decoded, func)));
        return 0;
    }
    Py_DECREF(message);
    result = PyObject_Call(func, PyTuple_GET_ITEM(decoded, 1), PyDict_GET_SIZE(call_kwargs) ? call_kwargs : NULL);
    if (result == NULL) {
        PyObject *failed = Py_BuildValue("(NOOO)", take_exception(), PyTuple_GET_ITEM(decoded, 0),
                                         PyTuple_GET_ITEM(decoded, 1), call_kwargs);
        Py_DECREF(decoded);
        *out = serve_result(taken, ran, SERVE_FAILED, failed);
        return 0;
    }
    Py_DECREF(result);
    Py_DECREF(decoded);
    if (loop->record_buf != NULL && loop->record_buf->len > 0) ((char *)loop->record_buf->buf)[0] = 0;  /* idle */
    return 1;
}

/* serve(get, first_args, args, tasks, record, stop, batch) -> (taken, ran, why, value)
 *
 * The programmed mule's receive loop for the common case: calls
 * get(*first_args), then get(*args), opens each message (see open()), calls
 * a registered task with no metadata, marks the record idle after it, and
 * goes on until one of the SERVE_* reasons. taken counts messages read, ran
 * tasks that returned. Python signal handlers run between messages. */
static PyObject *Signer_serve(SignerObject *self, PyObject *const *args, Py_ssize_t nargs) {
    ServeLoop loop;
    Py_ssize_t taken = 0, ran = 0;
    PyObject *out = NULL;
    if (!signer_ready(self) || serve_parse(&loop, args, nargs) < 0) return NULL;
    loop.signum_name = PyUnicode_InternFromString("signum");
    if (loop.signum_name == NULL) return NULL;
    loop.record_buf = NULL;
    if (loop.record != Py_None) {
        if (PyObject_GetBuffer(loop.record, &loop.record_view, PyBUF_WRITABLE) < 0) {
            Py_DECREF(loop.signum_name);
            return NULL;
        }
        loop.record_buf = &loop.record_view;
    }
    for (;;) {
        PyObject *message;
        int why = SERVE_BATCH, ends = serve_ends(&loop, taken, &why);
        if (ends < 0) break;
        if (ends) {
            out = serve_result(taken, ran, why, Py_NewRef(Py_None));
            break;
        }
        message = PyObject_Call(loop.get, taken ? loop.loop_args : loop.first_args, NULL);
        if (message == NULL) break;
        if (message == Py_None || !PyBytes_Check(message) || PyBytes_GET_SIZE(message) == 0) {
            out = serve_result(taken, ran, SERVE_IDLE, message);
            break;
        }
        taken++;
        if (!serve_message(self, &loop, message, taken, ran, &out)) break;
        ran++;
    }
    if (loop.record_buf != NULL) PyBuffer_Release(loop.record_buf);
    Py_DECREF(loop.signum_name);
    return out;
}

/* CallSender: one offloaded function's send path for one backend, in one C
 * call. sender(args, kwargs) pickles (path, args, kwargs, target, meta),
 * signs it and, when it fits `limit`, calls send(envelope, target). It
 * returns True once send() said so; the envelope (bytes) when it was not
 * queued (too large, send() returned a false value or raised ValueError: the
 * caller's slow path says why or waits for room); False when pickling or
 * sealing raised an Exception (cleared: the caller pickles again to name
 * the argument). Other exceptions of send() propagate. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    SignerObject *signer;
    PyObject *fields[5]; /* path, NULL (args), NULL (kwargs), target, meta */
    PyObject *send;
    Py_ssize_t limit;
} CallSenderObject;

/* send(envelope, target): True once queued; the envelope when not, or NULL */
static PyObject *call_sender_send(CallSenderObject *self, PyObject *payload) {
    PyObject *send_args[2] = {payload, self->fields[3]};
    PyObject *sent;
    int queued = -1;
    sent = PyObject_Vectorcall(self->send, send_args, 2, NULL);
    if (sent != NULL) {
        queued = PyObject_IsTrue(sent);
        Py_DECREF(sent);
    }
    if (queued > 0) {
        Py_DECREF(payload);
        Py_RETURN_TRUE;
    }
    if (queued == 0) return payload;
    if (PyErr_ExceptionMatches(PyExc_ValueError)) {  /* a bad target: the slow path names it */
        PyErr_Clear();
        return payload;
    }
    Py_DECREF(payload);
    return NULL;
}

static PyObject *CallSender_vectorcall(CallSenderObject *self, PyObject *const *args, size_t nargsf,
                                       PyObject *kwnames) {
    PyObject *fields[5], *payload;
    if (PyVectorcall_NARGS(nargsf) != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "CallSender(args, kwargs)");
        return NULL;
    }
    fields[0] = self->fields[0];
    fields[1] = args[0];
    fields[2] = args[1];
    fields[3] = self->fields[3];
    fields[4] = self->fields[4];
    payload = seal_fields(self->signer, fields);
    if (payload == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return NULL;
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    if (PyBytes_GET_SIZE(payload) > self->limit) return payload;
    return call_sender_send(self, payload);
}

static int CallSender_traverse(CallSenderObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->signer);
    Py_VISIT(self->fields[0]);
    Py_VISIT(self->fields[3]);
    Py_VISIT(self->fields[4]);
    Py_VISIT(self->send);
    return 0;
}

static int CallSender_clear(CallSenderObject *self) {
    Py_CLEAR(self->signer);
    Py_CLEAR(self->fields[0]);
    Py_CLEAR(self->fields[3]);
    Py_CLEAR(self->fields[4]);
    Py_CLEAR(self->send);
    return 0;
}

static void CallSender_dealloc(CallSenderObject *self) {
    PyObject_GC_UnTrack(self);
    CallSender_clear(self);
    PyObject_GC_Del(self);
}

static PyTypeObject CallSenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uwsgi_mules._speedups.CallSender",
    .tp_basicsize = sizeof(CallSenderObject),
    .tp_dealloc = (destructor)CallSender_dealloc,
    .tp_vectorcall_offset = offsetof(CallSenderObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A call's send path (Signer.sender()): sender(args, kwargs) -> True, the unsent envelope, or False.",
    .tp_traverse = (traverseproc)CallSender_traverse,
    .tp_clear = (inquiry)CallSender_clear,
};

/* sender(path, target, meta, send, limit) -> CallSender (see above) */
static PyObject *Signer_sender(SignerObject *self, PyObject *const *args, Py_ssize_t nargs) {
    CallSenderObject *sender;
    Py_ssize_t limit;
    if (!signer_ready(self)) return NULL;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "sender(path, target, meta, send, limit)");
        return NULL;
    }
    if (!PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "sender(): send must be callable");
        return NULL;
    }
    limit = PyLong_AsSsize_t(args[4]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    sender = PyObject_GC_New(CallSenderObject, &CallSenderType);
    if (sender == NULL) return NULL;
    sender->vectorcall = (vectorcallfunc)CallSender_vectorcall;
    sender->signer = (SignerObject *)Py_NewRef(self);
    sender->fields[0] = Py_NewRef(args[0]);
    sender->fields[1] = sender->fields[2] = NULL;
    sender->fields[3] = Py_NewRef(args[1]);
    sender->fields[4] = Py_NewRef(args[2]);
    sender->send = Py_NewRef(args[3]);
    sender->limit = limit;
    PyObject_GC_Track(sender);
    return (PyObject *)sender;
}

static PyMethodDef Signer_methods[] = {
    {"tag", (PyCFunction)Signer_tag, METH_O, "tag(data) -> the 16-byte keyed BLAKE2b tag of data"},
    {"seal", (PyCFunction)Signer_seal, METH_O, "seal(body) -> PREFIX + tag + body"},
    {"seal_call", (PyCFunction)(void (*)(void))Signer_seal_call, METH_FASTCALL,
     "seal_call(path, args, kwargs, target, meta) -> the signed envelope of a call"},
    {"verified_body", (PyCFunction)Signer_verified_body, METH_O,
     "verified_body(message) -> the body of a genuine envelope, or None"},
    {"open", (PyCFunction)(void (*)(void))Signer_open, METH_FASTCALL,
     "open(message, tasks, record) -> 0 (not an envelope), 1 (bad tag) or "
     "(func, path, args, kwargs, target, meta); func is None unless registered and well formed"},
    {"serve", (PyCFunction)(void (*)(void))Signer_serve, METH_FASTCALL,
     "serve(get, first_args, args, tasks, record, stop, batch) -> (taken, ran, why, value): "
     "the programmed mule's receive loop for registered tasks without metadata"},
    {"sender", (PyCFunction)(void (*)(void))Signer_sender, METH_FASTCALL,
     "sender(path, target, meta, send, limit) -> a CallSender: sender(args, kwargs) -> True once "
     "send(envelope, target) queued it, the envelope when not, False when pickling failed"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SignerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uwsgi_mules._speedups.Signer",
    .tp_basicsize = sizeof(SignerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Signer(key): signs and opens envelopes with one instance key (keyed BLAKE2b, 16-byte tags).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Signer_init,
    .tp_methods = Signer_methods,
};

/* blake2b_impl(name=None) -> "avx2" or "scalar": the BLAKE2b compression in
 * use, after choosing "scalar", "avx2" (when the CPU has it) or "auto". */
static PyObject *speedups_blake2b_impl(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const char *name = NULL;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "blake2b_impl(name=None)");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        name = PyUnicode_AsUTF8(args[0]);
        if (name == NULL) return NULL;
        if (strcmp(name, "scalar") != 0 && strcmp(name, "avx2") != 0 && strcmp(name, "auto") != 0) {
            PyErr_SetString(PyExc_ValueError, "blake2b_impl(): 'scalar', 'avx2' or 'auto'");
            return NULL;
        }
    }
    return PyUnicode_FromString(blake2b_choose(name));
}

static PyMethodDef speedups_functions[] = {
    {"blake2b_impl", (PyCFunction)(void (*)(void))speedups_blake2b_impl, METH_FASTCALL,
     "blake2b_impl(name=None) -> the BLAKE2b compression in use ('avx2' or 'scalar'); name chooses "
     "'scalar', 'avx2' (when supported) or 'auto'"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "uwsgi_mules._speedups",
    .m_methods = speedups_functions,
    .m_doc = "The per-message work of signed envelopes in C (optional; envelope.py falls back to Python).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *module, *pickle;
    if (PyType_Ready(&SignerType) < 0 || PyType_Ready(&QueueWriterType) < 0 || PyType_Ready(&CallSenderType) < 0)
        return NULL;
    pickle = PyImport_ImportModule("pickle");
    if (pickle == NULL) return NULL;
    Py_XSETREF(pickle_dumps, PyObject_GetAttrString(pickle, "dumps"));
    Py_XSETREF(pickle_loads, PyObject_GetAttrString(pickle, "loads"));
    Py_XSETREF(pickle_protocol, PyObject_GetAttrString(pickle, "HIGHEST_PROTOCOL"));
    Py_DECREF(pickle);
    if (pickle_dumps == NULL || pickle_loads == NULL || pickle_protocol == NULL) return NULL;
    module = PyModule_Create(&speedups_module);
    if (module == NULL) return NULL;
    Py_INCREF(&SignerType);
    Py_INCREF(&QueueWriterType);
    if (PyModule_AddObject(module, "Signer", (PyObject *)&SignerType) < 0 ||
        PyModule_AddObject(module, "QueueWriter", (PyObject *)&QueueWriterType) < 0 ||
        PyModule_AddObject(module, "PREFIX", PyBytes_FromStringAndSize(PREFIX, PREFIX_SIZE)) < 0 ||
        PyModule_AddIntConstant(module, "TAG_SIZE", TAG_SIZE) < 0 ||
        PyModule_AddIntConstant(module, "RECORD_HEADER", RECORD_HEADER) < 0 ||
        PyModule_AddIntConstant(module, "NOT_OURS", OPEN_NOT_OURS) < 0 ||
        PyModule_AddIntConstant(module, "BAD_TAG", OPEN_BAD_TAG) < 0 ||
        PyModule_AddIntConstant(module, "SERVE_BATCH", SERVE_BATCH) < 0 ||
        PyModule_AddIntConstant(module, "SERVE_IDLE", SERVE_IDLE) < 0 ||
        PyModule_AddIntConstant(module, "SERVE_STOP", SERVE_STOP) < 0 ||
        PyModule_AddIntConstant(module, "SERVE_SLOW", SERVE_SLOW) < 0 ||
        PyModule_AddIntConstant(module, "SERVE_FAILED", SERVE_FAILED) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
