#!/usr/bin/env bash
#
# tests/node_acl.sh — ACL users on a real 3-node cluster (issue #18): a user created on one node
# is enforced by the others and after a restart of the whole cluster (users are replicated
# state); a wrong password, an unknown user, a command outside the user's categories, a key
# outside its patterns, a transaction and a script that break them are each refused with Redis
# 7.0's exact error while the cluster keeps serving; ACL DELUSER closes the user's connections and
# is seen everywhere; requirepass is the default user's password until ACL SETUSER default.
#
# Usage: tests/node_acl.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_acl.sh PATH/TO/raftkv-node}
command -v redis-cli >/dev/null || { echo "node_acl: redis-cli not found" >&2; exit 1; }
port_offset=7
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# As a user: redis-cli authenticated (AUTH before the command, on the same connection).
as() {
    local i=$1 user=$2 pass=$3 out
    shift 3
    for _ in $(seq 1 100); do
        out=$(timeout 10 redis-cli --no-auth-warning --user "$user" --pass "$pass" -p "$(cport "$i")" "$@" 2>&1)
        [[ $out == TRYAGAIN* ]] || break
        sleep 0.1
    done
    printf '%s\n' "$out"
}

# Polls (every 0.1 s, up to 30 s) until node $1 answers command ${@:3} with $2 (the lines of
# the answer joined by spaces).
await() {
    local i=$1 want=$2 got=""
    shift 2
    for _ in $(seq 1 300); do
        got=$(rk_cli "$i" "$@" | tr '\n' ' ' | sed 's/ $//')
        [[ $got == "$want" ]] && break
        sleep 0.1
    done
    printf '%s\n' "$got"
}

for i in 1 2 3; do start "$i"; done
leader=$(rk_wait_leader 300) || { echo "FAIL no leader"; exit 1; }
echo "leader: node $leader"

# A user created on node 1 ...
check "ACL SETUSER on node 1" "OK" \
    "$(rk_cli 1 ACL SETUSER alice on '>s3cret' '~app:*' '%R~ro:*' +@read +@write -del +eval +multi +exec '+acl|whoami')"
check "GETUSER shows the rules" "-@all +@read +@write -del +eval +multi +exec +acl|whoami" \
    "$(rk_cli 1 ACL GETUSER alice | sed -n '6p')"
check "the password is stored hashed" \
    "$(printf %s s3cret | sha256sum | cut -d' ' -f1)" "$(rk_cli 1 ACL GETUSER alice | sed -n '4p')"
# ... is applied on the others.
check "node 2 has the user" "alice default" "$(await 2 "alice default" ACL USERS)"
await 3 "alice default" ACL USERS >/dev/null
check "node 3 has the user" "user alice on #$(printf %s s3cret | sha256sum | cut -d' ' -f1) ~app:* %R~ro:* resetchannels -@all +@read +@write -del +eval +multi +exec +acl|whoami" \
    "$(rk_cli 3 ACL LIST | grep '^user alice')"

check "user works on node 2" "OK" "$(as 2 alice s3cret SET app:1 v1)"
check "user reads on node 3" "v1" "$(as 3 alice s3cret GET app:1)"
check "WHOAMI" "alice" "$(as 3 alice s3cret ACL WHOAMI)"
check "wrong password" "WRONGPASS invalid username-password pair or user is disabled." \
    "$(rk_cli 2 AUTH alice wrong)"
check "unknown user" "WRONGPASS invalid username-password pair or user is disabled." \
    "$(rk_cli 3 AUTH mallory s3cret)"
check "HELLO AUTH wrong password" "WRONGPASS invalid username-password pair or user is disabled." \
    "$(rk_cli 1 HELLO 3 AUTH alice nope)"
check "command outside the categories" "NOPERM this user has no permissions to run the 'del' command" \
    "$(as 2 alice s3cret DEL app:1)"
check "admin command refused" "NOPERM this user has no permissions to run the 'config|get' command" \
    "$(as 1 alice s3cret CONFIG GET maxmemory)"
check "ACL refused (@admin)" "NOPERM this user has no permissions to run the 'acl|setuser' command" \
    "$(as 1 alice s3cret ACL SETUSER alice +@all)"
check "key outside the patterns" "NOPERM this user has no permissions to access one of the keys used as arguments" \
    "$(as 3 alice s3cret SET other v)"
check "read-only pattern: write refused" "NOPERM this user has no permissions to access one of the keys used as arguments" \
    "$(as 3 alice s3cret SET ro:1 v)"
check "read-only pattern: read allowed" "" "$(as 3 alice s3cret GET ro:1)"
check "MULTI with a refused command aborts EXEC" \
    "OK|NOPERM this user has no permissions to run the 'del' command|EXECABORT Transaction discarded because of previous errors." \
    "$(printf 'MULTI\nDEL app:1\nEXEC\n' | timeout 10 redis-cli --no-auth-warning --user alice --pass s3cret -p "$(cport 2)" 2>&1 | grep -v '^$' | tr '\n' '|' | sed 's/|$//')"
release=$'\n        local token = redis.call(\'get\', KEYS[1])\n        if not token or token ~= ARGV[1] then\n            return 0\n        end\n        redis.call(\'del\', KEYS[1])\n        return 1\n    '
check "script calling a refused command" \
    "ERR The user executing the script can't run this command or subcommand script: c3f8721cbb97f72bc19e972846bd7aaf91901658, on @user_script:6." \
    "$(as 1 alice s3cret EVAL "$release" 1 app:1 v1)"
check "script on a key outside the patterns" \
    "NOPERM this user has no permissions to access one of the keys used as arguments" \
    "$(as 1 alice s3cret EVAL "$release" 1 other v1)"
check "the cluster keeps serving" "OK" "$(rk_cli 3 SET k after)"
check "... on every node" "after" "$(rk_cli 2 GET k)"

# An admin user for what follows; then the default user gets a password.
check "admin user" "OK" "$(rk_cli 2 ACL SETUSER root on '>rootpw' allkeys +@all)"
await 1 "OK" ACL SETUSER default resetpass '>defpw' >/dev/null
check "default user needs its password now" "NOAUTH Authentication required." "$(await 3 "NOAUTH Authentication required." GET k)"
check "AUTH with the default password" "after" "$(as 3 default defpw GET k)"

# Restart of the whole cluster: the users are in the state machine.
for i in 1 2 3; do kill -TERM "${pid[$i]}"; done
for i in 1 2 3; do wait "${pid[$i]}"; done
for i in 1 2 3; do start "$i"; done
# (INFO needs the default user's password now)
for _ in $(seq 1 300); do
    for i in 1 2 3; do
        [[ $(as "$i" default defpw INFO raft | tr -d '\r' | sed -n 's/^role://p') == leader ]] && break 2
    done
    sleep 0.1
done
check "user after restart" "v1" "$(as 1 alice s3cret GET app:1)"
check "still refused after restart" "NOPERM this user has no permissions to run the 'del' command" \
    "$(as 2 alice s3cret DEL app:1)"
check "default password after restart" "NOAUTH Authentication required." "$(rk_cli 2 GET k)"

# DELUSER on one node: the user is gone everywhere, and its open connection closes.
# A raw connection of alice (bash's /dev/tcp: it sees the server close it without sending).
exec {alice}<>"/dev/tcp/127.0.0.1/$(cport 3)"
printf '*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$6\r\ns3cret\r\n*2\r\n$3\r\nGET\r\n$5\r\napp:1\r\n' >&"$alice"
read -r -t 20 l1 <&"$alice"
read -r -t 20 l2 <&"$alice"
read -r -t 20 l3 <&"$alice"
check "an open connection of alice" "+OK \$2 v1" "$(printf '%s %s %s' "$l1" "$l2" "$l3" | tr -d '\r')"
check "CLIENT KILL USER of an unknown user" "ERR No such user 'nosuch'" \
    "$(as 1 root rootpw CLIENT KILL USER nosuch)"
check "CLIENT KILL USER with no such connection here" "0" "$(as 1 root rootpw CLIENT KILL USER alice)"
check "DELUSER" "1" "$(as 1 root rootpw ACL DELUSER alice nobody)"
for i in 2 3; do
    got=""
    for _ in $(seq 1 300); do
        got=$(rk_cli "$i" AUTH alice s3cret)
        [[ $got == WRONGPASS* ]] && break
        sleep 0.1
    done
    check "deleted user refused on node $i" "WRONGPASS invalid username-password pair or user is disabled." "$got"
done
# No command sent: the node closes it when it applies the deletion, as Redis does.
rc=0
read -r -t 20 after <&"$alice" || rc=$?
check "the deleted user's connection was closed (EOF, not a timeout)" "1" "$rc"
exec {alice}>&-
check "default user cannot be removed" "ERR The 'default' user cannot be removed" \
    "$(as 2 root rootpw ACL DELUSER default)"

echo "node_acl: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
