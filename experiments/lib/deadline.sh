# Sourced by the study scripts (experiments/*/run_*.sh). `limit` sets TO to a `timeout`
# prefix that ends at DEADLINE (epoch seconds; empty without DEADLINE) and exits 3 when the
# deadline is (nearly) reached: SIGTERM makes `pdekit train` checkpoint and stop, and 60 s
# later the command is killed.
limit() {
  TO=""
  [ -n "${DEADLINE:-}" ] || return 0
  local left=$(( DEADLINE - $(date +%s) ))
  if [ $left -le 5 ]; then echo "deadline reached" >&2; exit 3; fi
  TO="timeout -s TERM -k 60 $left"
}
