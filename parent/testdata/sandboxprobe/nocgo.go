//go:build !cgo

package main

func cgoLinked() bool { return false }
