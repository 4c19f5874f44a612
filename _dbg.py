import cProfile, pstats, io, time
def profiled(fn_name, *a, **k):
    import mltoolkit.pipeline as p
    fn=getattr(p, fn_name)
    pr=cProfile.Profile(); t=time.time(); pr.enable(); r=fn(*a,**k); pr.disable()
    s=io.StringIO(); pstats.Stats(pr,stream=s).sort_stats('cumulative').print_stats(18)
    open(f'/tmp/exp/child_{fn_name}.txt','w').write(f"wall {time.time()-t}\n"+s.getvalue())
    return r
