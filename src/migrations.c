/*-------------------------------------------------------------------------
 *
 * migrations.c
 *	  The one piece of the migration ledger (sql/install/40_migrations.sql)
 *	  that SQL cannot express: whether the caller is inside an explicit
 *	  transaction block.
 *
 * The ledger, the migration lock and the status views are SQL and PL/pgSQL;
 * they need neither shared memory nor preload.  This file touches no shared
 * state and runs in ordinary backends only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(moltres_ops_in_transaction_block);

/*
 * moltres_ops_in_transaction_block - true inside BEGIN ... COMMIT.
 *
 * CALL moltres_ops.migrate() commits after each step, which PostgreSQL only
 * allows when the CALL is not inside a transaction block.  Drivers that open
 * a transaction implicitly (psycopg without autocommit, for one) would
 * otherwise get "invalid transaction termination" from deep inside the
 * procedure; migrate() asks this first and says what to do instead, before
 * it has taken the migration lock or written anything.
 */
Datum
moltres_ops_in_transaction_block(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(IsTransactionBlock());
}
