#!/usr/bin/env bash
# The Ansible quality gates of `make test` (and `make quality`): sanity, lint, changelog,
# build-doc (build, install, ansible-doc) and molecule; `tests/quality.sh lint changelog` runs
# only those. Every gate runs even when an earlier one fails; the summary names each gate with
# its duration and the script exits non-zero if any failed. Needs no network but PyPI and apt.
# See docs/development.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
if [ ! -x "$venv/bin/ansible-test" ]; then
    echo "quality: $venv is missing; run 'make venv' first" >&2
    exit 2
fi
export PATH="$venv/bin:$PATH"
# Keep ansible-test's venvs, the pip bootstrap stand-in and Ansible's caches out of the real home.
export HOME=$root/.cache/home
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$HOME"
collection=openstack_dr.bank

# Recreate the symlink setup-venv.sh makes, in case .cache was wiped after `make venv`.
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank

summary=()
failed=0
run_gate() {
    local name=$1 start rc
    shift
    echo
    echo "=== gate: $name ==="
    start=$SECONDS
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        summary+=("$(printf 'PASS  %-10s %4ds' "$name" $((SECONDS - start)))")
    else
        summary+=("$(printf 'FAIL  %-10s %4ds  (exit %d)' "$name" $((SECONDS - start)) "$rc")")
        failed=1
    fi
}

# Files of the collection: tracked plus untracked-but-not-ignored, minus deleted ones.
collection_files() {
    git -C "$root" ls-files -co --exclude-standard -z \
        | while IFS= read -r -d '' f; do
            if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
        done
}

ensure_shellcheck() {
    command -v shellcheck >/dev/null && return 0
    echo "quality: installing shellcheck (apt-get) so ansible-test really checks shell scripts"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -qq shellcheck >/dev/null 2>&1 \
        || { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq shellcheck; }
    command -v shellcheck >/dev/null
}

install_get_pip_stand_in() {
    # ansible-test caches its pip bootstrap script as ~/.ansible/test/cache/get_pip_<pip version>.py
    # and downloads it from a host that is not PyPI when missing: read the version from its source.
    local pip_version
    pip_version=$(python - <<'PY'
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", source.read_text()).group(1))
PY
    )
    mkdir -p "$HOME/.ansible/test/cache"
    cp tests/quality/get_pip.py "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
}

gate_sanity() {
    local ignores
    ignores=$(compgen -G 'tests/sanity/ignore-*.txt' || true)
    if [ -n "$ignores" ]; then
        echo "quality: sanity ignore files are not allowed: $ignores" >&2
        return 1
    fi
    ensure_shellcheck
    install_get_pip_stand_in
    # A copy of its own per run: two runs at once (two sessions, or make test beside a quick check)
    # would otherwise delete each other's files under pylint (a getcwd error).
    local workdir copy status=0
    mkdir -p .cache
    workdir=$(mktemp -d "$root/.cache/sanity.XXXXXX")
    copy=$workdir/ansible_collections/openstack_dr/bank
    mkdir -p "$copy"
    collection_files | xargs -0 -r cp --parents -P -t "$copy" --
    # An empty copy would pass with nothing tested.
    if [ ! -f "$copy/galaxy.yml" ] || [ ! -d "$copy/plugins/modules" ]; then
        echo "quality: the sanity copy $copy holds no collection" >&2
        rm -rf "$workdir"
        return 1
    fi
    # ansible-test looks for .git upwards and would find this checkout, where .cache/ is ignored
    # and so holds no files: give the copy a repository of its own (nothing committed).
    git -C "$copy" init -q
    # The global pip config on our machines adds harmless "WARNING: Location ..." noise: drop it.
    (cd "$copy" && ansible-test sanity --venv --python 3.11 --color no) 2>&1 \
        | { grep -v "^WARNING: Location '" || true; } || status=$?
    rm -rf "$workdir"
    return "$status"
}

gate_lint() {
    [ -f .ansible-lint ] || { echo "quality: .ansible-lint is missing" >&2; return 1; }
    # Production profile with no skips: no skip/warn lists, no ignore file, no noqa comments.
    if grep -qE '^(skip_list|warn_list):' .ansible-lint || [ -e .ansible-lint-ignore ] \
        || [ -e .config/ansible-lint-ignore.txt ]; then
        echo "quality: ansible-lint skips are not allowed (.ansible-lint skip_list/warn_list or an ignore file)" >&2
        return 1
    fi
    local noqa
    noqa=$(collection_files | grep -zE '\.ya?ml$' | xargs -0 -r grep -nE '#[[:space:]]*noqa' || true)
    if [ -n "$noqa" ]; then
        printf 'quality: ansible-lint noqa comments are not allowed:\n%s\n' "$noqa" >&2
        return 1
    fi
    ansible-lint --offline --profile production --nocolor
}

gate_changelog() {
    antsibull-changelog lint -v
    antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
}

gate_build() {
    local tmp status=0
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064  # expand now; each gate runs in a subshell, so EXIT is the gate's end
    trap "rm -rf '$tmp'" EXIT
    ansible-galaxy collection build --output-path "$tmp/dist" .
    local tarball
    tarball=$(ls "$tmp"/dist/openstack_dr-bank-*.tar.gz)
    # Only the temporary path: the source checkout is also openstack_dr.bank 0.1.0 and would
    # make the install a no-op ("already installed").
    ANSIBLE_COLLECTIONS_PATH=$tmp/collections \
        ansible-galaxy collection install "$tarball" -p "$tmp/collections" --no-deps
    local installed=$tmp/collections/ansible_collections/openstack_dr/bank
    local listing unwanted
    listing=$(tar -tzf "$tarball")
    for unwanted in tests .devcloud .venv .cache .git .ansible tests/output changelogs/.plugin-cache.yaml; do
        if grep -qE "^(\./)?${unwanted//./\\.}(/|$)" <<<"$listing" || [ -e "$installed/$unwanted" ]; then
            echo "quality: the built collection contains $unwanted" >&2
            status=1
        fi
    done
    # ansible-doc from the installed copy only, not from the source checkout.
    local -a modules=() roles=()
    local f
    for f in plugins/modules/*.py; do
        [ -e "$f" ] || continue
        f=$(basename "$f" .py)
        [ "$f" = __init__ ] || modules+=("$collection.$f")
    done
    for f in roles/*/; do
        [ -d "$f" ] && roles+=("$collection.$(basename "$f")")
    done
    echo "quality: ansible-doc for ${#modules[@]} module(s) and ${#roles[@]} role(s)"
    local name
    for name in "${modules[@]}"; do
        ANSIBLE_COLLECTIONS_PATH=$tmp/collections ansible-doc -t module "$name" >/dev/null \
            || { echo "quality: ansible-doc -t module $name failed" >&2; status=1; }
    done
    for name in "${roles[@]}"; do
        ANSIBLE_COLLECTIONS_PATH=$tmp/collections ansible-doc -t role "$name" >/dev/null \
            || { echo "quality: ansible-doc -t role $name failed" >&2; status=1; }
    done
    return "$status"
}

gate_molecule() {
    local -a scenarios=() base=(-c "$root/tests/quality/molecule-base.yml")
    [ -f extensions/molecule/config.yml ] && base+=(-c "$root/extensions/molecule/config.yml")
    local f
    for f in extensions/molecule/*/molecule.yml; do
        [ -e "$f" ] && scenarios+=("$(basename "$(dirname "$f")")")
    done
    echo "quality: ${#scenarios[@]} molecule scenario(s)"
    # Molecule remembers across runs that a scenario was prepared and skips its prepare; after a
    # devcloud restart that state is a lie (the prepared volumes are gone). Every run starts clean.
    rm -rf "$HOME"/.ansible/tmp/molecule.*
    local name status=0
    for name in "${scenarios[@]}"; do
        echo "--- molecule test -s $name"
        NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 molecule "${base[@]}" test -s "$name" || { echo "quality: molecule scenario $name failed" >&2; status=1; }
    done
    return "$status"
}

# `tests/quality.sh [gate...]` runs only the named gates; no argument runs them all.
all_gates=(sanity lint changelog build-doc molecule)
selected=("${@:-${all_gates[@]}}")
for gate in "${selected[@]}"; do
    [[ " ${all_gates[*]} " == *" $gate "* ]] \
        || { echo "quality: unknown gate '$gate' (known: ${all_gates[*]})" >&2; exit 2; }
done
for gate in "${selected[@]}"; do
    case $gate in
        sanity) run_gate sanity gate_sanity ;;
        lint) run_gate lint gate_lint ;;
        changelog) run_gate changelog gate_changelog ;;
        build-doc) run_gate build-doc gate_build ;;
        molecule) run_gate molecule gate_molecule ;;
    esac
done

echo
echo "=== quality gates ==="
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "quality: FAILED (see the gate output above)" >&2
    exit 1
fi
echo "quality: all gates passed"
