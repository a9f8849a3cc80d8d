# The two commands of the README:
#   make run   set up from nothing and run the main playbook on the emulated lab
#   make test  set up from nothing and run every test
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ANSIBLE_PLAYBOOK := $(VENV)/bin/ansible-playbook
COLLECTION_LINK := .ansible/collections/ansible_collections/xdplab/offload
MAIN_PLAYBOOK ?= playbooks/vm_offload.yml
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup bootstrap lab-host run test test-xen unit integration bpf clean-lab bench

setup: bootstrap $(VENV)/.stamp $(COLLECTION_LINK) lab-host

# The only packages installed outside Ansible: what it takes to make the venv,
# and lua5.1, with which the unit tests run the MoonGen script. Everything else
# (python3-libvirt, BCC, clang, ...) comes from the lab_host role.
BOOTSTRAP_PACKAGES := python3-venv python3-pip lua5.1
bootstrap:
	@missing=$$(for p in $(BOOTSTRAP_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.stamp: requirements.txt
	/usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# The repo root is the collection; expose it under a collections path.
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

lab-host: $(VENV)/.stamp $(COLLECTION_LINK)
	$(ANSIBLE_PLAYBOOK) playbooks/lab_host.yml

run: setup
	$(ANSIBLE_PLAYBOOK) $(MAIN_PLAYBOOK) $(RUN_ARGS)

test: setup bpf
	$(PY) -m pytest $(PYTEST_ARGS)

# The Xen lab end to end (vm_offload.yml -e hypervisor=xen): long under TCG, so not part of `test`.
test-xen: setup bpf
	XL_TEST_XEN=1 $(PY) -m pytest tests/integration/test_xen_lab.py $(PYTEST_ARGS)

unit: $(VENV)/.stamp $(COLLECTION_LINK)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bpf:
	$(MAKE) -C bpf

clean-lab: $(VENV)/.stamp $(COLLECTION_LINK)
	$(ANSIBLE_PLAYBOOK) playbooks/teardown.yml

bench: setup
	$(PY) -m pytest -s -p no:cacheprovider tests/benchmarks/bench_*.py $(PYTEST_ARGS)
