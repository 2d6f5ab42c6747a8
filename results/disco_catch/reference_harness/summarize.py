import glob, json, sys
import numpy as np
for f in sorted(glob.glob('/work/scratch/disco/results/ref_*_seed*.json')):
    d = json.load(open(f))
    ar = np.array(d['avg_returns'])
    n = len(ar)
    part = 'steps_done' in d
    curve = [np.nanmean(ar[i:i+100]) for i in range(0, n, 100)]
    last = np.nanmean(ar[-100:])
    extra = '' if part else (f" compile={d['compile_s']:.1f}s learner1={d['first_learner_step_s']:.1f}s "
                             f"med_step={d['median_step_s_after_compile']:.2f}s total={d['total_s']:.0f}s "
                             f"load={[round(x,2) for x in d['loadavg_start']]}->{[round(x,2) for x in d['loadavg_end']]}")
    print(f"{f.split('/')[-1]} n={n} last100={last:.3f} curve=[{', '.join(f'{c:.2f}' for c in curve)}]{extra}")
