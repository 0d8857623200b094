/*-------------------------------------------------------------------------
 *
 * normalize.h
 *	  Normalised query text: every constant replaced by $n.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_NORMALIZE_H
#define MO_NORMALIZE_H

#include "compat.h"			/* JumbleState */

extern char *mo_normalize_query(const char *query, int location, int len,
								const JumbleState *jstate, bool all_literals,
								int maxbytes, int *out_len);

#endif							/* MO_NORMALIZE_H */
