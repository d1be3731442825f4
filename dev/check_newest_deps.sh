#!/usr/bin/env bash
# Try the newest versions pyproject.toml allows instead of the lock, in a throwaway venv:
# install, print what resolved, run the whole suite. With --write-lock, and only if the suite
# passes, rewrite requirements/ci-lock.txt from that venv (review and commit it as its own step).
#
#   bash dev/check_newest_deps.sh [--write-lock] [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
write_lock=0
if [ "${1:-}" = "--write-lock" ]; then write_lock=1; shift; fi
venv=$(mktemp -d /tmp/aligngpt-newest.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
. "$venv/bin/activate"
python -m pip install -q --upgrade pip
pip install -q torch==2.13.0
# torch stays the CPU build CI uses (a newer torch here is a multi-GB CUDA build): only the rest moves.
echo "torch==2.13.0" > "$venv/hold-torch.txt"
pip install -q --upgrade --upgrade-strategy eager -c "$venv/hold-torch.txt" -e ".[test]"
echo "== resolved (differences from requirements/ci-lock.txt) =="
pip freeze --all --exclude-editable | grep -v -E "^(pip|aligngpt)==" | sed 's/^torch==2.13.0+cpu$/torch==2.13.0/' \
  | LC_ALL=C sort -f > "$venv/resolved.txt"
diff <(grep "==" requirements/ci-lock.txt) "$venv/resolved.txt" || true
echo "== tests =="
status=0
ALIGNGPT_UNLOCKED=1 python -m pytest -q "$@" || status=$?
if [ "$status" -eq 0 ] && [ "$write_lock" -eq 1 ]; then
  { grep "^#" requirements/ci-lock.txt; cat "$venv/resolved.txt"; } > requirements/ci-lock.txt.new
  mv requirements/ci-lock.txt.new requirements/ci-lock.txt
  echo "requirements/ci-lock.txt rewritten; run the suite once more with the README's test command"
fi
exit "$status"
