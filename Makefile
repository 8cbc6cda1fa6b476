# The two commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= python3
PIP_FLAGS ?= -q --disable-pip-version-check --root-user-action=ignore

.PHONY: test-e2e demo deps python-deps cluster-deps test test-unit test-integration e2e demo crds check-crds cluster-up cluster-down

python-deps:
	$(PYTHON) -m pip install $(PIP_FLAGS) -e '.[test]'

cluster-deps:
	bash e2e/cluster/install-deps.sh
	bash e2e/cluster/base-image.sh  # the tests of tests/images build FROM these

deps: cluster-deps python-deps

## make test: everything the project proves, from a fresh machine (installs what it needs):
## unit and integration tests (a real kube-apiserver), then e2e on the local full cluster.
test: deps
	$(PYTHON) -m pytest tests -ra
	$(PYTHON) -m pytest e2e -ra

test-e2e: deps
	$(PYTHON) -m pytest e2e -ra

test-unit: python-deps
	$(PYTHON) -m pytest tests/unit -ra

test-integration: deps
	$(PYTHON) -m pytest tests/integration -ra

crds: python-deps
	$(PYTHON) -m bereit.api.crds

check-crds:
	$(PYTHON) -m bereit.api.crds --check

cluster-up: cluster-deps
	bash e2e/cluster/up.sh full

cluster-down:
	bash e2e/cluster/down.sh

## make demo: the main job — local cluster (or the current context with USE_CURRENT_CONTEXT=1),
## images, chart, the digits model deployed and scored.
demo: python-deps
	$(PYTHON) -m e2e.demo $(if $(USE_CURRENT_CONTEXT),--use-current-context,)
