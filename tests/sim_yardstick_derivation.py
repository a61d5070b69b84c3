# Derivation of the yardstick's margins (tests/sim_yardstick.rs) from the simulator's
# parameters (src/sim/model.rs defaults), without running the simulation:
# expected cost per RFQ = E[best in-time quote if within the desk's limit, else an average
# dealer's cost] + expected leakage of the asked dealers, averaged over the order flow
# (bonds weighted by sqrt(ADV), 8 size quantiles of the log-normal, both sides, the rules'
# panel sizes). Run: python3 tests/sim_yardstick_derivation.py (standard library only).
# dyn_b05/dyn_b10: the ideal dynamic panel with an axe bonus of 0.5 / 1.0 instead of 0.2;
# oracle_noaxe: the oracle's axe-free panel in a market without axes.
#
# Two columns. "first": as first derived (session 2), every asked dealer's expected leak added
# to the cost of the RFQ. "timed": the correction of the fifth session. In the simulator a
# dealer prices off the mid of the moment it answers (src/sim/harness.rs, dealer_answer), so
# a leak costs the client only through the quotes that come after it: quote i carries
# leak_prob_k x leak_intensity_k x impact of each asked dealer k (itself included) times
# P(k's leak lands before i answers) = Phi((ln m_i - ln 2 s) / sqrt(s_i^2 + 0.5^2)) (leak
# delay log-normal, median 2 s, sigma 0.5; i's response log-normal, median m_i, sigma s_i;
# the conditioning on answering in time is left out); an RFQ not filled pays the average
# dealer's cost after the whole move (its end mid holds every leak, as before). Panels are
# chosen as before (the oracle's by the first formula, which is what src/sim/policy.rs uses).
import csv, math, datetime, os
from statistics import NormalDist
N = NormalDist()
SQ2 = math.sqrt(2.0)
Phi = lambda x: 0.5*(1.0+math.erf(x/SQ2))

HERE = os.path.dirname(os.path.abspath(__file__))
rows = [r for r in csv.DictReader(l for l in open(os.path.join(HERE, '..', 'config', 'instruments.csv')) if not l.startswith('#'))]
SEG = {'ig_corp':0,'hy_corp':1,'muni':2,'structured':3,'govt':4}
BASE = [52,85,52,75,8]; VOL = [40,90,35,60,25]
RATINGS = "AAA AA+ AA AA- A+ A A- BBB+ BBB BBB- BB+ BB BB- B+ B B- CCC+ CCC CCC- CC C D".split()
today = datetime.date(2026,11,23)
bonds = []
for r in rows:
    seg = SEG[r['asset_class']]
    adv = float(r['adv_30d'] or 0) or 1e6
    vol = float(r['daily_vol_bps']) if r['daily_vol_bps'] else VOL[seg]
    lt = r['last_trade']
    days = (today - datetime.date.fromisoformat(lt)).days if lt else math.inf
    rating = r['rating_sp'] or 'NR'
    bonds.append(dict(seg=seg, adv=adv, vol=vol, days=days, rating=rating, w=math.sqrt(adv), ac=r['asset_class']))
W = sum(b['w'] for b in bonds)

# Dealers: (answer, cost_mult, median_s, sigma, leak_prob, leak_int, capacity) home/away
def seg(a,c,m,s,lp,li,cap): return dict(a=a,c=c,m=m,s=s,lp=lp,li=li,cap=cap)
GOOD = seg(.85,.80,6,.5,.10,.1,25e6)
NH = seg(.90,.60,8,.5,.05,.1,20e6); NA = seg(.35,1.25,12,.6,.10,.1,5e6)
FL = seg(.90,.85,2,.4,.80,.3,25e6)
SS = seg(.75,.65,14,.5,.05,.1,15e6)
ALL = [0,1,2,3,4]
arch = [('G',ALL),('G',ALL),('F',ALL),('F',ALL),('N',[0]),('N',[1]),('S',ALL),('N',[2]),('F',ALL),('N',[3,1]),('S',ALL),('N',[0,4])]
def truth(d, s):
    a, home = arch[d]
    if a=='G': return GOOD
    if a=='F': return FL
    if a=='S': return SS
    return NH if s in home else NA
AXE_COST, AXE_CAP, AXE_ANS = 0.5, 2.0, 0.95
def axed(t):
    return dict(t, a=max(t['a'],AXE_ANS), c=t['c']*AXE_COST, cap=t['cap']*AXE_CAP)

# Axe probability: dealer d axed against an order in bond b (one side of two).
life, gap, pc, pr = 5400., 1800., .2, .3
stage = pc*0.5*life + pr*0.95*life + (1-pc-pr)*life
span = stage/(1-pr)
duty = span/(span+gap)
def q_axe(d, b):
    home = arch[d][1]
    if bonds[b]['seg'] not in home: return 0.0
    wd = sum(1/math.sqrt(x['adv']) for x in bonds if x['seg'] in home)
    p1 = duty * (1/math.sqrt(bonds[b]['adv']))/wd * 0.5
    return 1 - (1-p1)**3

TIMEOUT = 20.0
def base_cost(b, q):
    size = min(max((1e6/q)**0.15, 0.6), 1.6)
    return BASE[b['seg']]*size + 0.5*impact(b,q)
def impact(b, q):
    return b['vol']*math.sqrt(min(q/b['adv'], 1.0))

LEAK_MEDIAN_S, LEAK_SIGMA = 2.0, 0.5
def expected_cost(panel_truths, b, q, timed=False):
    base = base_cost(b, q); sd = 0.35*base; imp = impact(b, q)
    parts = []; leak = 0.0
    for t in panel_truths:
        intime = Phi(math.log(TIMEOUT/t['m'])/t['s'])
        p = t['a']*intime if q <= t['cap'] else 0.0
        carried = 0.0
        if timed:
            before = Phi(math.log(t['m']/LEAK_MEDIAN_S)/math.sqrt(t['s']**2 + LEAK_SIGMA**2))
            carried = sum(k['lp']*k['li']*imp for k in panel_truths)*before
        parts.append((p, t['c']*base + carried)); leak += t['lp']*t['li']*imp
    if timed:
        return expected_best(parts, base, sd, leak), leak
    return expected_best(parts, base, sd, 0.0, leak) + leak, leak

def expected_best(parts, base, sd, unfilled_extra, charged_leak=None):
    # "first": filled iff Y* + leak <= L, cost Y* (+ leak, added by the caller); "timed":
    # each quote already carries the leaks before it, filled iff Y* <= L, not filled: base +
    # the whole leak (unfilled_extra).
    leak = 0.0 if charged_leak is None else charged_leak
    lo = min([m-5*sd for _,m in parts] + [0.0]); hi = max([m+5*sd for _,m in parts] + [2.5*base])
    n = 60; h = (hi-lo)/n
    S = lambda x: math.prod(1-p*Phi((x-m)/sd) for p,m in parts)
    e = 0.0; prev = S(lo)
    for k in range(n):
        x1 = lo+(k+1)*h; s1 = S(x1); dens = prev - s1; x = x1 - h/2
        pfill = Phi((1.3*base - (x+leak))/(0.3*base))
        e += dens*(x*pfill + (base + unfilled_extra)*(1-pfill)); prev = s1
    e += prev*(base + unfilled_extra)   # nobody quoted (in time, within capacity)
    return e

def composite(t, B, imp):
    intime = Phi(math.log(TIMEOUT/t['m'])/t['s'])
    fill = t['a']*intime*0.5
    pi = 1 + (-t['c']*B)/10
    lk = 1 + (-t['c']*B + 0.68*imp)/10
    spd = max(0.0, min(1.0, 1 - t['m']/60))
    return 0.3*fill + 0.4*pi + 0.2*lk + 0.1*spd

def rule_k(b, q, sell):
    pct = 100*q/b['adv']; imp = b['vol']*math.sqrt(q/b['adv'])
    r = b['rating']; ri = RATINGS.index(r) if r in RATINGS else None
    illiq = b['days'] > 5 or b['adv'] < 1e6
    if b['ac'] in ('ig_corp','hy_corp') and ri is not None and ri >= RATINGS.index('BB+') and q > 5e6: return 3, None
    if b['ac']=='muni' and r=='NR' and q > 2e6: return 12, None
    if pct > 10: return 3, None
    if sell and b['ac'] in ('ig_corp','hy_corp') and illiq and q >= 10e6: return 4, None
    if imp > 60: return 2, None
    if ri is not None and ri >= RATINGS.index('CCC+'): return 3, 'hy'
    if b['ac']=='ig_corp' and not illiq and q <= 1e6: return 6, None
    return 4, None

BONUS = 0.2
# Size quantiles of the desk's flow.
sizes = []
K = 8
for i in range(K):
    z = N.inv_cdf((i+0.5)/K)
    sizes.append(min(max(2e6*math.exp(0.9*z), 1e5), 25e6))

tot = {k:0.0 for k in ['static','broadcast','dynamic','dynamic_noaxe','oracle','dyn_b05','dyn_b10','oracle_noaxe']}
leaks = {k:0.0 for k in tot}; asked = {k:0.0 for k in tot}; timed = {k:0.0 for k in tot}
axed_share = 0.0
for bi, b in enumerate(bonds):
    wb = b['w']/W
    qs = [max(1e5, min(s, max(3*b['adv'],1e5))) for s in sizes]
    B = BASE[b['seg']]*0.9
    for q in qs:
        for sell in (False, True):
            wt = wb/len(qs)/2
            base_t = [truth(d, b['seg']) for d in range(12)]
            qa = [q_axe(d, bi) for d in range(12)]
            # axe states: none, or exactly dealer j (first order in q)
            p_none = math.prod(1-x for x in qa)
            states = [(p_none, None)] + [(qa[j]*p_none/(1-qa[j]), j) for j in range(12) if qa[j] > 0]
            norm = sum(p for p,_ in states)
            axed_share += wt*(1-p_none)
            k, spec = rule_k(b, q, sell)
            imp = impact(b, q)
            for p, j in states:
                p /= norm
                ts = [axed(t) if d == j else t for d, t in enumerate(base_t)]
                def add(name, panel):
                    c, l = expected_cost([ts[d] for d in panel], b, q)
                    tot[name] += wt*p*c; leaks[name] += wt*p*l; asked[name] += wt*p*len(panel)
                    timed[name] += wt*p*expected_cost([ts[d] for d in panel], b, q, True)[0]
                add('static', [0,1,2,3]); add('broadcast', list(range(12)))
                # dynamic: learned composite (segment level, not axe-aware) + bonus when axed
                elig = [d for d in range(12) if spec is None or 1 in arch[d][1]]
                comp = {d: composite(base_t[d], B, imp) + (BONUS if d == j else 0.0) for d in elig}
                add('dynamic', sorted(elig, key=lambda d: -comp[d])[:k])
                for nm, bb in (('dyn_b05', 0.5), ('dyn_b10', 1.0)):
                    cb = {d: composite(base_t[d], B, imp) + (bb if d == j else 0.0) for d in elig}
                    add(nm, sorted(elig, key=lambda d: -cb[d])[:k])
                comp0 = {d: composite(base_t[d], B, imp) for d in elig}
                add('dynamic_noaxe', sorted(elig, key=lambda d: -comp0[d])[:k])
                # oracle: greedy on expected cost, up to 8 (the axe-free panel, plus the
                # axed dealer when that lowers the cost: a first-order shortcut)
                if j is None:
                    panel = []; best = None
                    while len(panel) < 8:
                        cand = None
                        for d in range(12):
                            if d in panel: continue
                            c, _ = expected_cost([ts[x] for x in panel+[d]], b, q)
                            if (best is None or c < best - 1e-9) and (cand is None or c < cand[1]): cand = (d, c)
                        if cand is None: break
                        panel.append(cand[0]); best = cand[1]
                    oracle0 = panel
                else:
                    panel = list(oracle0)
                    if j not in panel:
                        c0, _ = expected_cost([ts[x] for x in panel], b, q)
                        c1, _ = expected_cost([ts[x] for x in panel+[j]], b, q)
                        if c1 < c0: panel = panel + [j]
                add('oracle', panel)
                c, l = expected_cost([base_t[d] for d in oracle0], b, q)
                tot['oracle_noaxe'] += wt*p*c; leaks['oracle_noaxe'] += wt*p*l; asked['oracle_noaxe'] += wt*p*len(oracle0)
                timed['oracle_noaxe'] += wt*p*expected_cost([base_t[d] for d in oracle0], b, q, True)[0]
print("policy         cost bps: first  timed   leakage  asked")
for k in tot:
    print(f"{k:14s}           {tot[k]:6.2f} {timed[k]:6.2f}   {leaks[k]:6.2f}  {asked[k]:5.2f}")
print(f"orders with some dealer axed against them: {axed_share:.3f}; axe duty {duty:.2f}, span {span:.0f} s")
