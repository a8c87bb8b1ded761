/* daemon/core/publish.c - see publish.h. */
#include "daemon/core/publish.h"

#include <stdlib.h>

void hub_publish_rows(hub_publish_fn *publish, void *data, PGresult *res)
{
	if (PQnfields(res) != 4)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		long long id = strtoll(PQgetvalue(res, i, 1), NULL, 10);

		if (!PQgetisnull(res, i, 1) && id >= 0) /* 0: queued, numbered later */
			publish(data, hub_str_from(PQgetvalue(res, i, 0)), id,
				(struct hub_str){ PQgetvalue(res, i, 2),
						  (size_t)PQgetlength(res, i, 2) },
				(struct hub_str){ PQgetvalue(res, i, 3),
						  (size_t)PQgetlength(res, i, 3) });
	}
}
