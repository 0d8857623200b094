/*-------------------------------------------------------------------------
 *
 * rules_session.c
 *	  Layer 3 of the linter (rules, above catalog.c): the rules about the
 *	  input's transactions (BEGIN/COMMIT shape, statements that cannot run
 *	  in a block, locks held across statements), the timeouts in effect
 *	  (SET lock_timeout / statement_timeout, and turning them off), what
 *	  reaches beyond the statement (ALTER SYSTEM, ALTER ROLE/DATABASE ...
 *	  SET, CREATE EXTENSION), and whether the server would accept a SET's
 *	  value.  docs/lint-rules.md documents every rule named here; keep the
 *	  two in step.
 *
 *	  mo_rules_before and mo_rules_after run around the statement's own
 *	  analysis, outside lint.c's per-statement subtransaction (they read no
 *	  catalog); mo_rules_session runs inside it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "lint_rules.h"

#define QI(s) quote_identifier(s)

typedef enum TimeoutKind
{
	TIMEOUT_NONE,
	TIMEOUT_LOCK,				/* lock_timeout */
	TIMEOUT_STATEMENT			/* statement_timeout */
} TimeoutKind;

/*
 * Which timeout a SET names; *on: whether the value leaves it on (RESET and
 * DEFAULT count as off); *valid: false when the value does not parse as a
 * time, so the server refuses the SET.
 */
static TimeoutKind
timeout_set(VariableSetStmt *vs, bool *on, bool *valid)
{
	TimeoutKind kind;

	*on = false;
	*valid = true;
	if (vs->name == NULL)
		return TIMEOUT_NONE;
	if (strcmp(vs->name, "lock_timeout") == 0)
		kind = TIMEOUT_LOCK;
	else if (strcmp(vs->name, "statement_timeout") == 0)
		kind = TIMEOUT_STATEMENT;
	else
		return TIMEOUT_NONE;

	if (vs->kind == VAR_SET_VALUE && vs->args != NIL &&
		IsA(linitial(vs->args), A_Const))
	{
		A_Const    *ac = linitial(vs->args);
		int			ms = 0;

		if (IsA(&ac->val, Integer))
			*on = intVal(&ac->val) != 0;
		else if (IsA(&ac->val, String))
		{
			*valid = parse_int(strVal(&ac->val), &ms, GUC_UNIT_MS, NULL);
			*on = *valid && ms != 0;
		}
		else
			*on = true;
	}
	return kind;
}

/* timeout_disabled: a SET that turns lock_timeout or statement_timeout off. */
static void
timeout_disabled(MoStmtResult *res, TimeoutKind kind, const char *how,
				 const char *scope)
{
	if (kind == TIMEOUT_LOCK)
		mo_add_finding(res, MO_RISK_REVIEW, "timeout_disabled",
					   psprintf("%s lock_timeout = 0 removes the lock timeout for %s: a statement that waits for a lock waits for as long as the holder runs, and every query on the table queues behind it.",
								how, scope),
					   pstrdup("Keep a short lock timeout (SET lock_timeout = '2s';) and retry when it fires; CALL migrate(...) and with_lock_retry do both."));
	else
		mo_add_finding(res, MO_RISK_REVIEW, "timeout_disabled",
					   psprintf("%s statement_timeout = 0 removes the bound on how long a statement of %s runs, under whatever locks it holds.",
								how, scope),
					   pstrdup("Raise statement_timeout to a bound that fits the work instead of removing it: SET statement_timeout = '30min';"));
}

/*
 * protection_weakened: a setting whose value turns off a protection other
 * than a timeout: foreign keys and triggers (session_replication_role =
 * replica), or the durability of commits (synchronous_commit = off/local).
 */
static void
protection_weakened(MoStmtResult *res, VariableSetStmt *vs, const char *how,
					const char *scope)
{
	A_Const    *ac;
	const char *value;

	if (vs->kind != VAR_SET_VALUE || vs->name == NULL || vs->args == NIL ||
		!IsA(linitial(vs->args), A_Const))
		return;
	ac = linitial(vs->args);
	if (!IsA(&ac->val, String))
		return;
	value = strVal(&ac->val);
	if (strcmp(vs->name, "session_replication_role") == 0 &&
		pg_strcasecmp(value, "replica") == 0)
		mo_add_finding(res, MO_RISK_REVIEW, "protection_weakened",
					   psprintf("%s session_replication_role = replica for %s: ordinary triggers, and the triggers that enforce foreign keys, do not fire for its writes, so rows that break a foreign key are accepted.",
								how, scope),
					   pstrdup("Disable only the trigger that must not fire (ALTER TABLE ... DISABLE TRIGGER name, re-enabled in the same transaction), and keep foreign keys enforced."));
	else if (strcmp(vs->name, "synchronous_commit") == 0 &&
			 (pg_strcasecmp(value, "off") == 0 ||
			  pg_strcasecmp(value, "local") == 0))
		mo_add_finding(res, MO_RISK_REVIEW, "protection_weakened",
					   psprintf("%s synchronous_commit = %s for %s: a commit reported as done can be lost %s.",
								how, value, scope,
								pg_strcasecmp(value, "off") == 0 ?
								"in a crash" : "in a failover to a standby"),
					   pstrdup("Keep the server's synchronous_commit for migrations; their commits must survive a crash or a failover."));
}

/*
 * The transaction_* settings' checks refuse any change once the
 * transaction has run a query, which lint() itself is: they are not
 * validated.
 */
static bool
validatable_setting(const char *name)
{
	return strncmp(name, "transaction_", 12) != 0 &&
		GetConfigOption(name, true, false) != NULL;
}

/*
 * mo_rules_before - the rules about the shape of the input's
 * transactions, and the session settings it changes; run before the
 * statement's own analysis, outside the subtransaction.
 */
void
mo_rules_before(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	const char *toplevel = mo_lint_toplevel_reason(stmt);

	if (st->in_block && toplevel)
		mo_add_finding(res, MO_RISK_REVIEW, "in_transaction_block",
					   psprintf("%s cannot run inside a transaction block, and this one follows the BEGIN of statement %d: the migration fails here.",
								toplevel, st->block_stmtno),
					   psprintf("COMMIT; before it, run the %s on its own (most migration tools need a \"no transaction\" marker for it), then BEGIN; again if needed.",
								toplevel));

	if (st->in_block && st->block_locks != NIL && !IsA(stmt, TransactionStmt))
	{
		MoBlockLock *bl = linitial(st->block_locks);

		mo_add_finding(res, MO_RISK_REVIEW, "lock_held_across_statements",
					   psprintf("Statement %d took an AccessExclusiveLock on %s in this transaction; it is held while this statement runs, so every query on %s waits until COMMIT.",
								bl->stmtno, quote_identifier(bl->relname),
								quote_identifier(bl->relname)),
					   psprintf("COMMIT; right after statement %d, and run this one in its own transaction.",
								bl->stmtno));
	}

	if (IsA(stmt, TransactionStmt))
	{
		TransactionStmt *ts = (TransactionStmt *) stmt;

		switch (ts->kind)
		{
			case TRANS_STMT_BEGIN:
			case TRANS_STMT_START:
				if (st->in_block)
					mo_add_finding(res, MO_RISK_REVIEW, "transaction_nesting",
								   psprintf("BEGIN inside the transaction opened by statement %d: PostgreSQL has no nested transactions, it only warns, and the inner COMMIT commits everything.",
											st->block_stmtno),
								   pstrdup("Remove the inner BEGIN (use SAVEPOINT name; ... RELEASE SAVEPOINT name; for a nested unit)."));
				else
				{
					st->in_block = true;
					st->block_stmtno = res->stmtno;
					st->block_locks = NIL;
				}
				break;
			case TRANS_STMT_COMMIT:
			case TRANS_STMT_ROLLBACK:
			case TRANS_STMT_PREPARE:
				if (!st->in_block)
					mo_add_finding(res, MO_RISK_REVIEW, "transaction_nesting",
								   psprintf("%s without a BEGIN in this input: it does nothing here (only a warning), or ends a transaction that the migration tool opened.",
											ts->kind == TRANS_STMT_ROLLBACK ? "ROLLBACK" : "COMMIT"),
								   pstrdup("Remove it, or add the matching BEGIN; at the start of the migration."));
				else
				{
					ListCell   *lc;

					st->in_block = false;
					st->block_locks = NIL;
					if (st->lock_timeout_local)
						st->lock_timeout_set = st->session_lock_timeout;
					if (st->statement_timeout_local)
						st->statement_timeout_set = st->session_statement_timeout;
					st->lock_timeout_local = false;
					st->statement_timeout_local = false;
					foreach(lc, st->constraints)
						((MoInputConstraint *) lfirst(lc))->in_block = false;
				}
				break;
			default:
				break;
		}
	}
	else if (IsA(stmt, VariableSetStmt))
	{
		VariableSetStmt *vs = (VariableSetStmt *) stmt;
		bool		on;
		bool		valid;
		TimeoutKind kind = timeout_set(vs, &on, &valid);

		if (kind == TIMEOUT_NONE || !valid)
			return;				/* a SET the server refuses changes nothing */
		if (vs->kind == VAR_SET_VALUE && !on)
			timeout_disabled(res, kind, vs->is_local ? "SET LOCAL" : "SET",
							 "this session");
		if (vs->is_local && !st->in_block)
			return;				/* SET LOCAL outside a block does nothing */
		if (kind == TIMEOUT_LOCK)
		{
			st->lock_timeout_set = on;
			if (vs->is_local)
				st->lock_timeout_local = true;
			else
				st->session_lock_timeout = on;
		}
		else
		{
			st->statement_timeout_set = on;
			if (vs->is_local)
				st->statement_timeout_local = true;
			else
				st->session_statement_timeout = on;
		}
	}
}

/*
 * mo_rules_after - rules that need the statement's lock and the
 * settings in effect: lock_timeout and statement_timeout, and the locks a
 * BEGIN block accumulates.
 */
void
mo_rules_after(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	if (res->lock >= ShareLock && res->lock_on_existing &&
		!st->lock_timeout_set)
		mo_add_finding(res, MO_RISK_ADVICE, "lock_timeout_missing",
					   psprintf("No lock_timeout is set: if a long transaction holds a lock on %s, this statement waits for its %s, and every query on the table queues behind it, for as long as it waits.",
								res->lock_relname ? quote_identifier(res->lock_relname) : "the table",
								mo_lint_lock_name(res->lock)),
					   pstrdup("SET lock_timeout = '2s'; before the statement (SET LOCAL inside a transaction), and retry the migration when it times out."));

	if ((res->rewrites || res->scans) && res->long_running &&
		res->lock >= ShareLock && res->lock_on_existing &&
		!st->statement_timeout_set)
		mo_add_finding(res, MO_RISK_ADVICE, "statement_timeout_missing",
					   pstrdup("No statement_timeout is set: the scan or rewrite under this lock runs for as long as the table needs, with nothing to stop it."),
					   pstrdup("SET statement_timeout = '5min'; (or a bound that fits your maintenance window) before the statement."));

	if (st->in_block && res->lock == AccessExclusiveLock &&
		res->lock_on_existing && res->lock_relname &&
		!IsA(stmt, TransactionStmt))
	{
		MoBlockLock *bl = palloc(sizeof(MoBlockLock));

		bl->relname = pstrdup(res->lock_relname);
		bl->stmtno = res->stmtno;
		bl->altered = IsA(stmt, AlterTableStmt);
		st->block_locks = lappend(st->block_locks, bl);
	}
}

/*
 * mo_rules_session - settings and extensions: what reaches beyond the
 * statement.  A SET is checked as the server checks it (a value it would
 * refuse raises its error here, which becomes an error row), without
 * applying it.
 */
void
mo_rules_session(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_VariableSetStmt:
			{
				VariableSetStmt *vs = (VariableSetStmt *) stmt;

				protection_weakened(res, vs, vs->is_local ? "SET LOCAL" : "SET",
									"this session");
				if (vs->kind == VAR_SET_VALUE && vs->name &&
					validatable_setting(vs->name))
					(void) set_config_option(vs->name,
											 ExtractSetVariableArgs(vs),
											 superuser() ? PGC_SUSET : PGC_USERSET,
											 PGC_S_SESSION, GUC_ACTION_SET,
											 false, ERROR, false);
			}
			break;
		case T_AlterSystemStmt:
			{
				VariableSetStmt *vs = ((AlterSystemStmt *) stmt)->setstmt;

				/*
				 * The extension's own settings change only what moltres_ops
				 * does; the runbook's steps set them this way.
				 */
				if (vs->name && strncmp(vs->name, "moltres_ops.", 12) == 0)
				{
					mo_add_finding(res, MO_RISK_REVIEW, "alter_system",
								   psprintf("ALTER SYSTEM %s %s changes a setting of moltres_ops for the whole cluster, at the next reload: only what the extension does changes.",
											vs->kind == VAR_SET_VALUE ? "SET" : "RESET",
											vs->name),
								   pstrdup("Record the change in the server's configuration management too, so that a rebuilt server keeps it."));
					break;
				}
				mo_add_finding(res, MO_RISK_DANGEROUS, "alter_system",
							   pstrdup("ALTER SYSTEM changes the configuration of the whole cluster (postgresql.auto.conf), for every database and application, at the next reload or restart."),
							   pstrdup("Make configuration changes through the server's configuration management, reviewed separately from schema migrations; for one database or role use ALTER DATABASE ... SET / ALTER ROLE ... SET."));
			}
			break;
		case T_AlterDatabaseSetStmt:
		case T_AlterRoleSetStmt:
			{
				bool		db = IsA(stmt, AlterDatabaseSetStmt);
				VariableSetStmt *vs = db ?
					((AlterDatabaseSetStmt *) stmt)->setstmt :
					((AlterRoleSetStmt *) stmt)->setstmt;
				const char *how = db ? "ALTER DATABASE ... SET" : "ALTER ROLE ... SET";
				const char *scope = db ? "every new session of the database" :
					"every new session of the role";
				bool		on;
				bool		valid;
				TimeoutKind kind = timeout_set(vs, &on, &valid);

				mo_add_finding(res, MO_RISK_REVIEW, "alter_role_set",
							   psprintf("%s ... SET applies only to sessions that start afterwards: pooled connections keep the old value until they reconnect, so sessions disagree for a while.",
										db ? "ALTER DATABASE" : "ALTER ROLE"),
							   pstrdup("Set the value explicitly where it matters (SET LOCAL in the transaction, or in the connection string), and recycle the pool's connections after the change."));
				if (kind != TIMEOUT_NONE && valid && vs->kind == VAR_SET_VALUE && !on)
					timeout_disabled(res, kind, how, scope);
				protection_weakened(res, vs, how, scope);
			}
			break;
		case T_CreateExtensionStmt:
			{
				CreateExtensionStmt *ce = (CreateExtensionStmt *) stmt;

				st->extension_created = true;
				mo_add_finding(res, MO_RISK_REVIEW, "create_extension",
							   psprintf("CREATE EXTENSION %s needs privileges (a superuser, or a trusted extension and CREATE on the database) and installs whatever version this server's package provides: every environment must have the same version, or the migration fails or behaves differently there.",
										quote_identifier(ce->extname)),
							   psprintf("Create extensions outside schema migrations, with the version pinned: CREATE EXTENSION IF NOT EXISTS %s VERSION '<version>'; and check pg_available_extensions in each environment first.",
										quote_identifier(ce->extname)));
			}
			break;
		default:
			break;
	}
}
