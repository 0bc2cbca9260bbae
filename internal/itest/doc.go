// Package itest holds ssi's multi-node integration tests: real agent
// processes built from the tree, run by package harness in network, PID,
// mount and UTS namespaces (as root) and checked through their local API.
// The package itself has no code; see the _test.go files.
package itest
