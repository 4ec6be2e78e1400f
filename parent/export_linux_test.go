package parent

// PlanLandlock lets the tests see what a ruleset for cfg would handle on a
// kernel of any ABI version, which this machine's kernel cannot show.
func PlanLandlock(abi int, cfg LandlockConfig) (fs, net, scoped uint64, notApplied []string, err error) {
	p, err := planLandlock(abi, cfg)
	return p.fs, p.net, p.scoped, p.notApplied, err
}
