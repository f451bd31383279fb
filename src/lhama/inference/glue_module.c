/* glue.c's per-step calls (``lhama_glue_step_*``) as a CPython extension module, ``_lhama_glue``: the lean decode step
 * calls the glue ~113 times per token, each right after a product has streamed megabytes of weights through the
 * caches; there a ctypes call costs ~12 us and a METH_FASTCALL function ~2.5 us (docs/benchmarks.md, session 16).
 * Built with glue.c into one library by glue.py (``extension()``); the same C functions, so the same bits.
 * Arguments: Python ints (addresses, strides; None for a NULL address) and, for add_rms, a float. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

struct lhama_glue_step; /* glue.c's; only its address passes through here */
int lhama_glue_step_add_rms(const struct lhama_glue_step *s, const uint16_t *add, int add_stride,
                            const uint16_t *weight, float eps);
int lhama_glue_step_rope_write(const struct lhama_glue_step *s, const uint16_t *qkv, int stride, const uint16_t *bias,
                               uint16_t *keys, uint16_t *values);
int lhama_glue_step_silu_mul(const struct lhama_glue_step *s, const uint16_t *gate_up, int stride);

static void *address(PyObject *value) { return value == Py_None ? NULL : PyLong_AsVoidPtr(value); }

static int counted(Py_ssize_t got, Py_ssize_t wanted, const char *name) {
    if (got == wanted) return 1;
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", name, wanted, got);
    return 0;
}

static PyObject *done(int status) {
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromLong(status);
}

static PyObject *add_rms(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    if (!counted(n, 5, "add_rms")) return NULL;
    void *s = address(args[0]), *add = address(args[1]), *weight = address(args[3]);
    const int stride = (int)PyLong_AsLong(args[2]);
    const float eps = (float)PyFloat_AsDouble(args[4]);
    if (PyErr_Occurred()) return NULL;
    return done(lhama_glue_step_add_rms(s, add, stride, weight, eps));
}

static PyObject *rope_write(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    if (!counted(n, 6, "rope_write")) return NULL;
    void *s = address(args[0]), *qkv = address(args[1]), *bias = address(args[3]);
    void *keys = address(args[4]), *values = address(args[5]);
    const int stride = (int)PyLong_AsLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    return done(lhama_glue_step_rope_write(s, qkv, stride, bias, keys, values));
}

static PyObject *silu_mul(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    if (!counted(n, 3, "silu_mul")) return NULL;
    void *s = address(args[0]), *gate_up = address(args[1]);
    const int stride = (int)PyLong_AsLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    return done(lhama_glue_step_silu_mul(s, gate_up, stride));
}

static PyMethodDef methods[] = {
    {"add_rms", (PyCFunction)(void (*)(void))add_rms, METH_FASTCALL, "lhama_glue_step_add_rms"},
    {"rope_write", (PyCFunction)(void (*)(void))rope_write, METH_FASTCALL, "lhama_glue_step_rope_write"},
    {"silu_mul", (PyCFunction)(void (*)(void))silu_mul, METH_FASTCALL, "lhama_glue_step_silu_mul"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lhama_glue", "lhama's decode glue (glue.c)", -1, methods};

PyMODINIT_FUNC PyInit__lhama_glue(void) { return PyModule_Create(&module); }
