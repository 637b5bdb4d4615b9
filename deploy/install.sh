#!/bin/sh
# How the image installs mlproxy, in one place: deploy/Dockerfile runs these two steps, and
# so does tests/integration/test_image_install.py, so what CI tests is what the image does.
#
#   deploy/install.sh wheels SOURCE WHEELHOUSE
#       (the build stage) the mlproxy wheel from SOURCE and a wheel of every dependency,
#       built where compilers may be, so the runtime stage never needs one
#   deploy/install.sh venv WHEELHOUSE VENV
#       (the runtime stage) a fresh virtualenv with mlproxy and its dependencies from
#       WHEELHOUSE only (no index: exactly the wheels the build stage made), then checks
#       that it starts
#
# PYTHON names the interpreter (default: python, the image's).
set -eu
PYTHON=${PYTHON:-python}

usage() {
    sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# With the redis extra: the shared result cache and KILL across replicas (--ml-cache).
wheels() {
    "$PYTHON" -m pip wheel --no-cache-dir --wheel-dir "$2" "$1[redis]"
}

venv() {
    "$PYTHON" -m venv "$2"
    "$2/bin/python" -m pip install --no-cache-dir --no-index --find-links "$1" "mlproxy[redis]"
    "$2/bin/mlproxy" --version
}

[ $# -eq 3 ] || usage
case "$1" in
    wheels) wheels "$2" "$3" ;;
    venv) venv "$2" "$3" ;;
    *) usage ;;
esac
