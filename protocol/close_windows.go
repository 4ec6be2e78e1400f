package protocol

// closeFD does nothing: Windows has no integer descriptors, and nothing in
// the package hands one out there.
func closeFD(int) {}
