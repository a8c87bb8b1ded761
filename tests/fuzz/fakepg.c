/* tests/fuzz/fakepg.c - see fakepg.h. */
#include "tests/fuzz/fakepg.h"

#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "tests/fuzz/fuzz.h"

struct cell {
	char *p; /* NULL: SQL NULL */
	size_t len;
};

struct pg_result {
	int ncols, nrows, cap;
	struct cell *cells; /* nrows * ncols */
};

static char empty[1];

PGresult *fakepg_new(int ncols)
{
	PGresult *res = hub_xcalloc(1, sizeof(*res));

	res->ncols = ncols;
	return res;
}

int fakepg_add_row(PGresult *res)
{
	if (res->nrows == res->cap) {
		res->cap = res->cap ? 2 * res->cap : 8;
		res->cells = hub_xrealloc(res->cells,
					  (size_t)res->cap * (size_t)res->ncols * sizeof(*res->cells));
	}
	memset(res->cells + (size_t)res->nrows * (size_t)res->ncols, 0,
	       (size_t)res->ncols * sizeof(*res->cells));
	return res->nrows++;
}

static struct cell *cell_at(const PGresult *res, int row, int col)
{
	fuzz_check(res && row >= 0 && row < res->nrows && col >= 0 && col < res->ncols,
		   "PGresult: no row %d column %d", row, col);
	return &res->cells[(size_t)row * (size_t)res->ncols + (size_t)col];
}

void fakepg_set(PGresult *res, int row, int col, const char *p, size_t len)
{
	struct cell *c = cell_at(res, row, col);

	free(c->p);
	c->p = NULL;
	c->len = 0;
	if (!p)
		return;
	c->p = hub_xmalloc(len + 1);
	memcpy(c->p, p, len);
	c->p[len] = '\0';
	c->len = len;
}

void fakepg_free(PGresult *res)
{
	if (!res)
		return;
	for (int i = 0; i < res->nrows * res->ncols; i++)
		free(res->cells[i].p);
	free(res->cells);
	free(res);
}

int PQnfields(const PGresult *res)
{
	return res->ncols;
}

int PQntuples(const PGresult *res)
{
	return res->nrows;
}

char *PQgetvalue(const PGresult *res, int tup_num, int field_num)
{
	struct cell *c = cell_at(res, tup_num, field_num);

	return c->p ? c->p : empty;
}

int PQgetlength(const PGresult *res, int tup_num, int field_num)
{
	return (int)cell_at(res, tup_num, field_num)->len;
}

int PQgetisnull(const PGresult *res, int tup_num, int field_num)
{
	return cell_at(res, tup_num, field_num)->p == NULL;
}
