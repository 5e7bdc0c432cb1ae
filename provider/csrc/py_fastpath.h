/* py_fastpath.h: installs the Python fast-path builtins into wpptrace._core (py_fastpath.c). */
#ifndef WPPTRACE_PY_FASTPATH_H
#define WPPTRACE_PY_FASTPATH_H
int wpptrace_py_install(void);
#endif
