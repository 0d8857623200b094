# moltres_ops — PGXS build.
#
#   make && sudo make install      build and install for the pg_config on PATH
#   make installcheck              pg_regress + isolation + TAP against the
#                                  installed server (run as a non-root user)
#   make test                      everything above on a fresh Debian machine:
#                                  installs packages, builds with -Werror,
#                                  installs, runs all tests as an unprivileged user,
#                                  on PostgreSQL 15 and every newer version it can
#                                  build (test/run.sh); PG=18 runs one version
#   make test-core-suite           PostgreSQL's own regression suite without and
#                                  with moltres_ops preloaded: no result may differ
#   make demo / make demo-stop     a throwaway preloaded server with a workload

EXTENSION    = moltres_ops
EXTVERSION   = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" moltres_ops.control)
MODULE_big   = moltres_ops
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/lint/*.c)))
PGFILEDESC   = "moltres_ops - operational introspection for PostgreSQL"

# The install script is built from one file per area (sql/install/NN_area.sql);
# upgrade scripts are committed as sql/moltres_ops--A--B.sql.
INSTALL_SQL  = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA_built   = $(INSTALL_SQL)
DATA         = $(filter-out $(INSTALL_SQL),$(wildcard sql/$(EXTENSION)--*--*.sql))

# pg_regress: every sql/<name>.sql that is not an install script, in a
# throwaway instance started with test/moltres_ops.conf (preloaded).
REGRESS      = $(sort $(filter-out $(EXTENSION)--%,$(notdir $(basename $(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-config=test/moltres_ops.conf --temp-instance=tmp_check_regress \
               --load-extension=$(EXTENSION)

# Isolation specs live in test/specs, their outputs in test/expected.
ISOLATION      = $(sort $(notdir $(basename $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --temp-config=test/moltres_ops.conf \
                 --temp-instance=tmp_check_iso --load-extension=$(EXTENSION)

TAP_TESTS    = 1
PROVE_TESTS ?= $(sort $(wildcard test/t/*.pl))
PROVE_FLAGS  = -I test/t

EXTRA_CLEAN  = $(INSTALL_SQL) tmp_check tmp_check_regress tmp_check_iso \
               tmp_check_nopreload results output_iso regression.diffs regression.out \
               test/nopreload/results test/nopreload/regression.*

PG_CONFIG   ?= pg_config
PG_CPPFLAGS  = -I$(srcdir)/src -DMO_LIBRARY_VERSION=\"$(EXTVERSION)\"
PG_CFLAGS    = -Wall $(if $(WERROR),-Werror)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): $(wildcard src/*.h src/lint/*.h)

$(INSTALL_SQL): $(sort $(wildcard sql/install/*.sql)) moltres_ops.control
	cat $(sort $(wildcard sql/install/*.sql)) > $@

# The no-preload behaviour needs an instance without shared_preload_libraries.
installcheck: installcheck-nopreload
installcheck-nopreload:
	$(pg_regress_installcheck) --inputdir=test/nopreload --outputdir=test/nopreload \
		--temp-instance=tmp_check_nopreload --dbname=contrib_regression \
		$(sort $(notdir $(basename $(wildcard test/nopreload/sql/*.sql))))

# The kinds one at a time, so that `make test` runs every kind even when an
# earlier one fails.
installcheck-pgregress: $(INSTALL_SQL)
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
installcheck-tap:
	$(prove_installcheck)

test:
	./test/run.sh

test-core-suite:
	./test/core_suite.sh

exporter-queries:
	./test/exporter_queries.sh

demo:
	./test/demo.sh start

demo-stop:
	./test/demo.sh stop

.PHONY: test test-core-suite exporter-queries demo demo-stop installcheck-nopreload installcheck-pgregress \
	installcheck-isolation installcheck-tap
