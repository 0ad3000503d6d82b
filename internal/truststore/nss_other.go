//go:build !linux

package truststore

// nssSupported: outside Linux, siteplex does not manage NSS databases
// (Chrome on macOS uses the system keychain).
const nssSupported = false
