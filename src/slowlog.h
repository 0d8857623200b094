/*-------------------------------------------------------------------------
 *
 * slowlog.h
 *	  The slow-query log: subscribes to the executor hooks' slow-statement
 *	  completion point (exec_hooks.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_SLOWLOG_H
#define MO_SLOWLOG_H

#include "moltres_ops.h"

extern int	mo_slow_query_buffer;

extern bool mo_slowlog_pending;

extern void mo_slowlog_init(void);
extern void mo_slowlog_flush(void);
extern void mo_slowlog_error_seen(const ErrorData *edata);
extern void mo_slowlog_failed_after(uint64 event, uint64 queryid,
									double duration_ms, const ErrorData *edata);

#endif							/* MO_SLOWLOG_H */
