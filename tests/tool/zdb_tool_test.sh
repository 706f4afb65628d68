#!/usr/bin/env bash
# hawser-zdb end to end: create, import (good and bad input), query, export, admin commands.
#   zdb_tool_test.sh path/to/hawser-zdb
set -uo pipefail
zdb=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # check "what" command...: the command must succeed
    local what=$1; shift
    if ! "$@" >/dev/null 2>&1; then echo "FAIL: $what"; failures=$((failures + 1)); fi
}
refuse() {  # refuse "what" expected-text command...: must fail and say expected-text
    local what=$1 expected=$2; shift 2
    local out
    if out=$("$@" 2>&1); then echo "FAIL: $what (succeeded)"; failures=$((failures + 1)); return; fi
    if [[ "$out" != *"$expected"* ]]; then echo "FAIL: $what: '$out' lacks '$expected'"; failures=$((failures + 1)); fi
}
s="$work/store"
printf '{"name":"ada","level":3}\n{"name":"bob","level":12,"tags":["x"]}\n\n{"name":"cy","level":40,"big":18446744073709551615}\n' >"$work/good.jsonl"
printf '{"name":"d","level":1}\n{"name":"e"}\n{oops\n{"name":"f"}\n' >"$work/bad.jsonl"
printf '[1,2]\n' >"$work/array.jsonl"
nest() {  # nest N: a JSON object whose field "a" opens N-1 more arrays (N levels in all)
    printf '{"a":%s1%s}' "$(printf '%*s' $(($1 - 1)) '' | tr ' ' '[')" "$(printf '%*s' $(($1 - 1)) '' | tr ' ' ']')"
}
{ nest 32; echo; } >"$work/limit.jsonl"
{ echo '{"name":"g"}'; nest 33; echo; } >"$work/deeper.jsonl"
{ echo '{"name":"h"}'; nest 100000; echo; } >"$work/deepest.jsonl"

check "create" "$zdb" -s "$s" create players --durability sync
refuse "create twice" "exists" "$zdb" -s "$s" create players
check "import" "$zdb" -s "$s" import players "$work/good.jsonl"
refuse "bad JSON names its line" "bad.jsonl:3: not valid JSON; 2 records before it were imported" \
    "$zdb" -s "$s" import players "$work/bad.jsonl"
refuse "a line that is not an object" "array.jsonl:1: not a JSON object" "$zdb" -s "$s" import players "$work/array.jsonl"
# Documents nest at most 32 levels (what ZDB's reader accepts); deeper lines stop the import.
check "create deep" "$zdb" -s "$s" create deep
check "a line 32 levels deep" "$zdb" -s "$s" import deep "$work/limit.jsonl"
[[ $("$zdb" -s "$s" export deep 2>/dev/null) == *"$(nest 32 | cut -c 6-)"* ]] || { echo "FAIL: the 32-level record reads back"; failures=$((failures + 1)); }
refuse "a line nested deeper than the limit names its line" \
    "deeper.jsonl:2: nested deeper than 32 levels of objects and arrays; 1 records before it were imported" \
    "$zdb" -s "$s" import deep "$work/deeper.jsonl"
refuse "a line nested 100000 deep is refused, not a crash" \
    "deepest.jsonl:2: nested deeper than 32 levels of objects and arrays; 1 records before it were imported" \
    "$zdb" -s "$s" import deep "$work/deepest.jsonl"
[[ $("$zdb" -s "$s" export deep 2>/dev/null | wc -l) == 3 ]] || { echo "FAIL: deep holds the lines before the deep ones"; failures=$((failures + 1)); }
refuse "a deep filter is refused, not a crash" "--filter: nested deeper than 32" \
    "$zdb" -s "$s" query deep --filter "$(nest 50000)"
check "drop deep" "$zdb" -s "$s" drop deep
refuse "missing file" "cannot open" "$zdb" -s "$s" import players "$work/nope.jsonl"
refuse "unknown database" "no database 'ghosts'" "$zdb" -s "$s" query ghosts

count=$("$zdb" -s "$s" export players 2>/dev/null | wc -l)
[[ $count == 5 ]] || { echo "FAIL: export gave $count records, want 5 (3 + 2 before the bad line)"; failures=$((failures + 1)); }
got=$("$zdb" -s "$s" query players --filter '{"level":{"$gte":10}}' 2>/dev/null)
want=$'{"_id":2,"level":12,"name":"bob","tags":["x"]}\n{"_id":3,"big":18446744073709551615,"level":40,"name":"cy"}'
[[ "$got" == "$want" ]] || { echo "FAIL: query gave '$got'"; failures=$((failures + 1)); }
got=$("$zdb" -s "$s" query players --reverse --limit 1 2>/dev/null)
[[ "$got" == *'"_id":5'* ]] || { echo "FAIL: reverse limit gave '$got'"; failures=$((failures + 1)); }
refuse "bad filter" "unknown operator '\$between'" "$zdb" -s "$s" query players --filter '{"level":{"$between":1}}'
refuse "filter not JSON" "--filter: not a JSON object" "$zdb" -s "$s" query players --filter '{level'

check "compact" "$zdb" -s "$s" compact players
check "checkpoint" "$zdb" -s "$s" checkpoint "$work/copy"
[[ $("$zdb" -s "$work/copy" export players 2>/dev/null | wc -l) == 5 ]] || { echo "FAIL: checkpoint copy"; failures=$((failures + 1)); }
[[ $("$zdb" -s "$s" stats) == *'"records":5'* ]] || { echo "FAIL: stats"; failures=$((failures + 1)); }
check "index" "$zdb" -s "$s" index players level
refuse "index twice" "an index on 'level' exists" "$zdb" -s "$s" index players level
[[ $("$zdb" -s "$s" stats) == *'"indexes":["level"]'* ]] || { echo "FAIL: stats lists the index"; failures=$((failures + 1)); }
[[ $("$zdb" -s "$s" stats) == *'"cache_hit_rate"'* ]] || { echo "FAIL: stats shows the cache"; failures=$((failures + 1)); }
out=$("$zdb" -s "$s" query players --filter '{"level":12}' 2>&1)
[[ "$out" == *'"name":"bob"'*"(index on level)"* ]] || { echo "FAIL: indexed query gave '$out'"; failures=$((failures + 1)); }
check "query into a new database" "$zdb" -s "$s" query players --filter '{"level":{"$lt":10}}' --into low
got=$("$zdb" -s "$s" export low 2>/dev/null)
want=$'{"_id":1,"level":3,"name":"ada"}\n{"_id":4,"level":1,"name":"d"}'
[[ "$got" == "$want" ]] || { echo "FAIL: --into gave '$got'"; failures=$((failures + 1)); }
refuse "--into an existing database" "exists" "$zdb" -s "$s" query players --into low
check "copy" "$zdb" -s "$s" copy players backup
refuse "copy onto an existing name" "exists" "$zdb" -s "$s" copy players low
check "replace" "$zdb" -s "$s" replace players low
[[ $("$zdb" -s "$s" list | tr '\n' ' ') == "backup players " ]] || { echo "FAIL: list after replace"; failures=$((failures + 1)); }
[[ $("$zdb" -s "$s" export players 2>/dev/null | wc -l) == 2 ]] || { echo "FAIL: replaced contents"; failures=$((failures + 1)); }
[[ $("$zdb" -s "$s" export backup 2>/dev/null | wc -l) == 5 ]] || { echo "FAIL: copy contents"; failures=$((failures + 1)); }
refuse "replace from nothing" "no database 'ghosts'" "$zdb" -s "$s" replace players ghosts
check "drop-index" "$zdb" -s "$s" drop-index backup level
refuse "drop a missing index" "no index on 'level'" "$zdb" -s "$s" drop-index backup level
check "drop" "$zdb" -s "$s" drop players
check "drop the copy" "$zdb" -s "$s" drop backup
[[ -z $("$zdb" -s "$s" list) ]] || { echo "FAIL: list after drop"; failures=$((failures + 1)); }

# Only create makes a store: a mistyped path is an error, and leaves nothing behind.
refuse "a path with no store" "no store in" "$zdb" -s "$work/typo" list
[[ ! -e $work/typo ]] || { echo "FAIL: a path with no store was made one"; failures=$((failures + 1)); }
# A pipe has no size for the bar, and is imported all the same.
check "create piped" "$zdb" -s "$s" create piped
check "import from a pipe" bash -c "cat '$work/good.jsonl' | '$zdb' -s '$s' import piped /dev/stdin"
[[ $("$zdb" -s "$s" export piped 2>/dev/null | wc -l) == 3 ]] || { echo "FAIL: piped contents"; failures=$((failures + 1)); }
# Output that cannot be written fails the command.
if [[ -w /dev/full ]]; then
    refuse "export to a full disk" "cannot write" bash -c "'$zdb' -s '$s' export piped >/dev/full"
fi

echo "$failures failed"
[[ $failures == 0 ]]
