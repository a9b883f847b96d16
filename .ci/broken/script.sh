#!/usr/bin/env bash
# A script with the mistake shellcheck exists for: an unquoted expansion of a path.
target=$1
rm -rf $target/cache
