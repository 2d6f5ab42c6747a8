#!/bin/bash
# Usage: run_seeds.sh SEED... ; runs disco seeds one at a time, 1000 steps each.
cd /work/scratch/disco
export XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false
export PYTHONPATH=/work/shared/reference/disco_rl
LOG=results/run.log
for S in "$@"; do
  echo "=== seed $S start $(date -Is) load: $(cat /proc/loadavg)" >> $LOG
  venv/bin/python ref_catch.py --seed $S --num-steps 1000 >> $LOG 2>&1 &
  P=$!
  echo 10 > /proc/$P/autogroup
  echo "seed $S python pid $P" >> $LOG
  wait $P
  echo "=== seed $S end rc=$? $(date -Is) load: $(cat /proc/loadavg)" >> $LOG
done
echo "=== all done $(date -Is)" >> $LOG
