/*-------------------------------------------------------------------------
 *
 * lint_rules.h
 *	  The linter's rules layer: one entry point per file, each for a kind
 *	  of statement.  lint.c's dispatch calls them; each runs inside the
 *	  per-statement subtransaction, except mo_rules_before and
 *	  mo_rules_after (rules_session.c), which run around it.
 *
 *	    rules_table.c     ALTER TABLE, CREATE TABLE
 *	    rules_objects.c   indexes, drops, renames, types, domains, views,
 *	                      maintenance (TRUNCATE, VACUUM FULL, CLUSTER,
 *	                      REINDEX, REFRESH), LOCK, triggers, policies
 *	    rules_dml.c       INSERT, UPDATE, DELETE, MERGE, SELECT, COPY
 *	    rules_session.c   transactions, timeouts and settings
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_LINT_RULES_H
#define MO_LINT_RULES_H

#include "lint_catalog.h"

extern void mo_rules_table(MoLintState *st, MoStmtResult *res, Node *stmt);
extern void mo_rules_objects(MoLintState *st, MoStmtResult *res, Node *stmt);
extern void mo_rules_dml(MoLintState *st, MoStmtResult *res, Node *stmt);
extern void mo_rules_session(MoLintState *st, MoStmtResult *res, Node *stmt);
extern void mo_rules_before(MoLintState *st, MoStmtResult *res, Node *stmt);
extern void mo_rules_after(MoLintState *st, MoStmtResult *res, Node *stmt);

#endif							/* MO_LINT_RULES_H */
