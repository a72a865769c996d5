#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/gpu/check.sh - the GPU checks of docs/gpu.md on a machine with one H100/H200, in under 5 minutes,
# using a build made elsewhere (the GPU machine needs only the NVIDIA driver):
#
#   here:   cmake -S . -B build-gpu -DIBCOLL_CUDA=ON -DCMAKE_BUILD_TYPE=Release
#           make -C build-gpu -j ibcoll ibcoll_cuda ibcoll_softhca gpu_check test_gpu_mem \
#                test_gdr_tp
#           bash tests/gpu/check.sh --pack build-gpu gpu-carry   # only what the run needs
#   there:  bash tests/gpu/check.sh gpu-carry                     # (or build-gpu itself)
#
# Steps (each under a timeout; a failing step does not stop the others):
#   a. gpu_check: every dtype x op kernel against the CPU reference; float-sum reduction
#      bandwidth (3 x bytes) vs a device-to-device copy (2 x bytes); chunked, pipelined
#      pinned<->device staging vs one plain pinned copy. test_gpu_mem (TAP) as well.
#   b. ibcoll allreduce --np 2 and --np 4 --mem cuda over shm (staged through host memory):
#      exit 0 and wrong = 0 in every row of results.csv.
#      The same, 2 ranks, over tcp, and over verbs with the software HCA (staged too).
#   c. the same over --transport gdr with the software HCA (IBCOLL_IBVERBS_LIB), GPU memory
#      registered by dma-buf where the driver exports it, else through a simulated
#      nvidia-peermem (IBCOLL_SYSFS_ROOT); and test_gdr_tp (device-to-device through the
#      soft HCA's CUDA copies, flush).
# The last thing printed is a table. Exit: 0 all correct (bandwidth below target is reported,
# not failed), 1 wrong data somewhere, 3 a step could not run (no GPU, crash, timeout).
set -u

if [ "${1:-}" = "--pack" ]; then
	src=${2:?usage: check.sh --pack BUILD_DIR OUT_DIR}
	dst=${3:?usage: check.sh --pack BUILD_DIR OUT_DIR}
	for f in bench/ibcoll bench/libibcoll-cuda.so libibcoll-softhca.so tests/gpu_check \
		tests/test_gpu_mem tests/test_gdr_tp; do
		if [ -e "$src/$f" ]; then
			mkdir -p "$dst/$(dirname "$f")" && cp -p "$src/$f" "$dst/$f"
		else
			echo "check.sh --pack: $src/$f is missing (build it first)" >&2
		fi
	done
	# The GPU machine's image need not hold the libraries this build links beyond libc (hwloc,
	# udev): carry them, and the run puts BUILD_DIR/lib first on the library path.
	mkdir -p "$dst/lib"
	ldd "$src/bench/ibcoll" | awk '$3 ~ /^\// { print $3 }' | grep -v -E \
		'/lib(c|m|pthread|dl|rt)\.so|ld-linux' | while read -r lib; do cp -pL "$lib" "$dst/lib/"; done
	du -sh "$dst"
	exit 0
fi

build=${1:?usage: check.sh BUILD_DIR  (or: check.sh --pack BUILD_DIR OUT_DIR)}
build=$(cd "$build" && pwd) || exit 3
bin=$build/bench/ibcoll
[ -d "$build/lib" ] && export LD_LIBRARY_PATH=$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export IBCOLL_CUDA_LIB=$build/bench/libibcoll-cuda.so
softhca=$build/libibcoll-softhca.so
work=$(mktemp -d /tmp/ibcoll-gpu-check.XXXXXX)
worst=0 # 0 ok, 1 wrong data, 3 could not run
rows=()

note() { printf '%s\n' "$*"; }
worse() { # keep the worst exit status: 3 > 1 > 0
	if [ "$1" -eq 3 ] || { [ "$1" -eq 1 ] && [ "$worst" -eq 0 ]; }; then worst=$1; fi
}
row() { rows+=("$(printf '%-34s %-44s %s' "$1" "$2" "$3")"); }

# CSV column sums without a CSV library: fields may be quoted ("a,b"), never multi-line.
csv_summary() { # file -> "rows wrong notok"
	awk '
	function split_csv(line, out,    n, i, c, q, f) {
		n = 0; f = ""; q = 0
		for (i = 1; i <= length(line); i++) {
			c = substr(line, i, 1)
			if (q) {
				if (c == "\"" && substr(line, i + 1, 1) == "\"") { f = f c; i++ }
				else if (c == "\"") q = 0
				else f = f c
			} else if (c == "\"") q = 1
			else if (c == ",") { out[++n] = f; f = "" }
			else f = f c
		}
		out[++n] = f
		return n
	}
	NR == 1 { n = split_csv($0, h); for (i = 1; i <= n; i++) col[h[i]] = i; next }
	{
		split_csv($0, v); rows++
		wrong += v[col["wrong"]]
		if (v[col["status"]] != "ok") notok++
	}
	END { printf "%d %d %d\n", rows, wrong, notok }' "$1"
}

note "== machine: $(uname -srm); $(nvidia-smi --query-gpu=name,driver_version,memory.total \
	--format=csv,noheader 2>/dev/null || echo 'nvidia-smi: none')"
if ! "$bin" --version >/dev/null 2>&1; then
	note "check.sh: $bin does not start here:"; "$bin" --version 2>&1 | head -3
fi

# ---- a. kernels and bandwidth ---------------------------------------------------------
note "== a. gpu_check ($build/tests/gpu_check)"
timeout 170 "$build/tests/gpu_check" | tee "$work/gpu_check.txt"
rc=${PIPESTATUS[0]}
if grep -q '^RESULT skip' "$work/gpu_check.txt"; then
	row "kernels vs CPU" "no GPU: $(grep '^SKIP' "$work/gpu_check.txt" | cut -c6-80)" "NOT RUN"
	worse 3
else
	read -r _ _ kpass kfail <<<"$(grep '^RESULT kernels' "$work/gpu_check.txt")"
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]; then
		row "kernels vs CPU (dtype x op)" "${kpass:-?} passed, ${kfail:-?} failed" \
			"$([ "${kfail:-1}" = 0 ] && echo ok || echo FAILED)"
		[ "${kfail:-1}" = 0 ] || worse 1
	else
		row "kernels vs CPU (dtype x op)" "gpu_check exit $rc (crash/timeout)" "FAILED"
		worse 3
	fi
	while read -r _ key bw ref frac verdict; do
		case $key in
		kernel_bw) what="reduce float sum vs D2D copy" ;;
		staging_h2d) what="staging H2D vs pinned copy" ;;
		staging_d2h) what="staging D2H vs pinned copy" ;;
		*) continue ;;
		esac
		pct=$(awk -v f="$frac" 'BEGIN { printf "%.1f%%", 100 * f }')
		row "$what" "$bw GB/s vs $ref GB/s = $pct (target 90%)" \
			"$([ "$verdict" = met ] && echo "met" || echo "BELOW TARGET")"
	done < <(grep -E '^RESULT (kernel_bw|staging_)' "$work/gpu_check.txt")
fi

note "== a. test_gpu_mem (TAP)"
IBC_TEST_HAVE_CUDA=1 timeout 120 "$build/tests/test_gpu_mem" >"$work/test_gpu_mem.tap" 2>&1
rc=$?
nfail=$(grep -c '^not ok' "$work/test_gpu_mem.tap")
nok=$(grep -c '^ok' "$work/test_gpu_mem.tap")
grep '^not ok' "$work/test_gpu_mem.tap" | head -5
if grep -q '^1\.\.0 # SKIP' "$work/test_gpu_mem.tap"; then
	row "test_gpu_mem" "$(head -c 60 "$work/test_gpu_mem.tap")" "NOT RUN"
	worse 3
else
	row "test_gpu_mem" "$nok ok, $nfail not ok (exit $rc)" \
		"$([ "$rc" -eq 0 ] && echo ok || echo FAILED)"
	[ "$rc" -eq 0 ] || worse 1
fi

# ---- b, c. ibcoll allreduce with --mem cuda ------------------------------------------
# A sweep small enough for the time budget, wide enough to cross chunk boundaries.
sweep=(-b 1K -e 16M -f 16 -n 5 -w 2 -c 1 -d float,half,bfloat16,int32 -o sum,avg,min
	--timeout 60)

allreduce() { # name env-assignments... -- ibcoll args...
	local name=$1 out=$work/$1 rc summary nrows wrong notok
	shift
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	note "== $name: ibcoll allreduce $*"
	env "${envs[@]}" timeout 120 "$bin" allreduce "$@" "${sweep[@]}" --out "$out" \
		>"$out.log" 2>&1
	rc=$?
	tail -n 4 "$out.log"
	if [ ! -f "$out/results.csv" ]; then
		row "allreduce $name" "exit $rc, no results.csv: $(tail -n 1 "$out.log" | cut -c1-40)" \
			"FAILED"
		worse "$([ "$rc" -eq 1 ] && echo 1 || echo 3)"
		return
	fi
	summary=$(csv_summary "$out/results.csv")
	read -r nrows wrong notok <<<"$summary"
	if [ "$rc" -eq 0 ] && [ "$wrong" -eq 0 ] && [ "$notok" -eq 0 ] && [ "$nrows" -gt 0 ]; then
		row "allreduce $name" "$nrows rows, 0 wrong, exit 0" "ok"
	else
		row "allreduce $name" "$nrows rows, $wrong wrong, $notok not ok, exit $rc" "FAILED"
		worse "$([ "$wrong" -gt 0 ] || [ "$rc" -eq 1 ] && echo 1 || echo 3)"
	fi
}

allreduce shm-np2-staged -- --np 2 --mem cuda --transport shm
allreduce shm-np4-staged -- --np 4 --mem cuda --transport shm
allreduce tcp-np2-staged -- --np 2 --mem cuda --transport tcp

# gdr over the software HCA: a simulated nvidia-peermem so the peermem path exists even where
# the driver exports no dma-buf; "auto" prefers dma-buf where it works.
fakesys=$work/sysfs
mkdir -p "$fakesys/module/nvidia_peermem" && echo simulated >"$fakesys/module/nvidia_peermem/version"
if [ -f "$softhca" ]; then
	gdr_env=(IBCOLL_IBVERBS_LIB="$softhca" IBCOLL_SYSFS_ROOT="$fakesys"
		IBCOLL_SOFTHCA_DIR="$work/softhca")
	mkdir -p "$work/softhca"
	allreduce verbs-np2-staged "${gdr_env[@]}" -- --np 2 --mem cuda --transport verbs
	allreduce gdr-np2-auto "${gdr_env[@]}" IBCOLL_GDR_REG=auto -- --np 2 --mem cuda \
		--transport gdr
	allreduce gdr-np2-peermem "${gdr_env[@]}" IBCOLL_GDR_REG=peermem -- --np 2 --mem cuda \
		--transport gdr
	note "== c. test_gdr_tp (TAP)"
	env "${gdr_env[@]}" IBC_TEST_HAVE_CUDA=1 timeout 120 "$build/tests/test_gdr_tp" \
		>"$work/test_gdr_tp.tap" 2>&1
	rc=$?
	grep -E '^not ok|GPU' "$work/test_gdr_tp.tap" | head -8
	row "test_gdr_tp (GPU via soft HCA)" \
		"$(grep -c '^ok' "$work/test_gdr_tp.tap") ok, $(grep -c '^not ok' "$work/test_gdr_tp.tap") not ok, $(grep -c '# skip' "$work/test_gdr_tp.tap") skipped" \
		"$([ "$rc" -eq 0 ] && echo ok || echo FAILED)"
	[ "$rc" -eq 0 ] || worse 1
else
	row "allreduce gdr" "no $softhca (build ibcoll_softhca)" "NOT RUN"
	worse 3
fi

# ---- the table ------------------------------------------------------------------------
gpu=$(grep -m1 '^gpu_check: GPU' "$work/gpu_check.txt" 2>/dev/null | cut -c12-)
echo
echo "== ibcoll GPU check: ${gpu:-unknown GPU}; logs in $work"
printf '%-34s %-44s %s\n' "check" "result" "verdict"
printf '%s\n' "${rows[@]}"
echo "exit $worst ($( case $worst in 0) echo all correct ;; 1) echo wrong data ;; *) echo a step could not run ;; esac))"
exit "$worst"
