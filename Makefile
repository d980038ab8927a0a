# SPDX-License-Identifier: MIT
# spliced - one non-recursive Makefile. Outputs under .output/, V=1 for verbose commands.

OUTPUT    := .output
CC        ?= cc
CLANG     ?= clang
BPFTOOL   ?= bpftool
ARCH      := x86
VMLINUX   := vmlinux/$(ARCH)/vmlinux.h
PREFIX    ?= /usr/local
WERROR    ?= -Werror

WARNINGS  := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat-security
CFLAGS    ?= -O2 -g
# CPPFLAGS and LDFLAGS from the environment too (dpkg-buildflags: fortify, relro, bind now)
ALL_CFLAGS := -std=gnu11 $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(WERROR) -D_GNU_SOURCE -MMD -MP \
	      -Iinclude -Iuserspace -I$(OUTPUT)
LDLIBS    := -lbpf -lelf -lz -lcurl -lssl -lcrypto -lpcre2-8 -lpthread
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -Iinclude \
	      -Wall -Wno-unused-function

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

DAEMON_SRCS := main.c buildinfo.c daemon.c services.c reload.c accesslog.c privdrop.c upgrade.c conf.c conf_keywords.c conf_rules.c rules.c limit_table.c worker.c upstream_idle.c conn.c route.c lb.c http.c http_rewrite.c log.c splice.c health.c health_state.c tls.c \
	       stats.c obuf.c admin.c control.c control_show.c metrics.c
# the connection module beyond conn.c (docs/ARCHITECTURE.md)
DAEMON_SRCS += conn_handover.c conn_head.c conn_limits.c conn_mem.c conn_rules.c conn_show.c conn_upstream.c flow.c kernel_path.c transport.c queue.c retry.c sticky.c
# the spare buffers and pipes of a worker
DAEMON_SRCS += spare.c
# the kernel access lists beside the kernel data path
DAEMON_SRCS += acl.c
DAEMON_OBJS := $(addprefix $(OUTPUT)/userspace/,$(DAEMON_SRCS:.c=.o))
BPF_OBJ     := $(OUTPUT)/bpf/splice.bpf.o
SKEL        := $(OUTPUT)/splice.skel.h
ACL_SKEL    := $(OUTPUT)/acl.skel.h
UNIT_TESTS  := $(OUTPUT)/tests/test_http $(OUTPUT)/tests/test_lb $(OUTPUT)/tests/test_conf \
	       $(OUTPUT)/tests/test_route $(OUTPUT)/tests/test_health $(OUTPUT)/tests/test_tls \
	       $(OUTPUT)/tests/test_stats $(OUTPUT)/tests/test_rules \
	       $(OUTPUT)/tests/test_accesslog
KERN_TESTS  := $(OUTPUT)/tests/kern_sockmap
ORIGIN      := $(OUTPUT)/tests/origin
TLSCLIENT   := $(OUTPUT)/tests/tlsclient
FUZZ_SECONDS ?= 60

.DELETE_ON_ERROR:
.PHONY: all test unit e2e deb-test fuzz fuzzers asan soak format format-check vmlinux clean help deps demo \
	bench install uninstall

all: $(OUTPUT)/spliced $(OUTPUT)/splicectl $(UNIT_TESTS) $(KERN_TESTS) $(ORIGIN) $(TLSCLIENT) ## build the daemon, tests, test origin

help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' Makefile | sed 's/:.*## /\t/' | expand -t 16

deps: ## install missing Debian packages (idempotent)
	$(Q)tools/install-deps.sh

test: ## install deps, build, run every test tier (unit, kernel, e2e, asan, fuzz, vm)
	$(Q)tools/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all asan fuzzers
	$(Q)tests/run.sh

unit: $(UNIT_TESTS) ## run unit tests only
	$(Q)tests/run.sh unit

e2e: all ## run BATS end-to-end tests only
	$(Q)tests/run.sh e2e

soak: all ## 1,000,000 short connections, 50 reloads, 3 upgrades; nothing may accumulate (tests/soak)
	$(Q)tests/soak/soak.sh

deb-test: all ## build the Debian package from a clean copy of the tree, lintian, check its files
	$(Q)tests/run.sh deb

demo: ## install deps, build, start demo backends and spliced with the default config
	$(Q)tools/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo/start.sh

bench: all ## run the benchmarks (tools/bench), writes docs/benchmarks.md
	$(Q)tools/bench/run.sh

$(OUTPUT)/spliced: $(DAEMON_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# the control tool: one file, the daemon's version
$(OUTPUT)/splicectl: tools/splicectl.c userspace/version.h | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< -o $@

$(OUTPUT)/userspace/%.o: userspace/%.c | $(OUTPUT)/userspace
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# `spliced -V` reports the flags (without the build directory, for reproducible builds)
BUILD_CFLAGS := $(strip $(subst ",,$(subst ',,$(filter-out -ffile-prefix-map=% -fdebug-prefix-map=%,\
		$(CPPFLAGS) $(CFLAGS) $(LDFLAGS)))))
$(OUTPUT)/userspace/buildinfo.o: ALL_CFLAGS += -DSPLICED_CFLAGS='"$(BUILD_CFLAGS)"'

# only splice.c includes the splice skeleton, only acl.c the acl one
$(OUTPUT)/userspace/splice.o: $(SKEL)
$(OUTPUT)/userspace/acl.o: $(ACL_SKEL)

$(OUTPUT)/bpf/splice.bpf.o: include/splice_abi.h
$(OUTPUT)/bpf/acl.bpf.o: include/acl_abi.h

$(OUTPUT)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX) | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(OUTPUT)/tests/test_http: tests/unit/test_http.c $(OUTPUT)/userspace/http.o $(OUTPUT)/userspace/http_rewrite.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@

$(OUTPUT)/tests/test_stats: tests/unit/test_stats.c $(OUTPUT)/userspace/stats.o \
			    $(OUTPUT)/userspace/obuf.o $(OUTPUT)/userspace/lb.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@ -lpthread

# the access log line and its keywords; log.o needs libbpf for its printer
$(OUTPUT)/tests/test_accesslog: tests/unit/test_accesslog.c $(OUTPUT)/userspace/accesslog.o \
				$(OUTPUT)/userspace/log.o $(OUTPUT)/userspace/conf.o \
				$(OUTPUT)/userspace/conf_keywords.o $(OUTPUT)/userspace/conf_rules.o \
				$(OUTPUT)/userspace/rules.o $(OUTPUT)/userspace/limit_table.o $(OUTPUT)/userspace/lb.o \
				$(OUTPUT)/userspace/http.o $(OUTPUT)/userspace/http_rewrite.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests/unit $^ -o $@ -lbpf -lpcre2-8 -lpthread

$(OUTPUT)/tests/test_lb: tests/unit/test_lb.c $(OUTPUT)/userspace/lb.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@ -lpthread

# the configuration loads without OpenSSL: its tests link no tls.o (tls_prepare is apart)
$(OUTPUT)/tests/test_conf: tests/unit/test_conf.c $(OUTPUT)/userspace/conf.o \
			   $(OUTPUT)/userspace/conf_keywords.o $(OUTPUT)/userspace/conf_rules.o \
			   $(OUTPUT)/userspace/rules.o $(OUTPUT)/userspace/limit_table.o \
			   $(OUTPUT)/userspace/lb.o $(OUTPUT)/userspace/http.o $(OUTPUT)/userspace/http_rewrite.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@ -lpcre2-8 -lpthread

# the rule engine through the configuration, as routes select requests
$(OUTPUT)/tests/test_rules: tests/unit/test_rules.c $(OUTPUT)/userspace/route.o \
			    $(OUTPUT)/userspace/conf.o $(OUTPUT)/userspace/conf_keywords.o \
			    $(OUTPUT)/userspace/conf_rules.o $(OUTPUT)/userspace/rules.o $(OUTPUT)/userspace/limit_table.o \
			    $(OUTPUT)/userspace/lb.o $(OUTPUT)/userspace/http.o $(OUTPUT)/userspace/http_rewrite.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@ -lpcre2-8 -lpthread

$(OUTPUT)/tests/test_route: tests/unit/test_route.c $(OUTPUT)/userspace/route.o \
			    $(OUTPUT)/userspace/conf.o $(OUTPUT)/userspace/conf_keywords.o \
			    $(OUTPUT)/userspace/conf_rules.o $(OUTPUT)/userspace/rules.o $(OUTPUT)/userspace/limit_table.o \
			    $(OUTPUT)/userspace/lb.o $(OUTPUT)/userspace/http.o $(OUTPUT)/userspace/http_rewrite.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@ -lpcre2-8 -lpthread

# the health state machine is driven without its thread; log.o needs libbpf for its printer
$(OUTPUT)/tests/test_health: tests/unit/test_health.c $(OUTPUT)/userspace/health_state.o \
			     $(OUTPUT)/userspace/conf.o $(OUTPUT)/userspace/conf_keywords.o \
			     $(OUTPUT)/userspace/conf_rules.o $(OUTPUT)/userspace/rules.o $(OUTPUT)/userspace/limit_table.o $(OUTPUT)/userspace/lb.o \
			     $(OUTPUT)/userspace/log.o $(OUTPUT)/userspace/tls.o $(OUTPUT)/userspace/http.o $(OUTPUT)/userspace/http_rewrite.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@ -lbpf -lssl -lcrypto -lpcre2-8 -lpthread

$(OUTPUT)/tests/test_tls: tests/unit/test_tls.c $(OUTPUT)/userspace/tls.o \
			  $(OUTPUT)/userspace/conf.o $(OUTPUT)/userspace/conf_keywords.o \
			     $(OUTPUT)/userspace/conf_rules.o $(OUTPUT)/userspace/rules.o $(OUTPUT)/userspace/limit_table.o \
			  $(OUTPUT)/userspace/lb.o $(OUTPUT)/userspace/http.o $(OUTPUT)/userspace/http_rewrite.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@ -lssl -lcrypto -lpcre2-8 -lpthread

# kernel tier: the sockmap data path on real loopback sockets (splice.o needs the skeleton)
$(OUTPUT)/tests/kern_sockmap: tests/kern/kern_sockmap.c $(OUTPUT)/userspace/splice.o \
			      $(OUTPUT)/userspace/log.o | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $^ -o $@ $(LDLIBS)

$(ORIGIN): tests/origin/origin.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ -lpthread -lcrypto

$(TLSCLIENT): tests/origin/tlsclient.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ -lssl -lcrypto

# ---- fuzzers (libFuzzer): tests/fuzz/fuzz_NAME.c with its seeds in tests/fuzz/corpus/NAME ----
# A target links against an archive of the daemon's objects (DAEMON_SRCS without main.c) built
# by clang with coverage and ASan/UBSan under .output/fuzz/, so it follows the source list.
# Warnings are the gcc build's business. `make fuzz` runs each for FUZZ_SECONDS; tests/run.sh
# (tier fuzz) replays the seeds and runs each for FUZZ_TEST_SECONDS.
FUZZ_NAMES  := http resp conf rules
FUZZERS     := $(addprefix $(OUTPUT)/tests/fuzz_,$(FUZZ_NAMES))
FUZZ_OUT    := $(OUTPUT)/fuzz
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Iinclude -Iuserspace -I$(OUTPUT) \
	       -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJS   := $(addprefix $(FUZZ_OUT)/userspace/,$(filter-out main.c,$(DAEMON_SRCS:.c=.o)))
FUZZ_LIB    := $(FUZZ_OUT)/libspliced.a

fuzzers: $(FUZZERS) ## build the fuzz targets (.output/tests/fuzz_*)

fuzz: $(FUZZERS) ## run every fuzz target for FUZZ_SECONDS each (default 60)
	$(Q)set -e; for n in $(FUZZ_NAMES); do \
		mkdir -p $(OUTPUT)/fuzz-corpus/$$n $(OUTPUT)/fuzz-artifacts; \
		echo "fuzz_$$n: $(FUZZ_SECONDS) s"; \
		$(OUTPUT)/tests/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
			-artifact_prefix=$(OUTPUT)/fuzz-artifacts/$$n- \
			$(OUTPUT)/fuzz-corpus/$$n tests/fuzz/corpus/$$n; \
	done

$(OUTPUT)/tests/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB) | $(OUTPUT)/tests
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS) -ldl

$(FUZZ_OUT)/userspace/%.o: userspace/%.c | $(FUZZ_OUT)/userspace
	$(call msg,CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_OUT)/userspace/splice.o: $(SKEL)
$(FUZZ_OUT)/userspace/acl.o: $(ACL_SKEL)

$(FUZZ_LIB): $(FUZZ_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_OUT)/userspace:
	$(Q)mkdir -p $@

-include $(wildcard $(FUZZ_OUT)/userspace/*.d)

# ---- sanitizer gate (tests/run.sh asan) ----
# The daemon, splicectl and the unit tests again with AddressSanitizer and
# UndefinedBehaviorSanitizer, under .output/asan/. The daemon's objects come from the same
# DAEMON_SRCS; the BPF object and the skeleton are shared (no sanitizers in BPF code). A unit test
# links its source against an archive of the daemon's objects without main.o, so the linker takes
# the same modules its plain link line names (GNU ld pulls only the members it needs).
ASAN_OUT   := $(OUTPUT)/asan
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_OBJS  := $(addprefix $(ASAN_OUT)/userspace/,$(DAEMON_SRCS:.c=.o))
ASAN_LIB   := $(ASAN_OUT)/libspliced.a
ASAN_UNIT  := $(patsubst $(OUTPUT)/tests/%,$(ASAN_OUT)/tests/%,$(UNIT_TESTS))
$(ASAN_OUT)/userspace/buildinfo.o: ALL_CFLAGS += -DSPLICED_CFLAGS='"$(BUILD_CFLAGS) $(SAN_FLAGS)"'

asan: $(ASAN_OUT)/spliced $(ASAN_OUT)/splicectl $(ASAN_UNIT) ## build the sanitized daemon, splicectl, unit tests

$(ASAN_OUT)/spliced: $(ASAN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) $^ -o $@ $(LDLIBS)

$(ASAN_OUT)/splicectl: tools/splicectl.c userspace/version.h | $(ASAN_OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) $< -o $@

$(ASAN_OUT)/userspace/%.o: userspace/%.c | $(ASAN_OUT)/userspace
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(ASAN_OUT)/userspace/splice.o: $(SKEL)
$(ASAN_OUT)/userspace/acl.o: $(ACL_SKEL)

$(ASAN_LIB): $(filter-out %/main.o,$(ASAN_OBJS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(ASAN_OUT)/tests/test_%: tests/unit/test_%.c $(ASAN_LIB) | $(ASAN_OUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Itests/unit $^ -o $@ $(LDLIBS)

$(ASAN_OUT) $(ASAN_OUT)/userspace $(ASAN_OUT)/tests:
	$(Q)mkdir -p $@

-include $(wildcard $(ASAN_OUT)/userspace/*.d $(ASAN_OUT)/tests/*.d)

vmlinux: ## regenerate vmlinux/x86/vmlinux.h from the running kernel's BTF
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $(VMLINUX)

FORMAT_FILES := $(wildcard userspace/*.c userspace/*.h include/*.h bpf/*.c tests/unit/*.c \
		  tests/unit/*.h tests/origin/*.c tests/fuzz/*.c tests/kern/*.c tools/*.c tools/vmtest.d/*.c)

format: ## reformat sources with clang-format
	$(Q)clang-format -i $(FORMAT_FILES)

format-check: ## fail when a source file is not clang-format clean
	$(Q)clang-format --dry-run --Werror $(FORMAT_FILES)

# install: binaries, man pages (gzip -9n), the systemd unit, the logrotate snippet, bash
# completion for splicectl, the default configuration and the demo one as an example. /usr/local
# and /etc in the unit and the man pages become PREFIX and SYSCONFDIR. The default configuration
# goes to SYSCONFDIR/spliced/spliced.conf, but never over an existing file. debian/rules installs
# with this target (PREFIX=/usr UNITDIR=/lib/systemd/system), so the package and `make install`
# lay out the same files (tests/e2e/package.bats compares them).
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/spliced
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
MANPAGES   := docs/spliced.8 docs/splicectl.8 docs/spliced.conf.5
DEFAULT_CONF := tools/dist/spliced.conf
DEMO_CONF  := tools/demo/spliced.conf
INSTALL_SED := sed -e 's|/usr/local|$(PREFIX)|g' -e 's|/etc/spliced|$(SYSCONFDIR)/spliced|g'

INSTALL_FILES := $(OUTPUT)/spliced $(OUTPUT)/splicectl $(MANPAGES) tools/systemd/spliced.service \
		 $(DEFAULT_CONF) $(DEMO_CONF) tools/dist/spliced.logrotate \
		 tools/dist/splicectl.bash-completion

install: $(INSTALL_FILES) ## install into $(DESTDIR)$(PREFIX) (the config: $(DESTDIR)$(SYSCONFDIR))
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(COMPLETIONDIR) \
		$(DESTDIR)$(SYSCONFDIR)/spliced $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	$(Q)install -m 0755 $(OUTPUT)/spliced $(OUTPUT)/splicectl $(DESTDIR)$(PREFIX)/sbin/
	$(Q)set -e; for m in $(MANPAGES); do \
		$(INSTALL_SED) $$m | gzip -9n >$(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}.gz; \
		chmod 0644 $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}.gz; \
	done
	$(Q)$(INSTALL_SED) tools/systemd/spliced.service >$(DESTDIR)$(UNITDIR)/spliced.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/spliced.service
	$(Q)install -m 0644 $(DEMO_CONF) $(DESTDIR)$(DOCDIR)/examples/demo.conf
	$(Q)install -m 0644 tools/dist/splicectl.bash-completion $(DESTDIR)$(COMPLETIONDIR)/splicectl
	$(Q)install -m 0644 tools/dist/spliced.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/spliced
	$(Q)[ -e $(DESTDIR)$(SYSCONFDIR)/spliced/spliced.conf ] || \
		install -m 0644 $(DEFAULT_CONF) $(DESTDIR)$(SYSCONFDIR)/spliced/spliced.conf

uninstall: ## remove what install put under $(DESTDIR)$(PREFIX) (SYSCONFDIR/spliced is kept)
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(DESTDIR)$(PREFIX)/sbin/spliced $(DESTDIR)$(PREFIX)/sbin/splicectl \
		$(DESTDIR)$(MANDIR)/man8/spliced.8.gz $(DESTDIR)$(MANDIR)/man8/splicectl.8.gz \
		$(DESTDIR)$(MANDIR)/man5/spliced.conf.5.gz $(DESTDIR)$(UNITDIR)/spliced.service \
		$(DESTDIR)$(DOCDIR)/examples/demo.conf $(DESTDIR)$(COMPLETIONDIR)/splicectl \
		$(DESTDIR)$(SYSCONFDIR)/logrotate.d/spliced
	$(Q)rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true

$(OUTPUT) $(OUTPUT)/userspace $(OUTPUT)/bpf $(OUTPUT)/tests:
	$(Q)mkdir -p $@

clean: ## remove build outputs
	$(Q)rm -rf $(OUTPUT)

-include $(wildcard $(OUTPUT)/userspace/*.d $(OUTPUT)/tests/*.d)
