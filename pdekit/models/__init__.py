"""Neural PDE surrogates: FNO, UNetMod, SineNet, MPPDE, PDERefiner and the Flax NNX adapter."""
