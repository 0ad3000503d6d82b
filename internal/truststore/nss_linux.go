package truststore

// nssSupported: on Linux, Chromium and Firefox read the NSS databases in
// the user's home.
const nssSupported = true
