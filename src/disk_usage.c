/*-------------------------------------------------------------------------
 *
 * disk_usage.c
 *	  Free space of the file systems that hold the data directory, pg_wal
 *	  and every tablespace, read with statvfs() -- no shell, no untrusted
 *	  language -- for the disk_space health check.
 *
 * The function takes no path: it reports only the server's own locations
 * (the data directory, pg_wal and the links under pg_tblspc), so it cannot
 * be used to probe the file system.  Space is counted as an unprivileged
 * user sees it (f_bavail): the blocks reserved for root are of no use to
 * the server.  No shared state; runs in any backend.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include "catalog/pg_tablespace_d.h"
#include "common/relpath.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "moltres_ops.h"

static void
add_location(ReturnSetInfo *rsinfo, Oid spcoid, const char *location,
			 const char *path)
{
	struct statvfs st;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	values[0] = ObjectIdGetDatum(spcoid);
	nulls[0] = !OidIsValid(spcoid);
	values[1] = CStringGetTextDatum(location);
	values[2] = CStringGetTextDatum(path);
	if (statvfs(path, &st) == 0)
	{
		values[3] = Int64GetDatum((int64) st.f_blocks * (int64) st.f_frsize);
		values[4] = Int64GetDatum((int64) st.f_bavail * (int64) st.f_frsize);
	}
	else
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not read the free space of \"%s\": %m", path)));
		nulls[3] = nulls[4] = true;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* The target of a link (pg_wal, pg_tblspc/N), or the path itself. */
static char *
link_target(const char *link)
{
	char		target[MAXPGPATH];
	ssize_t		len = readlink(link, target, sizeof(target) - 1);

	if (len <= 0 || len >= (ssize_t) sizeof(target) - 1)
		return pstrdup(link);
	target[len] = '\0';
	return pstrdup(target);
}

PG_FUNCTION_INFO_V1(moltres_ops_disk_usage);

/*
 * moltres_ops_disk_usage - one row per location: tablespace oid (NULL for
 * pg_wal), location, absolute path, size and free bytes of its file system.
 */
Datum
moltres_ops_disk_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		path[MAXPGPATH];
	DIR		   *dir;
	struct dirent *de;

	InitMaterializedSRF(fcinfo, 0);

	add_location(rsinfo, DEFAULTTABLESPACE_OID, "data directory", DataDir);
	snprintf(path, sizeof(path), "%s/pg_wal", DataDir);
	add_location(rsinfo, InvalidOid, "pg_wal", link_target(path));

	dir = AllocateDir("pg_tblspc");
	while ((de = ReadDir(dir, "pg_tblspc")) != NULL)
	{
		Oid			spcoid;
		char		link[MAXPGPATH];

		if (strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		spcoid = (Oid) strtoul(de->d_name, NULL, 10);
		snprintf(link, sizeof(link), "%s/pg_tblspc/%s", DataDir, de->d_name);
		add_location(rsinfo, spcoid, "tablespace", link_target(link));
	}
	FreeDir(dir);

	return (Datum) 0;
}
