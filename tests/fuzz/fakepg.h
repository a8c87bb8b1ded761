/* tests/fuzz/fakepg.h - PGresults made in memory and the libpq accessors that
 * daemon/data/bus.c and daemon/inbox/inbox.c call (PQntuples, PQgetvalue, PQgetlength,
 * PQgetisnull), so that their fuzz targets link without libpq or a database. Every value is
 * an allocation of its own, NUL-terminated as libpq's, so a read before or past one is
 * caught by ASan; a row or column out of range aborts (libpq would return NULL). */
#ifndef HUB_FAKEPG_H
#define HUB_FAKEPG_H

#include <stddef.h>

#include <libpq-fe.h>

PGresult *fakepg_new(int ncols);
/* Appends a row of SQL NULLs; returns its index. */
int fakepg_add_row(PGresult *res);
/* Sets a value (copied); p NULL makes it SQL NULL. */
void fakepg_set(PGresult *res, int row, int col, const char *p, size_t len);
void fakepg_free(PGresult *res); /* NULL-safe */

#endif
