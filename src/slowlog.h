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

extern void mo_slowlog_init(void);

#endif							/* MO_SLOWLOG_H */
